// Every test runs the bucket on a manual clock: times are exact, nothing sleeps.
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../src/index.js';
import { codeOf } from './helpers/async.js';
import { createBucketHarness, grantTimes } from './helpers/bucket-harness.js';

/** The bucket's default burst (token-bucket.ts DEFAULT_BURST_MS). */
const BURST_MS = 250;
/** tpm 60_000 = 1 token per ms; the default 250 ms burst holds 250 tokens. */
const tpmLanes = [{ tpm: 60_000 }];

describe('token bucket: requests per minute', () => {
  it('grants at once on an unlimited lane', async () => {
    const { acquire, settle } = createBucketHarness([{}]);
    const all = Array.from({ length: 1_000 }, () => acquire(0, 500));
    await settle();
    expect(all.every((a) => a.state === 'fulfilled' && a.value?.waitedMs === 0)).toBe(true);
  });

  it('lets the burst through at once and no more', async () => {
    // rpm 600 = 0.01 per ms; a 250 ms burst holds 2.5 requests.
    const { acquire, settle } = createBucketHarness([{ rpm: 600 }]);
    const all = Array.from({ length: 50 }, () => acquire(0, 0));
    await settle();
    expect(all.filter((a) => a.state === 'fulfilled')).toHaveLength(2);
  });

  it('then admits at the steady rate: burst + rate x time over 10 s, within 1', async () => {
    const { acquire, advance, settle } = createBucketHarness([{ rpm: 600 }]);
    const all = Array.from({ length: 300 }, () => acquire(0, 0));
    await settle();
    await advance(10_000);
    const expected = (600 / 60_000) * BURST_MS + (600 / 60_000) * 10_000; // 2.5 + 100
    const granted = all.filter((a) => a.state === 'fulfilled').length;
    expect(Math.abs(granted - expected)).toBeLessThanOrEqual(1);
    // Steady state is one grant per 100 ms, never two at once.
    const times = grantTimes(all).slice(3);
    for (let i = 1; i < times.length; i++) {
      const gap = (times[i] as number) - (times[i - 1] as number);
      expect(gap).toBeGreaterThanOrEqual(99);
      expect(gap).toBeLessThanOrEqual(101);
    }
  });

  it('holds a slow rate exactly too (rpm 60 over 10 s)', async () => {
    // rpm 60 = one per second; the burst is at least one request.
    const { acquire, advance, settle } = createBucketHarness([{ rpm: 60 }]);
    const all = Array.from({ length: 30 }, () => acquire(0, 0));
    await settle();
    await advance(10_000);
    expect(Math.abs(all.filter((a) => a.state === 'fulfilled').length - 11)).toBeLessThanOrEqual(1);
  });

  it('refills no further than the burst after a quiet spell', async () => {
    const { acquire, advance, settle } = createBucketHarness([{ rpm: 600 }]);
    await advance(60_000);
    const all = Array.from({ length: 50 }, () => acquire(0, 0));
    await settle();
    expect(all.filter((a) => a.state === 'fulfilled')).toHaveLength(2);
  });

  it('reports how long each request waited', async () => {
    const { acquire, advance, settle } = createBucketHarness([{ rpm: 60 }]);
    const first = acquire(0, 0);
    const second = acquire(0, 0);
    await settle();
    expect(first.value?.waitedMs).toBe(0);
    expect(second.state).toBe('pending');
    await advance(999);
    expect(second.state).toBe('pending');
    await advance(1);
    expect(second.value?.waitedMs).toBe(1_000);
  });
});

