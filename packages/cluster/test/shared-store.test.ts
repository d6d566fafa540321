/**
 * Token buckets on the shared store, several members in one test process (each its own Redis
 * connections, as separate processes have): the shared rate holds, leases go back on close,
 * cool-downs and learned limits reach every member, and no key is left without a TTL.
 */
import type { LaneLimits, TokenBucketRef } from '@volley/core';
import { createTokenBucket } from '@volley/core';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ClusterLink, ClusterOptions } from '../src/index.js';
import { connectCluster, laneGroup } from '../src/index.js';
import { dropKeys, inspector, keysUnder, SHARED_REDIS, uniquePrefix } from './helpers/redis.js';

const look = inspector();
let prefix = '';
const open: Array<{ bucket: TokenBucketRef; link: ClusterLink }> = [];

const GROUP = laneGroup({
  baseUrl: 'https://llm.example/v1',
  model: undefined,
  apiKey: 'sk-shared-store-test-key-0001',
  limitGroup: undefined,
});

async function member(limits: LaneLimits, options: Partial<ClusterOptions> = {}) {
  const link = await connectCluster({ url: SHARED_REDIS, prefix, groups: [GROUP], ...options });
  const bucket = createTokenBucket({ lanes: [limits], store: (setup) => link.store(setup) });
  const handle = { bucket, link };
  open.push(handle);
  return handle;
}

/** `callers` loops that each take a grant, hold it `holdMs`, settle it, until `until`. */
async function drive(
  bucket: TokenBucketRef,
  callers: number,
  until: number,
  holdMs: number,
  granted: number[],
): Promise<void> {
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (performance.now() < until) {
        if (bucket.tryAcquire(0, 0) === undefined) await bucket.acquire(0, 0);
        granted.push(performance.now());
        await new Promise((resolve) => setTimeout(resolve, holdMs));
        bucket.settle(0, 0, 0);
      }
    }),
  );
}

beforeEach(() => {
  prefix = uniquePrefix('store');
});

afterEach(async () => {
  for (const { bucket } of open.splice(0)) await bucket.stop();
  await dropKeys(look, prefix);
});

afterAll(() => {
  look.disconnect();
});

describe('shared store', () => {
  it('holds one rate across members, with a fraction of a Redis command per request', async () => {
    const members = await Promise.all([member({ rpm: 6_000 }), member({ rpm: 6_000 })]);
    const start = performance.now();
    const until = start + 4_000;
    const granted: number[] = [];
    await Promise.all(members.map(({ bucket }) => drive(bucket, 32, until, 5, granted)));
    granted.sort((a, b) => a - b);
    // Never ahead of the refill: 100 per second, after a burst of 25 and the members' leases.
    const leases = 2 * 10;
    granted.forEach((at, k) => {
      expect(k + 1).toBeLessThanOrEqual(25 + leases + ((at - start) * 6_000) / 60_000 + 1);
    });
    // And near it: no stall between members (how near is for benchmarks/cluster to measure).
    const perMinute = ((granted.length - 25) * 60_000) / ((granted.at(-1) ?? 0) - start);
    expect(perMinute).toBeGreaterThan(6_000 * 0.75);
    const commands = members.reduce((sum, { link }) => sum + link.commands(), 0);
    expect(commands / granted.length).toBeLessThanOrEqual(0.2);
  });

  it('gives back leases and slots and removes its heartbeat on close; every key has a TTL', async () => {
    const { bucket, link } = await member({ rpm: 600, maxInFlight: 4 });
    // Four waiters at once: one lease of several requests and slots.
    const grants = await Promise.all(Array.from({ length: 4 }, () => bucket.acquire(0, 0)));
    expect(grants).toHaveLength(4);
    for (let i = 0; i < 4; i++) bucket.settle(0, 0, 0);
    const all = await keysUnder(look, prefix);
    expect(all).toContain(`${prefix}:member:${link.member}`);
    for (const key of all) expect(await look.pttl(key)).toBeGreaterThan(0);
    const tag = `{${prefix}:g:${GROUP.id}}`;
    const levelBefore = Number(await look.hget(`${tag}:bucket`, 'req'));
    await bucket.stop();
    open.length = 0;
    expect(await look.exists(`${prefix}:member:${link.member}`)).toBe(0);
    expect(await look.hlen(`${tag}:slots`)).toBe(0);
    expect(await look.zscore(`${tag}:members`, link.member)).toBeNull();
    // 600 RPM: a burst of 2.5; whatever was leased and not spent is back (plus some refill).
    expect(Number(await look.hget(`${tag}:bucket`, 'req'))).toBeGreaterThanOrEqual(levelBefore);
  });

  it("applies one member's 429 cool-down to every member at once", async () => {
    const a = await member({ rpm: 60_000 });
    const b = await member({ rpm: 60_000 });
    // b keeps 16 callers busy: it always holds a lease it spends without asking Redis.
    const granted: number[] = [];
    const running = drive(b.bucket, 16, performance.now() + 1_200, 2, granted);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const cooledAt = performance.now();
    a.bucket.cooldown(0, 2_000);
    await running;
    expect(granted.filter((at) => at < cooledAt).length).toBeGreaterThan(100);
    // The cool-down reached b at once (pub/sub; 250 ms of slack for a busy machine), lease or
    // not; its waiters went once it was over.
    expect(granted.filter((at) => at > cooledAt + 250 && at < cooledAt + 1_950)).toEqual([]);
    expect(granted.filter((at) => at >= cooledAt + 1_950)).toHaveLength(16);
  });

  it('shares limits learned from x-ratelimit headers with members that configured none', async () => {
    const a = await member({});
    const b = await member({});
    // No limit known: requests go without asking Redis.
    expect(b.bucket.tryAcquire(0, 0)).toBeDefined();
    b.bucket.settle(0, 0, 0);
    a.bucket.observe(0, { limitRequests: 60, remainingRequests: 59 });
    const deadline = performance.now() + 1_000;
    let spent = 0;
    while (performance.now() < deadline) {
      if (b.bucket.tryAcquire(0, 0) === undefined) break;
      b.bucket.settle(0, 0, 0);
      spent++;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // 60 RPM learned: b is paced by it now (a burst of one), not unlimited.
    expect(b.bucket.tryAcquire(0, 0)).toBeUndefined();
    expect(spent).toBeLessThan(5);
    expect(await look.hget(`{${prefix}:g:${GROUP.id}}:bucket`, 'lrpm')).toBe('60');
  });

  it('refuses a bad Redis URL with a clear error that never shows the password', async () => {
    await expect(
      connectCluster({
        url: 'redis://:hunter2-secret-pw@127.0.0.1:1',
        prefix,
        groups: [GROUP],
        connectTimeoutMs: 500,
      }),
    ).rejects.toSatisfy((error: Error & { code?: string }) => {
      expect(error.code).toBe('VOLLEY_ERR_CLUSTER_UNAVAILABLE');
      expect(error.message).toContain('redis://127.0.0.1:1');
      expect(error.message).not.toContain('hunter2');
      return true;
    });
    await expect(
      connectCluster({
        url: SHARED_REDIS,
        prefix,
        groups: [GROUP],
        onRedisLoss: 'fail' as 'pause',
      }),
    ).rejects.toThrow(/options\.cluster\.onRedisLoss must be 'pause' or 'split'/);
  });
});
