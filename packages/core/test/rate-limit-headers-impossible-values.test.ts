// D2 (adversarial trial): rate-limit headers that cannot be true are read as unknown, so no
// header can stop a lane for good (limit 0) or turn into Infinity.
import { describe, expect, it } from 'vitest';
import { parseDurationMs, parseRateLimitHeaders } from '../src/rate-limit-headers.js';

const HUGE = '9'.repeat(400);

describe('rate-limit headers: impossible values are unknown', () => {
  it('ignores a limit of 0 (requests or tokens), which would stop a lane for good', () => {
    expect(
      parseRateLimitHeaders({ 'x-ratelimit-limit-requests': '0', 'x-ratelimit-limit-tokens': '0' }),
    ).toBeUndefined();
    expect(
      parseRateLimitHeaders({
        'x-ratelimit-limit-tokens': '0',
        'x-ratelimit-remaining-tokens': '0',
      }),
    ).toEqual({ remainingTokens: 0 });
  });

  it('ignores negative, fractional and non-finite counts', () => {
    expect(
      parseRateLimitHeaders({
        'x-ratelimit-limit-requests': '-5',
        'x-ratelimit-limit-tokens': '1.5',
        'x-ratelimit-remaining-requests': HUGE,
        'x-ratelimit-remaining-tokens': 'Infinity',
      }),
    ).toBeUndefined();
  });

  it('ignores counts too large to be exact (past 2^53 - 1)', () => {
    expect(parseRateLimitHeaders({ 'x-ratelimit-limit-requests': '9007199254740993' })).toBe(
      undefined,
    );
    expect(parseRateLimitHeaders({ 'x-ratelimit-limit-requests': '9007199254740991' })).toEqual({
      limitRequests: 9007199254740991,
    });
  });

  it('reads a reset of hundreds of digits as no reset, not Infinity', () => {
    expect(parseDurationMs(HUGE)).toBeUndefined();
    expect(parseDurationMs(`${HUGE}h`)).toBeUndefined();
    expect(parseRateLimitHeaders({ 'x-ratelimit-reset-requests': `${HUGE}s` })).toBeUndefined();
  });
});