describe('token bucket: tokens per minute', () => {
  it('reserves the estimate at admission, so the next request waits for the refill', async () => {
    const { acquire, advance, settle } = createBucketHarness(tpmLanes);
    const first = acquire(0, 200);
    const second = acquire(0, 200);
    await settle();
    expect(first.state).toBe('fulfilled');
    expect(second.state).toBe('pending');
    await advance(149);
    expect(second.state).toBe('pending');
    await advance(1);
    expect(second.value?.waitedMs).toBe(150);
  });

  it('settle with fewer actual tokens refunds the difference and lets the next waiter in earlier', async () => {
    const { bucket, acquire, settle } = createBucketHarness(tpmLanes);
    acquire(0, 200);
    const second = acquire(0, 200);
    await settle();
    expect(second.state).toBe('pending');
    bucket.settle(0, 200, 50); // 150 back: 50 + 150 = 200 available
    await settle();
    expect(second.state).toBe('fulfilled');
    expect(second.value?.waitedMs).toBe(0);
  });

  it('settle with more actual tokens charges the difference: the debt delays later admissions', async () => {
    const { bucket, acquire, advance, settle } = createBucketHarness(tpmLanes);
    acquire(0, 200);
    await settle();
    bucket.settle(0, 200, 400); // 50 - 200 = -150
    const next = acquire(0, 200);
    await settle();
    await advance(349);
    expect(next.state).toBe('pending');
    await advance(1);
    expect(next.value?.waitedMs).toBe(350);
  });

  it('never refunds above the bucket capacity', async () => {
    const { bucket, acquire, settle } = createBucketHarness(tpmLanes);
    acquire(0, 10);
    await settle();
    bucket.settle(0, 10_000, 0);
    const stats = await bucket.stats();
    expect(stats[0]?.availableTokens).toBe(250);
  });

  // A request bigger than the burst used to go as soon as the (small) burst was full, leaving
  // debt; any server with a larger bucket then answered 429. It now waits for its whole cost.
  it('makes a request bigger than the burst wait until its whole cost has accrued', async () => {
    const { bucket, acquire, advance, settle } = createBucketHarness(tpmLanes);
    const big = acquire(0, 1_000); // 250 in the bucket, 1 token per ms: 750 ms to go
    await settle();
    await advance(749);
    expect(big.state).toBe('pending');
    await advance(1);
    expect(big.value?.waitedMs).toBe(750);
    expect((await bucket.stats())[0]?.availableTokens).toBe(0);
    const next = acquire(0, 10);
    await settle();
    await advance(10);
    expect(next.value?.waitedMs).toBe(10);
  });

  it('keeps the FIFO order while a big request accrues its cost', async () => {
    const { acquire, advance, settle } = createBucketHarness(tpmLanes);
    acquire(0, 100); // 150 left
    const big = acquire(0, 5_000);
    const small = acquire(0, 1);
    await settle();
    await advance(4_849);
    expect(big.state).toBe('pending');
    expect(small.state).toBe('pending');
    await advance(1);
    expect(big.value?.waitedMs).toBe(4_850);
    await advance(1);
    expect(small.value?.waitedMs).toBe(4_851);
  });

  it('waits for whichever of the request and token buckets is later', async () => {
    // rpm 600: 2.5-request burst, then one per 100 ms; tpm 60_000: 250-token burst, 1 per ms.
    const tokensBind = createBucketHarness([{ rpm: 600, tpm: 60_000 }]);
    tokensBind.acquire(0, 250);
    const heavy = tokensBind.acquire(0, 200); // a request is there; 200 tokens are 200 ms away
    await tokensBind.settle();
    await tokensBind.advance(199);
    expect(heavy.state).toBe('pending');
    await tokensBind.advance(1);
    expect(heavy.value?.waitedMs).toBe(200);

    const requestsBind = createBucketHarness([{ rpm: 600, tpm: 60_000 }]);
    requestsBind.acquire(0, 1);
    requestsBind.acquire(0, 1);
    const light = requestsBind.acquire(0, 1); // tokens are there; the third request is 50 ms away
    await requestsBind.settle();
    await requestsBind.advance(49);
    expect(light.state).toBe('pending');
    await requestsBind.advance(1);
    expect(light.value?.waitedMs).toBe(50);
  });

  it('ignores token counts on a lane without a TPM limit', async () => {
    const { bucket, acquire, settle } = createBucketHarness([{ rpm: 6_000_000 }]);
    const all = Array.from({ length: 5 }, () => acquire(0, 1e9));
    await settle();
    expect(all.every((a) => a.state === 'fulfilled')).toBe(true);
    bucket.settle(0, 1e9, 5e9);
    expect((await bucket.stats())[0]?.availableTokens).toBe(Infinity);
  });
});

