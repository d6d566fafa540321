import { ErrorCode, VolleyError } from '@volley/core';
import { describe, expect, it } from 'vitest';
import { SameErrorRule } from '../src/run/pass-common.js';

const notFound = (message = 'HTTP 404: The model `nope` does not exist.') =>
  new VolleyError(ErrorCode.HTTP, message, { status: 404 });

/** Feeds outcomes in order; returns the reason and the 1-based outcome that stopped, if any. */
function feed(
  rule: SameErrorRule,
  outcomes: unknown[],
): { reason: string; at: number } | undefined {
  for (const [i, outcome] of outcomes.entries()) {
    const reason = rule.observe(outcome);
    if (reason !== undefined) return { reason, at: i + 1 };
  }
  return undefined;
}

describe('SameErrorRule (--stop-after-same-error)', () => {
  it('stops at the nth identical permanent failure, quoting it without its final period', () => {
    const stop = feed(new SameErrorRule(3), [notFound(), notFound(), notFound(), notFound()]);
    expect(stop).toEqual({
      reason:
        'the first 3 answered lines all failed with HTTP 404: The model `nope` does not exist',
      at: 3,
    });
  });

  it('says so once', () => {
    const rule = new SameErrorRule(1);
    expect(rule.observe(notFound())).toBeDefined();
    expect(rule.observe(notFound())).toBeUndefined();
  });

  it('is disarmed by a success, another message, another status or a transient failure', () => {
    const others: unknown[] = [
      undefined,
      notFound('HTTP 404: The model `other` does not exist.'),
      new VolleyError(ErrorCode.HTTP, 'HTTP 404: The model `nope` does not exist.', {
        status: 400,
      }),
      new VolleyError(ErrorCode.HTTP, 'HTTP 503: busy', { status: 503 }),
      new VolleyError(ErrorCode.TIMEOUT, 'call did not complete'),
      new Error('not a VolleyError'),
    ];
    for (const other of others) {
      const rule = new SameErrorRule(3);
      expect(feed(rule, [notFound(), other, notFound(), notFound(), notFound()])).toBeUndefined();
    }
  });

  it('never stops with 0', () => {
    expect(
      feed(
        new SameErrorRule(0),
        Array.from({ length: 100 }, () => notFound()),
      ),
    ).toBeUndefined();
  });
});
