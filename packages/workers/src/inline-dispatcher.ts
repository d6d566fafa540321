/**
 * `async` mode: the same worker actor (executor) on the main event loop. Outcomes are batched
 * per loop turn exactly as a worker thread batches them, so the supervisor sees the same stream
 * of events in both modes.
 */

import { threadId } from 'node:worker_threads';
import type {
  Dispatcher,
  DispatchSink,
  StreamDelta,
  WorkerConfig,
  WorkOutcome,
} from '@volley/core';
import { createExecutor } from './executor.js';

export interface InlineDispatcherOptions {
  sink: DispatchSink;
  config: WorkerConfig;
}

export function createInlineDispatcher(options: InlineDispatcherOptions): Dispatcher {
  const { sink } = options;
  const executor = createExecutor(options.config);
  let outcomes: WorkOutcome[] = [];
  let deltas: StreamDelta[] = [];
  let flushScheduled = false;
  let running = 0;
  let idle: (() => void) | undefined;

  const flush = (): void => {
    flushScheduled = false;
    const settled = outcomes;
    const streamed = deltas;
    outcomes = [];
    deltas = [];
    if (streamed.length > 0) sink.deltas(streamed);
    if (settled.length > 0) sink.outcomes(settled);
  };
  const schedule = (): void => {
    if (flushScheduled) return;
    flushScheduled = true;
    setImmediate(flush);
  };
  const onDelta = (delta: StreamDelta): void => {
    deltas.push(delta);
    schedule();
  };
  // Shared by every request: a closure pair per `then` was two more objects per request.
  const onOutcome = (outcome: WorkOutcome): void => {
    outcomes.push(outcome);
    schedule();
    if (--running === 0) idle?.();
  };

  return {
    kind: 'async',
    dispatch(requests) {
      for (const request of requests) {
        running++;
        executor
          .execute(request, request.deltas ? onDelta : undefined)
          .then(onOutcome, neverRejects);
      }
    },
    cancel: (ids) => executor.cancel(ids),
    stats: () =>
      Promise.resolve([
        {
          threadId,
          ...executor.stats(),
          eventLoopUtilization: performance.eventLoopUtilization().utilization,
        },
      ]),
    async close() {
      if (running > 0) await new Promise<void>((resolve) => (idle = resolve));
      await executor.close();
    },
    async destroy() {
      await executor.destroy();
    },
  };
}

/** `execute` never rejects (failures are outcomes); this only keeps the promise handled. */
function neverRejects(): void {}
