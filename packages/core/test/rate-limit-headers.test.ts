import { describe, expect, it } from 'vitest';
import { parseDurationMs, parseRateLimitHeaders, parseRetryAfterMs } from '../src/index.js';

const now = Date.parse('2025-01-15T12:00:00Z');

describe('parseRetryAfterMs', () => {
  it('reads delta-seconds', () => {
    expect(parseRetryAfterMs({ 'retry-after': '2' }, now)).toBe(2_000);
    expect(parseRetryAfterMs({ 'retry-after': '0' }, now)).toBe(0);
    expect(parseRetryAfterMs({ 'retry-after': ' 30 ' }, now)).toBe(30_000);
  });

  it('reads fractional seconds', () => {
    expect(parseRetryAfterMs({ 'retry-after': '1.5' }, now)).toBe(1_500);
    expect(parseRetryAfterMs({ 'retry-after': '0.25' }, now)).toBe(250);
  });

  it('reads an HTTP date relative to the given now', () => {
    expect(parseRetryAfterMs({ 'retry-after': 'Wed, 15 Jan 2025 12:00:05 GMT' }, now)).toBe(5_000);
    expect(
      parseRetryAfterMs({ 'retry-after': 'Wed, 15 Jan 2025 12:01:00 GMT' }, now + 30_000),
    ).toBe(30_000);
  });

  it('reads an HTTP date in the past as 0', () => {
    expect(parseRetryAfterMs({ 'retry-after': 'Wed, 15 Jan 2025 11:59:00 GMT' }, now)).toBe(0);
  });

  it('prefers retry-after-ms over retry-after', () => {
    expect(parseRetryAfterMs({ 'retry-after-ms': '350', 'retry-after': '10' }, now)).toBe(350);
    expect(parseRetryAfterMs({ 'retry-after-ms': '12.5' }, now)).toBe(12.5);
    expect(parseRetryAfterMs({ 'retry-after-ms': '0', 'retry-after': '10' }, now)).toBe(0);
  });

  it('falls back to retry-after when retry-after-ms is malformed', () => {
    for (const bad of ['', '  ', 'abc', '-5', 'NaN', 'Infinity']) {
      expect(parseRetryAfterMs({ 'retry-after-ms': bad, 'retry-after': '3' }, now)).toBe(3_000);
      expect(parseRetryAfterMs({ 'retry-after-ms': bad }, now)).toBeUndefined();
    }
  });

  it('takes the first value of a repeated header', () => {
    expect(parseRetryAfterMs({ 'retry-after': ['4', '9'] }, now)).toBe(4_000);
    expect(parseRetryAfterMs({ 'retry-after-ms': ['40', '90'] }, now)).toBe(40);
  });

  it('ignores malformed values (undefined, never a throw)', () => {
    for (const bad of ['', '   ', 'soon', '5s', '1e3', '120 seconds', 'NaN', 'Infinity']) {
      expect(parseRetryAfterMs({ 'retry-after': bad }, now)).toBeUndefined();
    }
  });

  it('is undefined when neither header is present', () => {
    expect(parseRetryAfterMs({}, now)).toBeUndefined();
    expect(parseRetryAfterMs({ 'retry-after': undefined }, now)).toBeUndefined();
    expect(parseRetryAfterMs({ 'x-ratelimit-reset-requests': '1s' }, now)).toBeUndefined();
  });

  it('defaults now to the wall clock', () => {
    const inAMinute = new Date(Date.now() + 60_000).toUTCString();
    const ms = parseRetryAfterMs({ 'retry-after': inAMinute });
    expect(ms).toBeGreaterThan(55_000);
    expect(ms).toBeLessThanOrEqual(60_000);
  });
});

describe('parseDurationMs (Go durations)', () => {
  it.each([
    ['6m0s', 360_000],
    ['1.5s', 1_500],
    ['120ms', 120],
    ['1h2m3s', 3_723_000],
    ['2', 2_000],
    ['0.5', 500],
    ['0s', 0],
    ['59.9s', 59_900],
    ['1m30.5s', 90_500],
    ['1h', 3_600_000],
    ['1m', 60_000],
    ['2m15ms', 120_015],
    [' 7s ', 7_000],
  ])('%j is %d ms', (raw, expected) => {
    expect(parseDurationMs(raw)).toBeCloseTo(expected, 9);
  });

  it('reads sub-millisecond units', () => {
    expect(parseDurationMs('1500us')).toBeCloseTo(1.5, 9);
    expect(parseDurationMs('1500µs')).toBeCloseTo(1.5, 9);
    expect(parseDurationMs('2000000ns')).toBeCloseTo(2, 9);
  });

  it.each([
    ['garbage'],
    [''],
    ['   '],
    ['-1s'],
    ['1.5.2s'],
    ['s'],
    ['1x'],
    ['1s garbage'],
    ['1d'],
    ['ms'],
  ])('%j is undefined', (raw) => {
    expect(parseDurationMs(raw)).toBeUndefined();
  });

  it('is undefined for undefined', () => {
    expect(parseDurationMs(undefined)).toBeUndefined();
  });
});

describe('parseRateLimitHeaders', () => {
  it('reads the whole x-ratelimit family', () => {
    expect(
      parseRateLimitHeaders({
        'x-ratelimit-limit-requests': '600',
        'x-ratelimit-remaining-requests': '599',
        'x-ratelimit-reset-requests': '100ms',
        'x-ratelimit-limit-tokens': '150000',
        'x-ratelimit-remaining-tokens': '149000',
        'x-ratelimit-reset-tokens': '6m0s',
      }),
    ).toEqual({
      limitRequests: 600,
      remainingRequests: 599,
      resetRequestsMs: 100,
      limitTokens: 150_000,
      remainingTokens: 149_000,
      resetTokensMs: 360_000,
    });
  });

  it('keeps the well-formed fields and drops malformed ones', () => {
    expect(
      parseRateLimitHeaders({
        'x-ratelimit-limit-requests': 'lots',
        'x-ratelimit-remaining-requests': '12',
        'x-ratelimit-reset-requests': 'soon',
        'x-ratelimit-limit-tokens': '-5',
        'x-ratelimit-remaining-tokens': '1.5',
        'x-ratelimit-reset-tokens': '1s',
      }),
    ).toEqual({ remainingRequests: 12, resetTokensMs: 1_000 });
  });

  it('reads a bare number reset as seconds and tolerates padding', () => {
    expect(
      parseRateLimitHeaders({
        'x-ratelimit-reset-requests': '1',
        'x-ratelimit-remaining-tokens': ' 40 ',
      }),
    ).toEqual({ resetRequestsMs: 1_000, remainingTokens: 40 });
  });

  it('reads 0 remaining as 0, not as absent', () => {
    expect(parseRateLimitHeaders({ 'x-ratelimit-remaining-requests': '0' })).toEqual({
      remainingRequests: 0,
    });
  });

  it('takes the first value of a repeated header', () => {
    expect(parseRateLimitHeaders({ 'x-ratelimit-remaining-tokens': ['10', '20'] })).toEqual({
      remainingTokens: 10,
    });
  });

  it('is undefined when nothing is present or everything is malformed', () => {
    expect(parseRateLimitHeaders({})).toBeUndefined();
    expect(parseRateLimitHeaders({ 'content-type': 'application/json' })).toBeUndefined();
    expect(
      parseRateLimitHeaders({
        'x-ratelimit-remaining-requests': 'many',
        'x-ratelimit-remaining-tokens': '',
        'x-ratelimit-reset-tokens': 'later',
      }),
    ).toBeUndefined();
  });
});
