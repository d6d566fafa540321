// Live correction from x-ratelimit-* headers: a lane with no configured limit adopts the one the
// server announces; a configured limit is never overridden; `remaining` only ever lowers.
import { describe, expect, it } from 'vitest';
import { createBucketHarness } from './helpers/bucket-harness.js';

describe('token bucket: limits learned from headers', () => {
  it('an unlimited lane adopts the announced request limit and paces at it', async () => {
    const { bucket, acquire, advance, settle } = createBucketHarness([{}], 1_000);
    bucket.observe(0, { limitRequests: 60, remainingRequests: 1 });
    await settle();
    const first = acquire(0, 0);
    const second = acquire(0, 0);
    await settle();
    expect(first.value?.waitedMs).toBe(0);
    expect(second.state).toBe('pending');
    await advance(1_000);
    expect(second.value?.waitedMs).toBe(1_000);
  });

  it('never overrides a configured limit with an announced one', async () => {
    const { bucket, acquire, settle } = createBucketHarness([{ rpm: 6_000 }], 1_000);
    bucket.observe(0, { limitRequests: 60 });
    await settle();
    const burst = Array.from({ length: 50 }, () => acquire(0, 0));
    await settle();
    expect(burst.every((grant) => grant.state === 'fulfilled')).toBe(true);
  });

  it('lowers what is left to the announced remaining, and never raises it', async () => {
    const { bucket, settle } = createBucketHarness([{ rpm: 600, tpm: 60_000 }], 1_000);
    bucket.observe(0, { remainingRequests: 2, remainingTokens: 100 });
    await settle();
    expect((await bucket.stats())[0]).toMatchObject({ availableRequests: 2, availableTokens: 100 });
    bucket.observe(0, { remainingRequests: 500, remainingTokens: 50_000 });
    await settle();
    expect((await bucket.stats())[0]).toMatchObject({ availableRequests: 2, availableTokens: 100 });
  });

  it('cools an unknown-rate lane down until the announced reset when nothing remains', async () => {
    const { bucket, acquire, advance, settle } = createBucketHarness([{}]);
    bucket.observe(0, { remainingRequests: 0, resetRequestsMs: 700 });
    await settle();
    const next = acquire(0, 0);
    await settle();
    await advance(699);
    expect(next.state).toBe('pending');
    await advance(1);
    expect(next.value?.waitedMs).toBe(700);
  });
});
