// The after-failure decision is pure: every rule of its table is checked here without a runtime.
import { describe, expect, it } from 'vitest';
import type { CallCounts, FailureContext, RetryPolicy } from '../src/after-failure.js';
import { afterFailure } from '../src/after-failure.js';
import type { SerializedError } from '../src/index.js';
import { ErrorCode } from '../src/index.js';

const policy: RetryPolicy = {
  maxRetries: 2,
  maxAmbiguousRetries: 1,
  backoff: { baseDelayMs: 1_000, maxDelayMs: 60_000 },
  retryAfterCapMs: 30_000,
};

const fresh: CallCounts = {
  attempts: 1,
  failures: 0,
  ambiguousAttempts: 0,
  deadlineAt: 1_000_000,
  timeoutMs: 600_000,
};

function decide(
  failure: Partial<SerializedError> & { code: string },
  overrides: Partial<Omit<FailureContext, 'failure'>> = {},
) {
  return afterFailure({
    failure: { name: 'VolleyError', message: 'm', ...failure },
    endpoint: 1,
    slotLimited: false,
    call: fresh,
    policy,
    now: 0,
    random: 0.5,
    ...overrides,
  });
}

describe('afterFailure', () => {
  it('retries a 5xx after the jittered backoff, counting it against maxRetries', () => {
    const decision = decide({ code: ErrorCode.HTTP, status: 502, sent: true });
    expect(decision.next).toEqual({ do: 'retry', delayMs: 500, ambiguous: false });
    expect(decision).toMatchObject({
      endpoint: 'fault',
      countsAsFailure: true,
      countsAsAmbiguous: false,
      billed: false,
      refundTokens: false,
    });
    expect(decision.cooldownMs).toBeUndefined();
    expect(decision.error.endpoint).toBe(1);
  });

  it('gives up with RETRIES_EXHAUSTED once maxRetries is used, keeping the status', () => {
    const decision = decide(
      { code: ErrorCode.HTTP, status: 500 },
      { call: { ...fresh, attempts: 3, failures: 2 } },
    );
    expect(decision.next.do).toBe('fail');
    const error = (decision.next as { error: { code: string; status?: number; message: string } })
      .error;
    expect(error.code).toBe(ErrorCode.RETRIES_EXHAUSTED);
    expect(error.status).toBe(500);
    expect(error.message).toMatch(/^gave up after 3 attempts/);
  });

  it('fails at once on a fatal 400, with the server error as is', () => {
    const decision = decide({ code: ErrorCode.HTTP, status: 400, errorType: 'invalid_request' });
    expect(decision.next).toMatchObject({
      do: 'fail',
      error: { code: ErrorCode.HTTP, status: 400 },
    });
    expect(decision.endpoint).toBe('fine');
    expect(decision.countsAsFailure).toBe(false);
  });

  it('paces a 429: cools the lane for retry-after, refunds tokens, and does not count it', () => {
    const decision = decide(
      { code: ErrorCode.RATE_LIMITED, status: 429, retryAfterMs: 4_000, sent: true },
      { call: { ...fresh, failures: 2 } },
    );
    expect(decision.pacing).toBe('rate-limited');
    expect(decision.cooldownMs).toBe(4_000);
    expect(decision.refundTokens).toBe(true);
    expect(decision.countsAsFailure).toBe(false);
    // maxRetries is used up, yet a 429 is retried: only the deadline bounds it.
    expect(decision.next).toEqual({ do: 'retry', delayMs: 4_000, ambiguous: false });
  });

  it('caps a hostile retry-after at retryAfterCapMs', () => {
    const decision = decide({ code: ErrorCode.RATE_LIMITED, status: 429, retryAfterMs: 9e9 });
    expect(decision.cooldownMs).toBe(30_000);
    expect(decision.next).toEqual({ do: 'retry', delayMs: 30_000, ambiguous: false });
  });

  it('requeues a slot-limited 503 as backpressure: no retry counted, no endpoint fault', () => {
    const decision = decide(
      { code: ErrorCode.HTTP, status: 503, retryAfterMs: 200 },
      { slotLimited: true, call: { ...fresh, failures: 2 } },
    );
    expect(decision.next).toEqual({ do: 'requeue' });
    expect(decision).toMatchObject({
      pacing: 'backpressure',
      cooldownMs: 200,
      endpoint: 'fine',
      countsAsFailure: false,
    });
  });

  it('treats the same 503 from an ordinary endpoint as a fault to retry', () => {
    const decision = decide({ code: ErrorCode.HTTP, status: 503 });
    expect(decision.pacing).toBeUndefined();
    expect(decision.endpoint).toBe('fault');
    expect(decision.next.do).toBe('retry');
  });

  it('stops the endpoint on auth or quota and requeues the call, which is not at fault', () => {
    for (const failure of [
      { code: ErrorCode.AUTH, status: 401 },
      { code: ErrorCode.QUOTA, status: 429, retryable: false },
    ]) {
      const decision = decide(failure);
      expect(decision.endpoint).toBe('stop');
      expect(decision.next).toEqual({ do: 'requeue' });
    }
  });

  it('retries an ambiguous loss once, counted as billed, then gives up', () => {
    const first = decide({ code: ErrorCode.CONNECTION_LOST, sent: true });
    expect(first.next).toEqual({ do: 'retry', delayMs: 500, ambiguous: true });
    expect(first).toMatchObject({ billed: true, countsAsAmbiguous: true, countsAsFailure: true });
    const second = decide(
      { code: ErrorCode.CONNECTION_LOST, sent: true },
      { call: { ...fresh, attempts: 2, failures: 1, ambiguousAttempts: 1 } },
    );
    expect(second.next).toMatchObject({
      do: 'fail',
      error: { code: ErrorCode.RETRIES_EXHAUSTED },
    });
    expect(second.billed).toBe(true);
  });

  it('retries a connect failure freely and hands its tokens back (nothing was sent)', () => {
    const decision = decide({ code: ErrorCode.CONNECT, sent: false });
    expect(decision).toMatchObject({ billed: false, refundTokens: true, endpoint: 'fault' });
    expect(decision.next.do).toBe('retry');
  });

  it('fails with TIMEOUT, the failure as cause, when the retry would land past the deadline', () => {
    const decision = decide(
      { code: ErrorCode.HTTP, status: 500 },
      { now: 999_600, call: { ...fresh, timeoutMs: 1_234 } },
    );
    expect(decision.next.do).toBe('fail');
    const error = (decision.next as { error: Error & { code: string } }).error;
    expect(error.code).toBe(ErrorCode.TIMEOUT);
    expect(error.message).toBe('call did not complete within 1234 ms');
    expect((error.cause as { status?: number }).status).toBe(500);
  });

  it('doubles the backoff with each attempt', () => {
    const delays = [1, 2, 3].map(
      (attempts) =>
        (
          decide(
            { code: ErrorCode.HTTP, status: 500 },
            { call: { ...fresh, attempts, failures: 0 }, policy: { ...policy, maxRetries: 9 } },
          ).next as { delayMs: number }
        ).delayMs,
    );
    expect(delays).toEqual([500, 1_000, 2_000]);
  });
});
