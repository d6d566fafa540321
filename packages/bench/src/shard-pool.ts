/**
 * The shards of a benchmark, seen from the main thread: long-lived worker threads (each one
 * shard with its own connections), or one shard on the main loop when `threads` is 0. A phase is
 * handed to every shard at once; their records stream back as they finish.
 */

import { Worker } from 'node:worker_threads';
import { ErrorCode, VolleyError } from '@volley/core';
import type {
  MainToShard,
  PhasePlan,
  ShardInit,
  ShardPhaseSummary,
  ShardToMain,
} from './protocol.js';
import { createShard } from './shard.js';

/** Receives each batch of finished requests of the running phase. */
export type RecordSink = (records: Float64Array, count: number) => void;

/** What a phase's shards reported when all were done. */
export interface PhaseOutcome {
  summaries: ShardPhaseSummary[];
}

/** The shards of one benchmark. */
export interface ShardPool {
  readonly threads: number;
  /** Runs one phase on every shard; `plan(shard)` gives each its plan. */
  runPhase(plan: (shard: number) => PhasePlan, sink: RecordSink): Promise<PhaseOutcome>;
  /** Stops sending in the running phase; requests in flight finish. */
  stop(runId: number): void;
  /** Requests in flight and sent so far in the running phase, from the latest batches. */
  live(): { inFlight: number; sent: number };
  close(): Promise<void>;
}

/** Options of {@link createShardPool}. */
export interface ShardPoolOptions {
  /** Worker threads; 0 runs the single shard on the main loop. */
  threads: number;
  init: Omit<ShardInit, 'shard' | 'shards'>;
  /** The worker entry (defaults to the built `shard-worker.js` beside this file). */
  workerUrl?: URL;
}

interface Link {
  send(message: MainToShard): void;
  close(): Promise<void>;
}

/**
 * Starts the shards and resolves once every one is ready.
 *
 * @example
 * const pool = await createShardPool({ threads: 2, init });
 * const outcome = await pool.runPhase((shard) => planFor(shard), (records, n) => aggregate(records, n));
 */
export async function createShardPool(options: ShardPoolOptions): Promise<ShardPool> {
  const shards = Math.max(1, options.threads);
  let current:
    | {
        runId: number;
        sink: RecordSink;
        summaries: Array<ShardPhaseSummary | undefined>;
        live: Array<{ inFlight: number; sent: number }>;
        resolve: (outcome: PhaseOutcome) => void;
        reject: (error: Error) => void;
      }
    | undefined;
  let failure: Error | undefined;

  const onMessage = (message: ShardToMain): void => {
    if (message.type === 'failed') {
      fail(new Error(`load shard ${message.shard} failed: ${message.message}`));
      return;
    }
    if (message.type === 'ready' || current === undefined || message.runId !== current.runId)
      return;
    if (message.type === 'batch') {
      current.live[message.shard] = { inFlight: message.inFlight, sent: message.sent };
      if (message.count > 0) current.sink(message.records, message.count);
      return;
    }
    current.summaries[message.shard] = message.summary;
    current.live[message.shard] = { inFlight: 0, sent: message.summary.sent };
    if (current.summaries.every((s) => s !== undefined)) {
      const done = current;
      current = undefined;
      done.resolve({ summaries: done.summaries as ShardPhaseSummary[] });
    }
  };

  const fail = (error: Error): void => {
    failure ??= error;
    const running = current;
    current = undefined;
    running?.reject(error);
  };

  const links: Link[] = [];
  if (options.threads === 0) {
    const shard = createShard({ ...options.init, shard: 0, shards: 1 }, (message) =>
      // Asynchronous like a port, so the pool's bookkeeping never re-enters a shard callback.
      queueMicrotask(() => onMessage(message)),
    );
    await shard.ready;
    links.push({
      send(message) {
        if (message.type === 'phase') shard.runPhase(message.plan);
        else if (message.type === 'stop') shard.stop(message.runId);
      },
      close: () => shard.close(),
    });
  } else {
    const url = options.workerUrl ?? new URL('./shard-worker.js', import.meta.url);
    const ready: Array<Promise<void>> = [];
    for (let shard = 0; shard < shards; shard++) {
      const init: ShardInit = { ...options.init, shard, shards };
      const worker = new Worker(url, { workerData: init });
      ready.push(
        new Promise<void>((resolve, reject) => {
          worker.once('message', () => resolve());
          worker.once('error', reject);
        }),
      );
      worker.on('message', onMessage);
      worker.on('error', (error: Error) => fail(error));
      worker.on('exit', (code) => {
        if (code !== 0) fail(new Error(`load shard ${shard} exited with code ${code}`));
      });
      links.push({
        send: (message) => worker.postMessage(message),
        async close() {
          worker.removeAllListeners('exit');
          await worker.terminate();
        },
      });
    }
    try {
      await Promise.all(ready);
    } catch (error) {
      await Promise.all(links.map((link) => link.close()));
      throw error;
    }
  }

  return {
    threads: options.threads,
    runPhase(plan, sink) {
      if (failure !== undefined) return Promise.reject(failure);
      if (current !== undefined)
        return Promise.reject(
          new VolleyError(ErrorCode.INVALID_OPTIONS, 'a benchmark phase is already running'),
        );
      const first = plan(0);
      return new Promise<PhaseOutcome>((resolve, reject) => {
        current = {
          runId: first.runId,
          sink,
          summaries: new Array<ShardPhaseSummary | undefined>(shards).fill(undefined),
          live: Array.from({ length: shards }, () => ({ inFlight: 0, sent: 0 })),
          resolve,
          reject,
        };
        links.forEach((link, shard) => {
          link.send({ type: 'phase', plan: shard === 0 ? first : plan(shard) });
        });
      });
    },
    stop(runId) {
      for (const link of links) link.send({ type: 'stop', runId });
    },
    live() {
      let inFlight = 0;
      let sent = 0;
      for (const l of current?.live ?? []) {
        inFlight += l.inFlight;
        sent += l.sent;
      }
      return { inFlight, sent };
    },
    async close() {
      await Promise.all(links.map((link) => link.close()));
    },
  };
}
