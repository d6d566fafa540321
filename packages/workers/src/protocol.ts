/**
 * Messages between the main thread and one worker thread. Each thread is one long-lived worker
 * actor with one data port; the dispatcher addresses it directly, so it always knows which thread
 * holds which attempt.
 *
 *   start-up:  worker --parentPort--> { hello, threadId, port, control }       (ports transferred)
 *   work:      main   --port--> { work, cancels }               one message per thread per loop turn
 *   results:   worker --port--> { outcomes, deltas }            one message per loop turn
 *   death:     the port closes --> the dispatcher hands that thread's open attempts back as lost
 *   control (comlink, its own port): WorkerControl.stats()
 *
 * Requests travel as bytes in `work`, one transferred buffer per message (work-pack.ts): the
 * main thread encodes each body once, as it goes on the wire, and the worker hands the bytes to
 * undici untouched (no clone to rebuild, no JSON.stringify). Outcomes are structured-cloned:
 * measured on a 369-byte chat completion, cloning the parsed body (~1.9 µs to send, ~1.8 µs to
 * receive) beat sending its text as bytes and parsing it on the main thread (~4 + ~2.6 µs, plus
 * JSON.parse at ~2.2 µs, work that threads mode exists to keep off the main thread).
 *
 * Work and cancels share one ordered channel, so a cancel can never overtake the attempt it
 * names: when it arrives the attempt is running or already over, never still on its way.
 */

import type { MessagePort } from 'node:worker_threads';
import type { StreamDelta, WorkerConfig, WorkerStats, WorkOutcome } from '@volley/core';
import type { PackedWork } from './work-pack.js';

export const HELLO = 'volley:worker-hello';

export interface HelloMessage {
  type: typeof HELLO;
  threadId: number;
  /** The data port: work and cancels in, outcomes and deltas out. */
  port: MessagePort;
  control: MessagePort;
}

export interface WorkerInit {
  config: WorkerConfig;
}

/** Main to worker: attempts to start, then attempts (started earlier or just now) to abort. */
export interface WorkBatch {
  /** Absent when the message carries only cancels. */
  work?: PackedWork;
  cancels: number[];
}

/** Worker to main: what settled and what streamed during one of the worker's loop turns. */
export interface EventBatch {
  outcomes: WorkOutcome[];
  deltas: StreamDelta[];
}

/** The control-plane surface a worker exposes over comlink. */
export interface WorkerControl {
  stats(): WorkerStats;
}

export function isHello(message: unknown): message is HelloMessage {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === HELLO
  );
}