describe('token bucket: FIFO per lane', () => {
  it('does not let small requests overtake a big one waiting at the head', async () => {
    const { acquire, advance, settle } = createBucketHarness(tpmLanes);
    acquire(0, 250); // empties the bucket
    const big = acquire(0, 200); // can go at +200
    const small = acquire(0, 10); // alone it could go at +10
    await settle();
    await advance(199);
    expect(big.state).toBe('pending');
    expect(small.state).toBe('pending');
    await advance(1);
    expect(big.value?.waitedMs).toBe(200);
    expect(small.state).toBe('pending');
    await advance(10);
    expect(small.value?.waitedMs).toBe(210);
  });

  it('queues a newcomer behind waiters even when it would fit now', async () => {
    const { acquire, advance, settle } = createBucketHarness(tpmLanes);
    acquire(0, 200); // 50 left
    const big = acquire(0, 200); // waits 150 ms
    await settle();
    const tiny = acquire(0, 1); // 50 tokens are there, but big is first
    await settle();
    expect(tiny.state).toBe('pending');
    await advance(150);
    expect(big.state).toBe('fulfilled');
    await advance(1);
    expect(tiny.state).toBe('fulfilled');
  });

  it('grants in the order asked', async () => {
    const { acquire, advance, settle } = createBucketHarness([{ rpm: 600 }]);
    const all = Array.from({ length: 20 }, () => acquire(0, 0));
    await settle();
    await advance(5_000);
    const order = all.map((a) => a.value?.waitedMs ?? Infinity);
    expect(order).toEqual([...order].sort((x, y) => x - y));
    expect(grantTimes(all)).toHaveLength(20);
  });
});

describe('token bucket: cooldown', () => {
  it('blocks only the lane it was given', async () => {
    const { bucket, acquire, advance, settle } = createBucketHarness([{}, {}]);
    bucket.cooldown(0, 1_000);
    const cooled = acquire(0, 1);
    const other = acquire(1, 1);
    await settle();
    expect(other.value?.waitedMs).toBe(0);
    expect(cooled.state).toBe('pending');
    await advance(999);
    expect(cooled.state).toBe('pending');
    await advance(1);
    expect(cooled.value?.waitedMs).toBe(1_000);
  });

  it('holds back waiters already queued on the lane', async () => {
    const { bucket, acquire, advance, settle } = createBucketHarness([{ rpm: 600 }]);
    acquire(0, 0);
    acquire(0, 0);
    const third = acquire(0, 0); // would go at +50
    await settle();
    bucket.cooldown(0, 500);
    await settle();
    await advance(499);
    expect(third.state).toBe('pending');
    await advance(1);
    expect(third.value?.waitedMs).toBe(500);
  });

  it('never shortens a longer cooldown already running', async () => {
    const { bucket, acquire, advance, settle } = createBucketHarness([{}]);
    bucket.cooldown(0, 1_000);
    bucket.cooldown(0, 10);
    const waiter = acquire(0, 1);
    await settle();
    await advance(999);
    expect(waiter.state).toBe('pending');
    expect((await bucket.stats())[0]?.cooldownRemainingMs).toBe(1);
    await advance(1);
    expect(waiter.state).toBe('fulfilled');
    expect((await bucket.stats())[0]?.cooldownRemainingMs).toBe(0);
  });
});

describe('token bucket: maxInFlight', () => {
  it('caps admissions until a settle frees a slot, whatever the time', async () => {
    const { bucket, acquire, advance, settle } = createBucketHarness([{ maxInFlight: 2 }]);
    const all = Array.from({ length: 4 }, () => acquire(0, 0));
    await settle();
    expect(all.map((a) => a.state)).toEqual(['fulfilled', 'fulfilled', 'pending', 'pending']);
    await advance(3_600_000);
    expect(all[2]?.state).toBe('pending');
    bucket.settle(0, 0, 0);
    await settle();
    expect(all.map((a) => a.state)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'pending']);
    expect((await bucket.stats())[0]?.inFlight).toBe(2);
    bucket.settle(0, 0, 0);
    bucket.settle(0, 0, 0);
    await settle();
    expect(all[3]?.state).toBe('fulfilled');
    expect((await bucket.stats())[0]?.inFlight).toBe(1);
  });

  it('counts in-flight per lane', async () => {
    const { acquire, settle } = createBucketHarness([{ maxInFlight: 1 }, { maxInFlight: 1 }]);
    const a = acquire(0, 0);
    const b = acquire(1, 0);
    const c = acquire(0, 0);
    await settle();
    expect([a.state, b.state, c.state]).toEqual(['fulfilled', 'fulfilled', 'pending']);
  });

  it('does not go below zero on extra settles', async () => {
    const { bucket, acquire, settle } = createBucketHarness([{ maxInFlight: 1 }]);
    bucket.settle(0, 0, 0);
    bucket.settle(0, 0, 0);
    const a = acquire(0, 0);
    const b = acquire(0, 0);
    await settle();
    expect([a.state, b.state]).toEqual(['fulfilled', 'pending']);
  });
});

