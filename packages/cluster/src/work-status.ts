/**
 * The batch half of `volley cluster status`: the batches whose coordinator is alive (queued and
 * running chunks, results waiting for the coordinator) and the workers' load, from their
 * heartbeat keys. Read-only.
 */
import type { Redis } from 'ioredis';
import { batchKeys, batchRegistryKey, WORK_GROUP, workerPattern } from './work-keys.js';

export interface BatchStatus {
  batch: string;
  coordinator: string;
  host: string;
  startedAt: string;
  chunkLines: number;
  leaseMs: number;
  /** Chunks in Redis: not yet taken, or held by a worker (`running`). */
  chunks: number;
  /** Chunks held, by worker. */
  running: Record<string, number>;
  /** Result entries the coordinator has not yet written (and trimmed). */
  resultsWaiting: number;
}

export interface WorkerStatus {
  member: string;
  host: string;
  pid: number;
  startedAt: string;
  concurrency: number;
  mode?: string;
  load: { inFlight: number; queued: number; chunks: number };
  done: { chunks: number; lines: number; takeovers: number };
  expiresInMs: number;
}

/** Reads the running batches and the workers once. `scan` lists keys matching a pattern. */
export async function readWorkStatus(
  redis: Redis,
  prefix: string,
  nowMs: number,
  scan: (pattern: string) => Promise<string[]>,
): Promise<{ batches: BatchStatus[]; workers: WorkerStatus[] }> {
  const listed = await redis.zrange(batchRegistryKey(prefix), 0, -1, 'WITHSCORES');
  const batches: BatchStatus[] = [];
  for (let i = 0; i + 1 < listed.length; i += 2) {
    const id = listed[i] as string;
    if (Number(listed[i + 1]) < nowMs) continue; // Its coordinator is gone.
    let keys: ReturnType<typeof batchKeys>;
    try {
      keys = batchKeys(prefix, id);
    } catch {
      continue;
    }
    const [meta, chunks, resultsWaiting] = await Promise.all([
      redis.hgetall(keys.meta),
      redis.xlen(keys.work).catch(() => 0),
      redis.xlen(keys.results).catch(() => 0),
    ]);
    const running: Record<string, number> = {};
    const pending = (await redis.xpending(keys.work, WORK_GROUP).catch(() => null)) as
      | [number, string | null, string | null, Array<[string, string]> | null]
      | null;
    for (const [consumer, count] of pending?.[3] ?? []) running[consumer] = Number(count);
    batches.push({
      batch: id,
      coordinator: meta.coordinator ?? '?',
      host: meta.host ?? '?',
      startedAt: meta.startedAt ?? '?',
      chunkLines: Number(meta.chunkLines ?? 0),
      leaseMs: Number(meta.lease ?? 0),
      chunks,
      running,
      resultsWaiting,
    });
  }
  const workers: WorkerStatus[] = [];
  for (const key of await scan(workerPattern(prefix))) {
    const [raw, ttl] = await Promise.all([redis.get(key), redis.pttl(key)]);
    if (raw === null) continue;
    try {
      workers.push({ ...(JSON.parse(raw) as Omit<WorkerStatus, 'expiresInMs'>), expiresInMs: ttl });
    } catch {
      // Not one of ours.
    }
  }
  return { batches, workers };
}
