// Regressions: aborted waiters used to block their lane, inflate `waiting`, and an already-aborted
// signal was ignored (the acquisition was granted anyway).
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../src/index.js';
import { codeOf } from './helpers/async.js';
import { createBucketHarness } from './helpers/bucket-harness.js';

describe('token bucket: aborted waiters', () => {
  it('an aborted head waiter does not hold back the waiter behind it', async () => {
    // tpm 60_000 = 1 token per ms, 250-token burst.
    const { acquire, advance, settle } = createBucketHarness([{ tpm: 60_000 }]);
    acquire(0, 250); // empties the bucket
    const controller = new AbortController();
    const head = acquire(0, 250, controller.signal); // could go at +250
    const small = acquire(0, 10); // could go at +10 once the head is gone
    await settle();
    controller.abort();
    await settle();
    expect(codeOf(head.error)).toBe(ErrorCode.ABORTED);
    await advance(10);
    expect(small.value?.waitedMs).toBe(10);
  });

  it('stats.waiting does not count aborted waiters', async () => {
    const { bucket, acquire, settle } = createBucketHarness([{ rpm: 60 }]);
    acquire(0, 0);
    const controller = new AbortController();
    acquire(0, 0, controller.signal);
    acquire(0, 0);
    await settle();
    controller.abort();
    await settle();
    expect((await bucket.stats())[0]?.waiting).toBe(1);
  });

  it('rejects an acquisition whose signal is already aborted, when capacity is there', async () => {
    const { bucket, acquire, settle } = createBucketHarness([{ maxInFlight: 1 }]);
    const dead = acquire(0, 0, AbortSignal.abort());
    await settle();
    expect(codeOf(dead.error)).toBe(ErrorCode.ABORTED);
    expect((await bucket.stats())[0]?.inFlight).toBe(0);
  });

  it('rejects an acquisition whose signal is already aborted, when it would have to wait', async () => {
    const { bucket, acquire, advance, settle } = createBucketHarness([{ rpm: 60 }]);
    acquire(0, 0);
    const dead = acquire(0, 0, AbortSignal.abort());
    const next = acquire(0, 0);
    await settle();
    expect(codeOf(dead.error)).toBe(ErrorCode.ABORTED);
    await advance(1_000);
    expect(next.value?.waitedMs).toBe(1_000);
    expect((await bucket.stats())[0]?.grants).toBe(2);
  });
});