describe('token bucket: observe (x-ratelimit-remaining-*)', () => {
  it('lowers the available requests from remaining-requests', async () => {
    // rpm 600: 2.5 requests available, one per 100 ms.
    const { bucket, acquire, advance, settle } = createBucketHarness([{ rpm: 600 }]);
    bucket.observe(0, { remainingRequests: 0 });
    expect((await bucket.stats())[0]?.availableRequests).toBe(0);
    const next = acquire(0, 0);
    await settle();
    await advance(99);
    expect(next.state).toBe('pending');
    await advance(1);
    expect(next.value?.waitedMs).toBe(100);
  });

  it('lowers the available tokens from remaining-tokens', async () => {
    // tpm 60_000: 250 tokens available, 1 per ms.
    const { bucket, acquire, advance, settle } = createBucketHarness([{ tpm: 60_000 }]);
    bucket.observe(0, { remainingTokens: 50 });
    const next = acquire(0, 100);
    await settle();
    await advance(49);
    expect(next.state).toBe('pending');
    await advance(1);
    expect(next.value?.waitedMs).toBe(50);
  });

  it('never raises what is available', async () => {
    const { bucket, acquire, settle } = createBucketHarness([{ rpm: 600, tpm: 60_000 }]);
    acquire(0, 200);
    await settle();
    const before = (await bucket.stats())[0];
    bucket.observe(0, {
      remainingRequests: 10_000,
      remainingTokens: 1_000_000,
      limitRequests: 10_000,
    });
    const after = (await bucket.stats())[0];
    expect(after?.availableRequests).toBe(before?.availableRequests);
    expect(after?.availableTokens).toBe(before?.availableTokens);
    expect(after?.availableTokens).toBe(50);
  });

  it('leaves an unlimited lane unlimited', async () => {
    const { bucket, acquire, settle } = createBucketHarness([{}]);
    bucket.observe(0, { remainingRequests: 0, remainingTokens: 0 });
    const next = acquire(0, 100);
    await settle();
    expect(next.value?.waitedMs).toBe(0);
  });

  it('touches only its lane', async () => {
    const { bucket, acquire, settle } = createBucketHarness([{ rpm: 600 }, { rpm: 600 }]);
    bucket.observe(0, { remainingRequests: 0 });
    const other = acquire(1, 0);
    await settle();
    expect(other.value?.waitedMs).toBe(0);
  });
});

describe('token bucket: abort', () => {
  it('rejects an aborted waiter with VOLLEY_ERR_ABORTED', async () => {
    const { acquire, settle } = createBucketHarness([{ rpm: 60 }]);
    acquire(0, 0);
    const controller = new AbortController();
    const waiter = acquire(0, 0, controller.signal);
    await settle();
    expect(waiter.state).toBe('pending');
    controller.abort();
    await settle();
    expect(waiter.state).toBe('rejected');
    expect(codeOf(waiter.error)).toBe(ErrorCode.ABORTED);
  });

  it('leaves the capacity the aborted waiter would have taken for the next one', async () => {
    // rpm 60: one request now, then one per second.
    const { bucket, acquire, advance, settle } = createBucketHarness([{ rpm: 60 }]);
    acquire(0, 0);
    const controller = new AbortController();
    const aborted = acquire(0, 0, controller.signal);
    const next = acquire(0, 0);
    await settle();
    controller.abort();
    await settle();
    await advance(1_000);
    expect(aborted.state).toBe('rejected');
    expect(next.value?.waitedMs).toBe(1_000);
    const stats = (await bucket.stats())[0];
    expect(stats?.grants).toBe(2);
    expect(stats?.inFlight).toBe(2);
  });

  it('does not take back a grant already made', async () => {
    const { bucket, acquire, settle } = createBucketHarness([{ maxInFlight: 1 }]);
    const controller = new AbortController();
    const granted = acquire(0, 0, controller.signal);
    await settle();
    controller.abort();
    await settle();
    expect(granted.state).toBe('fulfilled');
    expect((await bucket.stats())[0]?.inFlight).toBe(1);
  });
});

