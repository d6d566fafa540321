/**
 * Worker-thread entry of a shard: builds the shard from the init message and relays phase and
 * stop messages to it. The shard itself (shard.ts) is the same code the main loop runs with
 * `threads: 0`.
 */

import { parentPort, workerData } from 'node:worker_threads';
import type { MainToShard, ShardInit, ShardToMain } from './protocol.js';
import { createShard } from './shard.js';

const port = parentPort;
if (port === null) throw new Error('shard-worker.js must run in a worker thread');

const init = workerData as ShardInit;
const post = (message: ShardToMain): void => {
  if (message.type === 'batch') port.postMessage(message, [message.records.buffer as ArrayBuffer]);
  else port.postMessage(message);
};
const shard = createShard(init, post);

port.on('message', (message: MainToShard) => {
  switch (message.type) {
    case 'phase':
      shard.runPhase(message.plan);
      break;
    case 'stop':
      shard.stop(message.runId);
      break;
    case 'close':
      void shard.close().then(() => port.close());
      break;
    case 'init':
      break;
  }
});
void shard.ready.then(() => post({ type: 'ready', shard: init.shard }));
