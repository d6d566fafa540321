/**
 * What `volley cluster status` shows: the members (from their heartbeat keys) and the shared
 * buckets (levels now, limits, learned limits, cool-downs, slots), read without changing
 * anything. Levels are refilled to Redis's own `TIME`, as the scripts do.
 */
import { ErrorCode, scrubSecrets, VolleyError } from '@volley/core';
import { Redis } from 'ioredis';
import { checkPrefix, statusPatterns } from './keys.js';
import { scriptTime } from './scripts.js';
import { parseRedisUrl } from './url.js';
import type { BatchStatus, WorkerStatus } from './work-status.js';
import { readWorkStatus } from './work-status.js';

export interface MemberStatus {
  member: string;
  host: string;
  pid: number;
  startedAt: string;
  load: { inFlight: number; leasedRequests: number; slots: number };
  groups: string[];
  /** Until the heartbeat key expires unless renewed. */
  expiresInMs: number;
}

export interface BucketStatus {
  /** The bucket's id: the part of its keys inside the hash tag. */
  id: string;
  /** Origin and model, or the `limitGroup` name. Never a key. */
  label: string;
  rpm: number | undefined;
  tpm: number | undefined;
  learnedRpm: number | undefined;
  learnedTpm: number | undefined;
  maxInFlight: number | undefined;
  /** Requests and tokens the bucket holds now (negative: leases granted ahead of the refill). */
  requests: number | undefined;
  tokens: number | undefined;
  cooldownMs: number;
  slotsInUse: number;
  members: number;
}

export interface ClusterStatus {
  url: string;
  prefix: string;
  members: MemberStatus[];
  buckets: BucketStatus[];
  /** Batches spread over the cluster whose coordinator is alive. */
  batches: BatchStatus[];
  /** `volley worker` processes (and coordinators working themselves), with their load. */
  workers: WorkerStatus[];
}

async function scanAll(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return [...new Set(keys)].sort();
}

function num(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

function level(
  stored: string | undefined,
  at: string | undefined,
  perMinute: number | undefined,
  burstMs: number,
  now: number,
): number | undefined {
  if (perMinute === undefined) return undefined;
  const capacity = Math.max(1, (perMinute / 60_000) * burstMs);
  const value = Number(stored ?? capacity);
  const elapsed = Math.max(0, now - Number(at ?? now));
  return Math.min(capacity, value + (elapsed * perMinute) / 60_000);
}

/** Reads the cluster's state once. */
export async function readClusterStatus(options: {
  url: string;
  prefix?: string;
  connectTimeoutMs?: number;
}): Promise<ClusterStatus> {
  const target = parseRedisUrl('--cluster', options.url);
  const prefix = checkPrefix('--prefix', options.prefix ?? 'volley');
  const redis = new Redis(target.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: options.connectTimeoutMs ?? 5_000,
    commandTimeout: 10_000,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new VolleyError(
      ErrorCode.CLUSTER_UNAVAILABLE,
      `cannot reach Redis at ${target.display}: ${scrubSecrets(error instanceof Error ? error.message : String(error))}`,
    );
  }
  try {
    const patterns = statusPatterns(prefix);
    const now = scriptTime((await redis.time()).map(String) as [string, string]);
    const members: MemberStatus[] = [];
    for (const key of await scanAll(redis, patterns.members)) {
      const [raw, ttl] = await Promise.all([redis.get(key), redis.pttl(key)]);
      if (raw === null) continue;
      try {
        members.push({
          ...(JSON.parse(raw) as Omit<MemberStatus, 'expiresInMs'>),
          expiresInMs: ttl,
        });
      } catch {
        // Not one of ours: a key that merely matches the pattern.
      }
    }
    const buckets: BucketStatus[] = [];
    for (const key of await scanAll(redis, patterns.buckets)) {
      const tag = key.slice(0, key.lastIndexOf(':'));
      const id = tag.slice(`{${prefix}:g:`.length, -1);
      const [hash, slots, live] = await Promise.all([
        redis.hgetall(key),
        redis.hgetall(`${tag}:slots`),
        redis.zcard(`${tag}:members`),
      ]);
      const burstMs = num(hash.burst) ?? 250;
      const learnedRpm = num(hash.lrpm);
      const learnedTpm = num(hash.ltpm);
      const rpm = num(hash.rpm);
      const tpm = num(hash.tpm);
      let slotsInUse = 0;
      for (const value of Object.values(slots)) {
        const [count, expires] = value.split(':');
        if (Number(expires) >= now) slotsInUse += Number(count);
      }
      buckets.push({
        id,
        label: hash.label ?? id,
        rpm,
        tpm,
        learnedRpm,
        learnedTpm,
        maxInFlight: num(hash.max),
        requests: level(hash.req, hash.rts, rpm ?? learnedRpm, burstMs, now),
        tokens: level(hash.tok, hash.tts, tpm ?? learnedTpm, burstMs, now),
        cooldownMs: Math.max(0, Number(hash.cd ?? 0) - now),
        slotsInUse,
        members: live,
      });
    }
    const timeMs = (await redis.time()).map(Number) as [number, number];
    const work = await readWorkStatus(
      redis,
      prefix,
      timeMs[0] * 1000 + Math.floor(timeMs[1] / 1000),
      (pattern) => scanAll(redis, pattern),
    );
    return { url: target.display, prefix, members, buckets, ...work };
  } finally {
    redis.disconnect();
  }
}