describe('token bucket: stats', () => {
  it('reports waiting, totalWaitMs, grants, in-flight and availability per lane', async () => {
    // Lane 0: rpm 60 (one now, then one per second). Lane 1: unlimited.
    const { bucket, acquire, advance, settle } = createBucketHarness([{ rpm: 60 }, {}]);
    for (let i = 0; i < 3; i++) acquire(0, 0);
    acquire(1, 0);
    await settle();
    let [zero, one] = await bucket.stats();
    expect(zero).toMatchObject({
      waiting: 2,
      grants: 1,
      inFlight: 1,
      totalWaitMs: 0,
      availableRequests: 0,
    });
    expect(one).toMatchObject({ waiting: 0, grants: 1, inFlight: 1, totalWaitMs: 0 });

    await advance(1_000);
    [zero] = await bucket.stats();
    expect(zero).toMatchObject({ waiting: 1, grants: 2, totalWaitMs: 1_000 });

    await advance(1_000);
    [zero] = await bucket.stats();
    expect(zero).toMatchObject({ waiting: 0, grants: 3, totalWaitMs: 1_000 + 2_000, inFlight: 3 });

    bucket.settle(0, 0, 0);
    [zero] = await bucket.stats();
    expect(zero?.inFlight).toBe(2);
  });

  it('reports availability refilled to now', async () => {
    const { bucket, acquire, advance, settle } = createBucketHarness([{ rpm: 600, tpm: 60_000 }]);
    acquire(0, 250);
    acquire(0, 0);
    await settle();
    let [lane] = await bucket.stats();
    expect(lane?.availableTokens).toBe(0);
    expect(lane?.availableRequests).toBeCloseTo(0.5, 9);
    await advance(100);
    [lane] = await bucket.stats();
    expect(lane?.availableTokens).toBe(100);
    expect(lane?.availableRequests).toBeCloseTo(1.5, 9);
  });
});

describe('token bucket: stop and bad lanes', () => {
  it('rejects every waiter with VOLLEY_ERR_STOPPED and disarms its timers', async () => {
    const { bucket, clock, acquire, advance, settle } = createBucketHarness([
      { rpm: 60 },
      { maxInFlight: 1 },
    ]);
    const granted = acquire(0, 0);
    const waiters = [acquire(0, 0), acquire(0, 0)];
    acquire(1, 0);
    waiters.push(acquire(1, 0));
    await settle();
    expect(clock.pendingTimers).toBe(1);
    await bucket.stop();
    await settle();
    expect(granted.state).toBe('fulfilled');
    for (const waiter of waiters) {
      expect(waiter.state).toBe('rejected');
      expect(codeOf(waiter.error)).toBe(ErrorCode.STOPPED);
    }
    expect(clock.pendingTimers).toBe(0);
    await advance(10_000);
  });

  it('refuses acquisitions after stop and shrugs off late settles', async () => {
    const { bucket, acquire, settle } = createBucketHarness([{}]);
    await bucket.stop();
    const late = acquire(0, 0);
    await settle();
    expect(codeOf(late.error)).toBe(ErrorCode.STOPPED);
    expect(() => {
      bucket.settle(0, 1, 1);
      bucket.cooldown(0, 1);
      bucket.observe(0, { remainingRequests: 0 });
    }).not.toThrow();
  });

  it('rejects an acquisition for a lane that does not exist with VOLLEY_ERR_INVALID_OPTIONS', async () => {
    const { acquire, settle } = createBucketHarness([{}]);
    const bad = acquire(3, 0);
    await settle();
    expect(codeOf(bad.error)).toBe(ErrorCode.INVALID_OPTIONS);
    const good = acquire(0, 0);
    await settle();
    expect(good.state).toBe('fulfilled');
  });
});
