/**
 * Worker-thread entry (Piscina `filename`): one long-lived worker actor per thread. At start-up it
 * builds its executor (one keep-alive undici Pool per endpoint, reused by every request this
 * thread runs) and hands the main thread its data port and its control port. Work arrives on the
 * data port in batches; each attempt's outcome goes back on the same port as soon as it settles,
 * everything that settled in one loop turn as one message.
 *
 * Piscina owns the thread (start, replace the dead, resource limits, tear down) but runs no task
 * here: a task per batch cost a TaskInfo, a balancer pass and a second port per hop, and hid from
 * the main thread which thread held which attempt.
 */

import { MessageChannel, parentPort, threadId, workerData } from 'node:worker_threads';
import type { StreamDelta, WorkOutcome } from '@volley/core';
import { exposeControl } from './control-channel.js';
import { createExecutor } from './executor.js';
import type { EventBatch, HelloMessage, WorkBatch, WorkerControl, WorkerInit } from './protocol.js';
import { HELLO } from './protocol.js';
import { WorkReader } from './work-pack.js';

const { config } = workerData as WorkerInit;
const executor = createExecutor(config);
const data = new MessageChannel();
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
  data.port1.postMessage(batch, transferList);
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

data.port1.on('message', (batch: WorkBatch) => {
  // Requests first: a cancel in the same batch may name one of them (execute registers an
  // attempt before its first await, so the cancel finds it).
  if (batch.work !== undefined) {
    const work = new WorkReader(batch.work);
    for (let i = 0; i < work.count; i++) {
      const request = work.spec(i);
      executor
        .execute(request, request.deltas ? onDelta : undefined, work.body(i))
        .then(report, () => undefined /* execute never rejects: failures are outcomes */);
    }
  }
  if (batch.cancels.length > 0) executor.cancel(batch.cancels);
});

const api: WorkerControl = {
  stats: () => ({
    threadId,
    ...executor.stats(),
    eventLoopUtilization: performance.eventLoopUtilization().utilization,
  }),
};
exposeControl(api, control.port1);

const hello: HelloMessage = { type: HELLO, threadId, port: data.port2, control: control.port2 };
parentPort?.postMessage(hello, [data.port2, control.port2]);

/** Piscina wants a task function; work never travels as a task (see the top of this file). */
export default function noTask(): never {
  throw new Error('volley worker threads take work on their data port, not as Piscina tasks');
}
