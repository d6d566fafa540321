// Regression: V8's Date.parse accepts these as dates, so they used to parse as 0 ms.
import { describe, expect, it } from 'vitest';
import { parseRetryAfterMs } from '../src/index.js';

const now = Date.parse('2025-01-15T12:00:00Z');

describe('parseRetryAfterMs: malformed values V8 Date.parse accepts', () => {
  it.each(['-1', '+5', '1.', '1,5', '1 2', '0.5.1', 'abc 2'])('%j is undefined', (bad) => {
    expect(parseRetryAfterMs({ 'retry-after': bad }, now)).toBeUndefined();
  });

  it.each([
    ['Wed, 15 Jan 2025 12:00:05 GMT', 5_000],
    ['Wednesday, 15-Jan-25 12:00:07 GMT', 7_000],
    ['Wed Jan 15 12:00:09 2025', 9_000],
  ])('accepts the HTTP-date form %j', (date, expected) => {
    expect(parseRetryAfterMs({ 'retry-after': date }, now)).toBe(expected);
  });
});
