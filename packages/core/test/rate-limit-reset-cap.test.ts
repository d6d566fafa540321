// D2 (adversarial trial): resets learned from x-ratelimit-* headers are capped like retry-after
// (one rule, one cap), so `1h30m` or `999999999h` cannot park a lane.
import { describe, expect, it } from 'vitest';
import { capServerWaitMs, retryDelayMs } from '../src/backoff.js';
import { capResets, parseRateLimitHeaders } from '../src/rate-limit-headers.js';

describe('rate-limit resets: capped like retry-after', () => {
  it('caps learned resets with the retry-after cap, the one rule for server waits', () => {
    const snapshot = parseRateLimitHeaders({
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-reset-requests': '1h30m',
      'x-ratelimit-remaining-tokens': '0',
      'x-ratelimit-reset-tokens': '999999999h',
    });
    expect(snapshot).toEqual({
      remainingRequests: 0,
      resetRequestsMs: 5_400_000,
      remainingTokens: 0,
      resetTokensMs: 999_999_999 * 3_600_000,
    });
    expect(capResets(snapshot ?? {}, 60_000)).toEqual({
      remainingRequests: 0,
      resetRequestsMs: 60_000,
      remainingTokens: 0,
      resetTokensMs: 60_000,
    });
    // Short resets pass unchanged, and retry-after goes through the same cap.
    expect(capResets({ resetRequestsMs: 700 }, 60_000)).toEqual({ resetRequestsMs: 700 });
    expect(capServerWaitMs(5_400_000, 60_000)).toBe(60_000);
    expect(retryDelayMs(0, { baseDelayMs: 1, maxDelayMs: 1 }, 0, 5_400_000, 60_000)).toBe(60_000);
  });
});
