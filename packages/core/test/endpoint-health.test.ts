import { EventEmitter } from 'eventemitter3';
import { describe, expect, it } from 'vitest';
import { EndpointHealth, WAIT_FOR_CIRCUIT } from '../src/endpoint-health.js';
import type { VolleyEvents } from '../src/index.js';
import { ErrorCode, VolleyError } from '../src/index.js';
import { ManualClock } from './helpers/manual-clock.js';

const breaker = { failureThreshold: 2, openMs: 1_000, maxOpenMs: 3_000 };

function setup(count = 2) {
  const clock = new ManualClock(0);
  const events = new EventEmitter<VolleyEvents>();
  const seen: string[] = [];
  events.on('endpointUnhealthy', (e) => seen.push(`unhealthy ${e.endpoint} ${e.openMs}`));
  events.on('endpointHealthy', (e) => seen.push(`healthy ${e.endpoint}`));
  events.on('endpointStopped', (e) => seen.push(`stopped ${e.endpoint}`));
  let wakes = 0;
  const health = new EndpointHealth(count, breaker, clock, events, () => wakes++);
  return { clock, health, seen, wakes: () => wakes };
}

describe('EndpointHealth', () => {
  it('chooses the endpoint with the fewest outstanding attempts, rotating ties', () => {
    const { health } = setup(3);
    const picks: number[] = [];
    for (let i = 0; i < 3; i++) {
      const choice = health.choose() as number;
      picks.push(choice);
      health.admit(choice);
    }
    expect(picks).toEqual([0, 1, 2]);
    health.release(1, false);
    expect(health.choose()).toBe(1);
  });

  it('opens after consecutive faults, wakes when the pause is over, and probes once', () => {
    const { clock, health, seen, wakes } = setup(1);
    health.onFault(0);
    expect(health.circuit(0)).toBe('closed');
    health.onFault(0);
    expect(health.circuit(0)).toBe('open');
    expect(health.choose()).toBe(WAIT_FOR_CIRCUIT);
    clock.advance(999);
    expect(wakes()).toBe(0);
    clock.advance(1);
    expect(wakes()).toBe(1);
    expect(health.choose()).toBe(0);
    expect(health.admit(0)).toBe(true);
    expect(health.circuit(0)).toBe('half-open');
    // One probe at a time.
    expect(health.choose()).toBe(WAIT_FOR_CIRCUIT);
    health.release(0, true);
    health.onSuccess(0);
    expect(health.circuit(0)).toBe('closed');
    expect(seen).toEqual(['unhealthy 0 1000', 'healthy 0']);
  });

  it('doubles the pause after a failed probe, up to the cap', () => {
    const { clock, health, seen } = setup(1);
    health.onFault(0);
    health.onFault(0);
    for (const pause of [2_000, 3_000, 3_000]) {
      clock.advance(10_000);
      expect(health.choose()).toBe(0);
      health.admit(0);
      health.release(0, true);
      health.onFault(0);
      expect(seen.at(-1)).toBe(`unhealthy 0 ${pause}`);
    }
  });

  it('a success resets the count of consecutive faults', () => {
    const { health } = setup(1);
    health.onFault(0);
    health.onSuccess(0);
    health.onFault(0);
    expect(health.circuit(0)).toBe('closed');
  });

  it('leaves stopped endpoints out for good and names a cause', () => {
    const { health, seen } = setup(2);
    const error = new VolleyError(ErrorCode.AUTH, 'bad key');
    health.stop(1, error);
    health.stop(1, new VolleyError(ErrorCode.AUTH, 'again'));
    expect(seen).toEqual(['stopped 1']);
    expect(health.choose()).toBe(0);
    expect(health.firstStopCause()).toBe(error);
    const quota = new VolleyError(ErrorCode.QUOTA, 'no quota');
    health.stop(0, quota);
    expect(health.choose()).toBeUndefined();
    // The lowest-numbered stopped endpoint's cause.
    expect(health.firstStopCause()).toBe(quota);
  });

  it('close() disarms a pending wake-up', () => {
    const { clock, health, wakes } = setup(1);
    health.onFault(0);
    health.onFault(0);
    expect(health.choose()).toBe(WAIT_FOR_CIRCUIT);
    health.close();
    clock.advance(5_000);
    expect(wakes()).toBe(0);
  });
});
