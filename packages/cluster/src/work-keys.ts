/**
 * Names in Redis of one batch spread over a cluster. Every key of a batch sits under one hash
 * tag, `{<prefix>:b:<batch>}`, so each script touches keys of one slot (Redis Cluster too):
 *
 *   {volley:b:<batch>}:meta      hash: epoch of the coordinator now serving it, lease, TTL, counts
 *   {volley:b:<batch>}:work      stream + consumer group `w`: one entry per chunk of lines
 *   {volley:b:<batch>}:lines     hash: line -> `s` (sent by some worker) or `r` (its result is in)
 *   {volley:b:<batch>}:results   stream: results, batched per report, read by the coordinator
 *   volley:batches               sorted set: batch -> time its coordinator's heartbeat lapses
 *   volley:worker:<member>       string with a TTL: one worker's heartbeat (host, pid, load)
 *
 * Every key has a TTL (refreshed by the coordinator while it lives): nothing stays behind, and a
 * coordinator killed mid-batch leaves its chunks and results for `--resume` until the TTL ends.
 */

/** The consumer group every worker reads chunks through. */
export const WORK_GROUP = 'w';

const BATCH_ID = /^[A-Za-z0-9._-]{1,64}$/;

export interface BatchKeys {
  meta: string;
  work: string;
  lines: string;
  results: string;
}

export function batchKeys(prefix: string, batch: string): BatchKeys {
  if (!BATCH_ID.test(batch)) throw new Error(`not a batch id: ${JSON.stringify(batch)}`);
  const tag = `{${prefix}:b:${batch}}`;
  return {
    meta: `${tag}:meta`,
    work: `${tag}:work`,
    lines: `${tag}:lines`,
    results: `${tag}:results`,
  };
}

export function batchRegistryKey(prefix: string): string {
  return `${prefix}:batches`;
}

export function workerKey(prefix: string, member: string): string {
  return `${prefix}:worker:${member}`;
}

export function workerPattern(prefix: string): string {
  return `${prefix}:worker:*`;
}

/** Stream ids (`<ms>-<seq>`) in their order; -1, 0 or 1. */
export function compareStreamIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}
