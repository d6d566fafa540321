/**
 * Messages between the main thread and a worker thread, beyond Piscina's own task traffic.
 *
 *   worker start-up:  worker --parentPort--> { hello, threadId, events, control }  (ports transferred)
 *   work (Piscina):   main --run({ requests })--> worker; resolves when the whole batch settled
 *   results:          worker --events port--> { outcomes, deltas }   (flushed once per loop turn)
 *   control (comlink): main --control port--> WorkerControl.stats() / configure() / cancel()
 *
 * Outcomes travel on the worker's own port, not as the task's return value, so each request
 * reports the moment it finishes instead of waiting for the slowest request of its batch.
 */

import type { MessagePort } from 'node:worker_threads';
import type {
  StreamDelta,
  WorkerConfig,
  WorkerStats,
  WorkOutcome,
  WorkRequest,
} from '@volley/core';

export const HELLO = 'volley:worker-hello';

export interface HelloMessage {
  type: typeof HELLO;
  threadId: number;
  events: MessagePort;
  control: MessagePort;
}

export interface WorkerInit {
  config: WorkerConfig;
}

export interface BatchTask {
  requests: WorkRequest[];
}

export interface EventBatch {
  outcomes: WorkOutcome[];
  deltas: StreamDelta[];
}

/** The control-plane surface a worker exposes over comlink. */
export interface WorkerControl {
  stats(): WorkerStats;
  cancel(ids: number[]): void;
}

export function isHello(message: unknown): message is HelloMessage {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === HELLO
  );
}
