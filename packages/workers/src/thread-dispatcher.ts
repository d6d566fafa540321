/**
 * `threads` mode: a Piscina pool of long-lived worker actors.
 *
 *   dispatch(requests) --split into one batch per thread--> piscina.run({ requests })
 *   worker events port --{ outcomes, deltas }--> sink        (per request, as each settles)
 *   worker exits mid-batch --> the batch's task rejects --> sink.lost(ids still open)
 *
 * Piscina owns the threads (spawn, replace the dead, tear down); the dispatcher only tracks which
 * attempts are still open so a dead thread's work can be handed back to the supervisor, which
 * re-dispatches it and counts it. Threads are never parked between tasks (`atomics: 'disabled'`):
 * each holds open sockets and timers that must keep running.
 */

import type { MessagePort } from 'node:worker_threads';
import type {
  Dispatcher,
  DispatchSink,
  WorkerConfig,
  WorkerStats,
  WorkRequest,
} from '@volley/core';
import { ErrorCode, serializeError, VolleyError } from '@volley/core';
import type { Remote } from 'comlink';
import { Piscina } from 'piscina';
import { wrapControl } from './control-channel.js';
import type { BatchTask, EventBatch, WorkerControl, WorkerInit } from './protocol.js';
import { isHello } from './protocol.js';

export interface ThreadDispatcherOptions {
  sink: DispatchSink;
  config: WorkerConfig;
  threads: number;
  /** Override the worker entry (tests use a worker that crashes on purpose). */
  workerUrl?: URL;
}

interface WorkerLink {
  threadId: number;
  events: MessagePort;
  control: Remote<WorkerControl>;
  controlPort: MessagePort;
}

/** Piscina's per-thread task cap; the supervisor's concurrency bound is the real limit. */
const TASKS_PER_THREAD = 1 << 20;

export function defaultWorkerUrl(): URL {
  return new URL('./worker-entry.js', import.meta.url);
}

export function createThreadDispatcher(options: ThreadDispatcherOptions): Dispatcher {
  const { sink } = options;
  const open = new Set<number>();
  /**
   * Open attempts the caller cancelled. A cancel is broadcast to every thread (a task's thread is
   * unknown until it reports), and replayed to threads that start later, so a cancel can never
   * miss the thread that ends up running the attempt.
   */
  const cancelled = new Set<number>();
  const links = new Map<number, WorkerLink>();
  let stopping = false;
  let pool = createPool();

  function createPool(): Piscina<BatchTask, number> {
    const init: WorkerInit = { config: options.config };
    const created = new Piscina<BatchTask, number>({
      filename: (options.workerUrl ?? defaultWorkerUrl()).href,
      minThreads: options.threads,
      maxThreads: options.threads,
      concurrentTasksPerWorker: TASKS_PER_THREAD,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      atomics: 'disabled',
      workerData: init,
    });
    created.on('message', onHello);
    // Every thread death, including one before its hello (start-up), is seen here exactly once.
    created.on('workerDestroy', () => {
      if (stopping || created !== pool) return;
      sink.workerCrashed(
        serializeError(new VolleyError(ErrorCode.WORKER_CRASHED, 'a worker thread exited')),
      );
      setImmediate(() => replaceIfAbandoned(created));
    });
    created.on('error', () => undefined /* every thread death is reported through workerDestroy */);
    return created;
  }

  /**
   * Piscina stops replacing threads that die while starting up and then leaves queued tasks
   * unsettled. When it has given up, the whole pool is rebuilt: the old pool's queued batches
   * reject, come back as `lost`, and the supervisor re-dispatches them to the new one.
   */
  function replaceIfAbandoned(current: Piscina<BatchTask, number>): void {
    if (stopping || current !== pool || current.threads.length >= options.threads) return;
    pool = createPool();
    void current.destroy();
  }

  function onHello(message: unknown): void {
    if (!isHello(message)) return;
    const link: WorkerLink = {
      threadId: message.threadId,
      events: message.events,
      controlPort: message.control,
      control: wrapControl<WorkerControl>(message.control),
    };
    links.set(link.threadId, link);
    if (cancelled.size > 0) link.control.cancel([...cancelled]).catch(() => undefined);
    link.events.on('message', (batch: EventBatch) => {
      for (const outcome of batch.outcomes) {
        open.delete(outcome.id);
        cancelled.delete(outcome.id);
      }
      if (batch.deltas.length > 0) sink.deltas(batch.deltas);
      if (batch.outcomes.length > 0) sink.outcomes(batch.outcomes);
    });
    link.events.once('close', () => links.delete(link.threadId));
    // The main thread must be free to exit while idle; Piscina keeps busy threads referenced.
    link.events.unref();
    link.controlPort.unref();
  }

  /** `stats()` calls awaiting their answers. */
  let statsInFlight = 0;

  function runBatch(requests: WorkRequest[]): void {
    for (const request of requests) open.add(request.id);
    pool.run({ requests }).then(
      () => undefined,
      (error: unknown) => {
        if (stopping) return;
        const lost = requests
          .filter((request) => open.delete(request.id))
          .map((request) => request.id);
        for (const id of lost) cancelled.delete(id);
        if (lost.length > 0) {
          sink.lost(
            lost,
            serializeError(
              new VolleyError(ErrorCode.WORKER_CRASHED, 'worker thread died mid-request', {
                cause: error,
              }),
            ),
          );
        }
      },
    );
  }

  return {
    kind: 'threads',
    dispatch(requests) {
      // One task per thread per flush: the per-task cost of the hop is paid once per batch.
      const perThread = Math.ceil(requests.length / options.threads);
      for (let start = 0; start < requests.length; start += perThread) {
        runBatch(requests.slice(start, start + perThread));
      }
    },
    cancel(ids) {
      for (const id of ids) if (open.has(id)) cancelled.add(id);
      for (const link of links.values()) link.control.cancel(ids).catch(() => undefined);
    },
    async stats(): Promise<WorkerStats[]> {
      const asked = [...links.values()];
      // The control ports are unref'd so an idle runtime never holds the process open; while an
      // answer is on its way they must hold it, or a caller with nothing else pending exits
      // mid-await. Counted: ref() is not, and overlapping calls must not unref each other.
      if (statsInFlight++ === 0) for (const link of asked) link.controlPort.ref();
      try {
        const all = await Promise.allSettled(asked.map((link) => link.control.stats()));
        return all.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
      } finally {
        if (--statsInFlight === 0) for (const link of links.values()) link.controlPort.unref();
      }
    },
    async close() {
      stopping = true;
      await pool.close();
      await pool.destroy();
    },
    async destroy() {
      stopping = true;
      await pool.destroy();
    },
  };
}
