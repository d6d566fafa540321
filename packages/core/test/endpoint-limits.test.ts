import { EventEmitter } from 'eventemitter3';
import { describe, expect, it } from 'vitest';
import type { LimitDecision } from '../src/adaptive-limit.js';
import { defaultAdaptiveLimitPolicy } from '../src/adaptive-limit.js';
import { EndpointHealth, WAIT_FOR_CIRCUIT } from '../src/endpoint-health.js';

import { createEndpointLimits } from '../src/endpoint-limits.js';
import type { VolleyEvents, WorkOutcome } from '../src/index.js';
import { defaultCircuitBreaker, ErrorCode } from '../src/index.js';
import { ManualClock } from './helpers/manual-clock.js';

const policy = { ...defaultAdaptiveLimitPolicy, minWindowSamples: 4 };

function success(headersMs: number, ttftMs?: number): WorkOutcome {
  return {
    id: 1,
    ok: true,
    status: 200,
    requestId: 'r',
    timing: { latencyMs: 500, headersMs, ...(ttftMs === undefined ? {} : { ttftMs }) },
  };
}

function failure(status: number | undefined, code: string): WorkOutcome {
  return {
    id: 1,
    ok: false,
    error: { name: 'VolleyError', message: 'x', code, ...(status === undefined ? {} : { status }) },
  };
}

describe('createEndpointLimits', () => {
  it('limits adaptive endpoints only; the others have no limit of their own', () => {
    const limits = createEndpointLimits({
      policies: [policy, undefined],
      clock: new ManualClock(),
    });
    expect(limits.limit(0)).toBe(4);
    expect(limits.limit(1)).toBe(Number.POSITIVE_INFINITY);
    expect(limits.limits()).toEqual([4, undefined]);
    expect([limits.isAdaptive(0), limits.isAdaptive(1)]).toEqual([true, false]);
  });

  it('cuts on 429, 503 and timeouts, not on other failures, and reports why', () => {
    const decisions: Array<[number, LimitDecision]> = [];
    const limits = createEndpointLimits({
      policies: [
        { ...policy, initial: 40 },
        { ...policy, initial: 40 },
        { ...policy, initial: 40 },
        { ...policy, initial: 40 },
      ],
      clock: new ManualClock(),
      onDecision: (endpoint, decision) => decisions.push([endpoint, decision]),
    });
    limits.record(0, failure(429, ErrorCode.RATE_LIMITED), 40, false);
    limits.record(1, failure(503, ErrorCode.HTTP), 40, false);
    limits.record(2, failure(undefined, ErrorCode.TIMEOUT), 40, false);
    limits.record(3, failure(500, ErrorCode.HTTP), 40, false);
    limits.record(3, failure(undefined, ErrorCode.CONNECTION_LOST), 40, false);
    expect(decisions.map(([endpoint, d]) => [endpoint, d.reason, d.to])).toEqual([
      [0, 'rate-limited', 28],
      [1, 'load-shed', 28],
      [2, 'timeout', 28],
    ]);
    expect(limits.limit(3)).toBe(40);
  });

  it('times streams by their first token and JSON answers by their headers', () => {
    const decisions: LimitDecision[] = [];
    const stream = createEndpointLimits({
      policies: [policy],
      clock: new ManualClock(),
      onDecision: (_, decision) => decisions.push(decision),
    });
    // Headers at once, first token at 20 ms: the window's median is 20.
    for (let i = 0; i < 4; i++) stream.record(0, success(1, 20), 4, true);
    expect(decisions[0]).toMatchObject({ reason: 'slow-start', shortMs: 20 });
    const json = createEndpointLimits({
      policies: [policy],
      clock: new ManualClock(),
      onDecision: (_, decision) => decisions.push(decision),
    });
    for (let i = 0; i < 4; i++) json.record(0, success(300), 4, false);
    expect(decisions[1]).toMatchObject({ reason: 'slow-start', shortMs: 300 });
  });
});

describe('EndpointHealth.choose with per-endpoint limits', () => {
  function health(count: number) {
    const labels = Array.from({ length: count }, (_, i) => `http://endpoint-${i}.test/v1`);
    return new EndpointHealth(
      labels,
      defaultCircuitBreaker,
      new ManualClock(),
      new EventEmitter<VolleyEvents>(),
      () => {},
    );
  }

  it('fills replicas in proportion to their limits and waits when all are full', () => {
    const endpoints = health(2);
    const limits = { limit: (i: number) => (i === 0 ? 2 : 6) };
    const picks: number[] = [];
    for (let i = 0; i < 8; i++) {
      const choice = endpoints.choose(limits);
      if (typeof choice !== 'number') throw new Error(`no endpoint at pick ${i}`);
      endpoints.admit(choice);
      picks.push(choice);
    }
    expect(picks.filter((p) => p === 0)).toHaveLength(2);
    expect(picks.filter((p) => p === 1)).toHaveLength(6);
    expect(endpoints.choose(limits)).toBe(WAIT_FOR_CIRCUIT);
    endpoints.release(1, false);
    expect(endpoints.choose(limits)).toBe(1);
  });
});
