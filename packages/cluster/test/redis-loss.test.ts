/**
 * Redis lost and back, on a redis-server of the test's own: admission spends only the leases
 * already held and then pauses (or, opted in, admits limit / members), says so once, and
 * resumes by itself when Redis answers again.
 */
import type { TokenBucketRef } from '@volley/core';
import { createTokenBucket } from '@volley/core';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClusterEvent, ClusterLink, ClusterOptions } from '../src/index.js';
import { connectCluster, laneGroup } from '../src/index.js';
import type { OwnRedis } from './helpers/redis.js';
import { startOwnRedis, uniquePrefix } from './helpers/redis.js';

const GROUP = laneGroup({
  baseUrl: 'https://llm.example/v1',
  model: undefined,
  apiKey: undefined,
  limitGroup: undefined,
});

let redis: OwnRedis | undefined;
const open: TokenBucketRef[] = [];

afterEach(async () => {
  for (const bucket of open.splice(0)) await bucket.stop();
  await redis?.stop();
  redis = undefined;
});

async function member(url: string, rpm: number, options: Partial<ClusterOptions> = {}) {
  const events: Array<ClusterEvent & { at: number }> = [];
  const link: ClusterLink = await connectCluster({
    url,
    prefix: uniquePrefix('loss'),
    groups: [GROUP],
    // A stopped Redis shows at once (its connections close); a short timeout would only add
    // false outages on a loaded machine, and each test counts outages.
    commandTimeoutMs: 2_000,
    onEvent: (event) => events.push({ ...event, at: performance.now() }),
    ...options,
  });
  const bucket = createTokenBucket({ lanes: [{ rpm }], store: (setup) => link.store(setup) });
  open.push(bucket);
  return { bucket, link, events };
}

/** Callers that take grants and settle them at once, until `until`. */
function drive(bucket: TokenBucketRef, callers: number, until: number, granted: number[]) {
  return Promise.all(
    Array.from({ length: callers }, async () => {
      while (performance.now() < until) {
        try {
          if (bucket.tryAcquire(0, 0) === undefined) await bucket.acquire(0, 0);
        } catch {
          return;
        }
        granted.push(performance.now());
        bucket.settle(0, 0, 0);
      }
    }),
  );
}

describe('when Redis is lost', () => {
  it('spends only the leases held, pauses, says so once, and resumes when Redis is back', async () => {
    redis = await startOwnRedis();
    const { bucket, events } = await member(redis.url, 1_200, { prefix: 'loss-pause' });
    const granted: number[] = [];
    const start = performance.now();
    const running = drive(bucket, 8, start + 5_000, granted);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await redis.stop();
    const stoppedAt = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await redis.start();
    await running;
    const lost = events.filter((event) => event.type === 'lost');
    const restored = events.filter((event) => event.type === 'restored');
    expect(lost).toHaveLength(1);
    expect(restored).toHaveLength(1);
    const restoredAt = restored[0]?.at ?? 0;
    // 1,200 RPM = 20/s: a lease is at most 2 (100 ms of refill). Nothing beyond it while down.
    const whileDown = granted.filter((at) => at > stoppedAt && at < restoredAt);
    expect(whileDown.length).toBeLessThanOrEqual(2);
    // Back at the shared rate afterwards, by itself.
    expect(granted.filter((at) => at > restoredAt).length).toBeGreaterThan(10);
    expect(restoredAt - stoppedAt).toBeGreaterThan(1_400);
  });

  it("opted in ('split'), admits limit / live members while Redis is lost", async () => {
    redis = await startOwnRedis();
    const prefix = uniquePrefix('loss-split');
    const a = await member(redis.url, 1_200, { prefix, onRedisLoss: 'split' });
    const b = await member(redis.url, 1_200, { prefix, onRedisLoss: 'split' });
    const grantedA: number[] = [];
    const grantedB: number[] = [];
    const until = performance.now() + 4_500;
    const running = Promise.all([
      drive(a.bucket, 8, until, grantedA),
      drive(b.bucket, 8, until, grantedB),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await redis.stop();
    const stoppedAt = performance.now();
    await running;
    expect(a.events.filter((event) => event.type === 'lost')).toHaveLength(1);
    // Each member had seen two members: 600 RPM each, 10/s, after a burst of 2.5 and its lease.
    for (const granted of [grantedA, grantedB]) {
      const down = granted.filter((at) => at > stoppedAt + 500 && at <= until);
      const seconds = (until - stoppedAt - 500) / 1_000;
      expect(down.length).toBeGreaterThan(seconds * 10 * 0.8);
      expect(down.length).toBeLessThanOrEqual(seconds * 10 + 3);
    }
  });
});
