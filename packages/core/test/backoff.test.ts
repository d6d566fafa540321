import { describe, expect, it } from 'vitest';
import type { BackoffPolicy } from '../src/index.js';
import { computeBackoffMs, defaultBackoffPolicy, retryDelayMs } from '../src/index.js';

const policy: BackoffPolicy = { baseDelayMs: 100, maxDelayMs: 5_000 };
/** The largest double below 1: what `Math.random()` can return at most. */
const almostOne = 1 - Number.EPSILON / 2;

describe('computeBackoffMs (full jitter)', () => {
  it('stays within [0, base * 2^attempt) for attempts 0..10 and every random value', () => {
    for (let attempt = 0; attempt <= 10; attempt++) {
      const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
      for (const random of [0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999, almostOne]) {
        const delay = computeBackoffMs(attempt, policy, random);
        expect(Number.isInteger(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThan(ceiling);
      }
    }
  });

  it('is uniform in the ceiling: random r gives floor(r * ceiling)', () => {
    expect(computeBackoffMs(0, policy, 0.5)).toBe(50);
    expect(computeBackoffMs(1, policy, 0.5)).toBe(100);
    expect(computeBackoffMs(2, policy, 0.5)).toBe(200);
    expect(computeBackoffMs(3, policy, 0.25)).toBe(200);
  });

  it('returns 0 when random is 0, whatever the attempt', () => {
    for (const attempt of [0, 1, 5, 30, 1_000])
      expect(computeBackoffMs(attempt, policy, 0)).toBe(0);
  });

  it('approaches the ceiling as random approaches 1', () => {
    expect(computeBackoffMs(0, policy, almostOne)).toBe(99);
    expect(computeBackoffMs(4, policy, almostOne)).toBe(1_599);
  });

  it('caps the ceiling at maxDelayMs once the exponential passes it', () => {
    // 100 * 2^6 = 6400 > 5000
    expect(computeBackoffMs(6, policy, almostOne)).toBe(4_999);
    expect(computeBackoffMs(6, policy, 0.5)).toBe(2_500);
    expect(computeBackoffMs(20, policy, 0.5)).toBe(2_500);
  });

  it('stays finite and capped for huge attempt numbers', () => {
    const delay = computeBackoffMs(10_000, policy, almostOne);
    expect(delay).toBe(4_999);
  });

  it('has a sane default policy', () => {
    expect(defaultBackoffPolicy.baseDelayMs).toBeGreaterThan(0);
    expect(defaultBackoffPolicy.maxDelayMs).toBeGreaterThan(defaultBackoffPolicy.baseDelayMs);
  });
});

describe('retryDelayMs', () => {
  it('is the jittered backoff when the server gave no hint', () => {
    expect(retryDelayMs(2, policy, 0.5, undefined, 60_000)).toBe(200);
  });

  it('honours retry-after when it is longer than the backoff', () => {
    expect(retryDelayMs(0, policy, 0.5, 2_000, 60_000)).toBe(2_000);
  });

  it('keeps the backoff when retry-after is shorter', () => {
    expect(retryDelayMs(3, policy, 0.5, 10, 60_000)).toBe(400);
    expect(retryDelayMs(3, policy, 0.5, 0, 60_000)).toBe(400);
  });

  it('caps retry-after at retryAfterCapMs', () => {
    expect(retryDelayMs(0, policy, 0.5, 86_400_000, 30_000)).toBe(30_000);
  });

  it('never returns less than the backoff even when the cap is below it', () => {
    expect(retryDelayMs(5, policy, 0.5, 86_400_000, 100)).toBe(1_600);
  });
});
