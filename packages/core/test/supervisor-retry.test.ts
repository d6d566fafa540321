import { describe, expect, it } from 'vitest';
import type { RetryEvent } from '../src/index.js';
import { ErrorCode } from '../src/index.js';
import { causeCodeOf, codeOf } from './helpers/async.js';
import { createHarness, useSupervisorHarness } from './helpers/supervisor-harness.js';

useSupervisorHarness();

// Harness defaults: backoff base 1000 ms, random 0.5, so retry n (0-based) waits 0.5 * 1000 * 2^n.

describe('supervisor: retries', () => {
  it('retries an HTTP 503 after the backoff delay and not before', async () => {
    const h = createHarness();
    const retries: RetryEvent[] = [];
    h.events.on('retry', (e) => retries.push(e));
    const call = h.call();
    await h.settle();
    const first = h.dispatcher.last();
    h.dispatcher.fail(first.id, { code: ErrorCode.HTTP, status: 503, sent: true });
    await h.settle();
    expect(h.supervisor.stats()).toMatchObject({ retries: 1, backingOff: 1, inFlight: 0 });
    await h.advance(499);
    expect(h.dispatcher.dispatched).toHaveLength(1);
    await h.advance(1);
    expect(h.dispatcher.dispatched).toHaveLength(2);
    const second = h.dispatcher.last();
    expect(second.id).not.toBe(first.id);
    expect(second.body).toBe(first.body);
    expect(h.supervisor.stats().backingOff).toBe(0);
    h.dispatcher.succeed(second.id, { ok: true });
    await h.settle();
    expect(call.value).toMatchObject({ body: { ok: true }, attempts: 2 });
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatchObject({ attempt: 1, delayMs: 500, ambiguous: false });
    expect(retries[0]?.error.status).toBe(503);
    expect(h.supervisor.stats()).toMatchObject({ succeeded: 1, failed: 0, retries: 1 });
  });

  it('doubles the jittered backoff on each retry', async () => {
    const h = createHarness();
    const delays: number[] = [];
    h.events.on('retry', (e) => delays.push(e.delayMs));
    const call = h.call();
    await h.settle();
    for (const delay of [500, 1_000, 2_000]) {
      h.dispatcher.fail(h.dispatcher.last().id, { code: ErrorCode.HTTP, status: 500 });
      await h.settle();
      const before = h.dispatcher.dispatched.length;
      await h.advance(delay - 1);
      expect(h.dispatcher.dispatched).toHaveLength(before);
      await h.advance(1);
      expect(h.dispatcher.dispatched).toHaveLength(before + 1);
    }
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(call.value?.attempts).toBe(4);
    expect(delays).toEqual([500, 1_000, 2_000]);
  });

  it('waits at least retry-after on a 429, and cools the endpoint down for the other calls', async () => {
    const h = createHarness({ concurrency: 1 });
    let rateLimited = 0;
    h.events.on('rateLimited', () => rateLimited++);
    const limited = h.call({ body: { n: 'limited' } });
    const other = h.call({ body: { n: 'other' } });
    await h.settle();
    expect(h.dispatcher.dispatched).toHaveLength(1);
    h.dispatcher.fail(h.dispatcher.last().id, {
      code: ErrorCode.RATE_LIMITED,
      status: 429,
      retryAfterMs: 3_000,
    });
    await h.settle();
    // The slot is free, but the endpoint is cooling down: the queued call waits too.
    expect(h.dispatcher.dispatched).toHaveLength(1);
    expect((await h.bucket.stats())[0]?.cooldownRemainingMs).toBe(3_000);
    await h.advance(2_999);
    expect(h.dispatcher.dispatched).toHaveLength(1);
    await h.advance(1);
    expect(h.dispatcher.dispatched).toHaveLength(2);
    expect(h.dispatcher.last().body).toEqual({ n: 'other' });
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(h.dispatcher.last().body).toEqual({ n: 'limited' });
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect([limited.state, other.state]).toEqual(['fulfilled', 'fulfilled']);
    expect(h.supervisor.stats().rateLimited).toBe(1);
    expect(rateLimited).toBe(1);
  });

  it('caps a huge retry-after at retryAfterCapMs', async () => {
    const h = createHarness({ retryAfterCapMs: 5_000 });
    h.call();
    await h.settle();
    h.dispatcher.fail(h.dispatcher.last().id, {
      code: ErrorCode.RATE_LIMITED,
      status: 429,
      retryAfterMs: 86_400_000,
    });
    await h.settle();
    expect((await h.bucket.stats())[0]?.cooldownRemainingMs).toBe(5_000);
    await h.advance(4_999);
    expect(h.dispatcher.dispatched).toHaveLength(1);
    await h.advance(1);
    expect(h.dispatcher.dispatched).toHaveLength(2);
  });

  it('gives up after maxRetries with VOLLEY_ERR_RETRIES_EXHAUSTED carrying the last error', async () => {
    const h = createHarness({ maxRetries: 2 });
    const call = h.call();
    await h.settle();
    for (let attempt = 0; attempt < 3; attempt++) {
      h.dispatcher.fail(h.dispatcher.last().id, { code: ErrorCode.HTTP, status: 503 });
      await h.settle();
      await h.advance(60_000);
    }
    expect(h.dispatcher.dispatched).toHaveLength(3);
    expect(call.state).toBe('rejected');
    expect(codeOf(call.error)).toBe(ErrorCode.RETRIES_EXHAUSTED);
    expect(causeCodeOf(call.error)).toBe(ErrorCode.HTTP);
    expect((call.error as { status?: number }).status).toBe(503);
    expect(call.error).toMatchObject({ attempts: 3, transient: true });
    expect(h.supervisor.stats()).toMatchObject({
      failed: 1,
      succeeded: 0,
      retries: 2,
      inFlight: 0,
      backingOff: 0,
    });
  });

  it('never retries a fatal 400', async () => {
    const h = createHarness();
    const call = h.call();
    await h.settle();
    h.dispatcher.fail(h.dispatcher.last().id, {
      code: ErrorCode.HTTP,
      status: 400,
      errorType: 'invalid_request_error',
    });
    await h.settle();
    await h.advance(600_000);
    expect(h.dispatcher.dispatched).toHaveLength(1);
    expect(codeOf(call.error)).toBe(ErrorCode.HTTP);
    expect((call.error as { status?: number }).status).toBe(400);
    expect((call.error as { errorType?: string }).errorType).toBe('invalid_request_error');
    expect((call.error as { endpoint?: number }).endpoint).toBe(0);
    expect(call.error).toMatchObject({ attempts: 1, transient: false });
    expect(h.supervisor.stats()).toMatchObject({ failed: 1, retries: 0 });
    expect(h.supervisor.stats().byEndpoint[0]?.failed).toBe(1);
  });

  it('never retries a 503 the server marked x-should-retry: false', async () => {
    const h = createHarness();
    const call = h.call();
    await h.settle();
    h.dispatcher.fail(h.dispatcher.last().id, {
      code: ErrorCode.HTTP,
      status: 503,
      retryable: false,
    });
    await h.settle();
    await h.advance(60_000);
    expect(h.dispatcher.dispatched).toHaveLength(1);
    expect(codeOf(call.error)).toBe(ErrorCode.HTTP);
  });

  it('fails with VOLLEY_ERR_TIMEOUT when the retry delay would pass the call deadline', async () => {
    const h = createHarness();
    const call = h.call({ timeoutMs: 400 });
    await h.settle();
    h.dispatcher.fail(h.dispatcher.last().id, { code: ErrorCode.HTTP, status: 503 }); // next try at +500
    await h.settle();
    expect(codeOf(call.error)).toBe(ErrorCode.TIMEOUT);
    expect(causeCodeOf(call.error)).toBe(ErrorCode.HTTP);
    expect(h.supervisor.stats().backingOff).toBe(0);
  });

  it('puts a retry ahead of calls that were queued before it came due', async () => {
    const h = createHarness({ concurrency: 1 });
    h.call({ body: { n: 'a' } });
    h.call({ body: { n: 'b' } });
    h.call({ body: { n: 'c' } });
    await h.settle();
    h.dispatcher.fail(h.dispatcher.last().id, { code: ErrorCode.CONNECT, sent: false }); // a backs off 500 ms
    await h.settle();
    expect(h.dispatcher.last().body).toEqual({ n: 'b' });
    await h.advance(500); // a is due while b holds the slot
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(h.dispatcher.last().body).toEqual({ n: 'a' });
  });
});
