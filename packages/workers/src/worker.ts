/**
 * Worker-thread entry (Piscina `filename`). At start-up it builds its executor (one keep-alive
 * undici Pool per endpoint, reused by every request this thread runs) and hands the main thread
 * its two ports. Piscina tasks carry batches of requests; the thread runs them all concurrently
 * and reports each outcome on its events port as soon as it settles.
 */

import { MessageChannel, parentPort, threadId, workerData } from 'node:worker_threads';
import type { StreamDelta, WorkOutcome } from '@volley/core';
import { exposeControl } from './control-channel.js';
import { createExecutor } from './executor.js';
import type { BatchTask, EventBatch, HelloMessage, WorkerControl, WorkerInit } from './protocol.js';
import { HELLO } from './protocol.js';

const { config } = workerData as WorkerInit;
const executor = createExecutor(config);
const events = new MessageChannel();
const control = new MessageChannel();

let outcomes: WorkOutcome[] = [];
let deltas: StreamDelta[] = [];
let transfer: ArrayBuffer[] = [];
let flushScheduled = false;

/** Everything that settled during one loop turn goes to the main thread as one message. */
function flush(): void {
  flushScheduled = false;
  const batch: EventBatch = { outcomes, deltas };
  const transferList = transfer;
  outcomes = [];
  deltas = [];
  transfer = [];
  events.port1.postMessage(batch, transferList);
}

function schedule(): void {
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(flush);
}

function report(outcome: WorkOutcome): void {
  outcomes.push(outcome);
  // Embedding matrices move to the main thread instead of being copied.
  if (outcome.ok && outcome.embeddings !== undefined)
    transfer.push(outcome.embeddings.data.buffer as ArrayBuffer);
  schedule();
}

function onDelta(delta: StreamDelta): void {
  deltas.push(delta);
  schedule();
}

const api: WorkerControl = {
  stats: () => ({
    threadId,
    ...executor.stats(),
    eventLoopUtilization: performance.eventLoopUtilization().utilization,
  }),
  cancel: (ids) => executor.cancel(ids),
};
exposeControl(api, control.port1);

const hello: HelloMessage = { type: HELLO, threadId, events: events.port2, control: control.port2 };
parentPort?.postMessage(hello, [events.port2, control.port2]);

export default async function runBatch(task: BatchTask): Promise<number> {
  await Promise.all(
    task.requests.map(async (request) => {
      report(await executor.execute(request, request.deltas ? onDelta : undefined));
    }),
  );
  return task.requests.length;
}
