import { EventEmitter } from 'eventemitter3';
import { describe, expect, it } from 'vitest';
import { EndpointHealth, WAIT_FOR_CIRCUIT } from '../src/endpoint-health.js';
import type { VolleyEvents } from '../src/index.js';
import { ErrorCode, VolleyError } from '../src/index.js';
import { ManualClock } from './helpers/manual-clock.js';

const breaker = { failureThreshold: 2, openMs: 1_000, maxOpenMs: 3_000, downAfterRounds: 3 };

function setup(count = 2) {
  const clock = new ManualClock(0);
  const events = new EventEmitter<VolleyEvents>();
  const seen: string[] = [];
  events.on('endpointUnhealthy', (e) => seen.push(`unhealthy ${e.endpoint} ${e.openMs}`));
  events.on('endpointHealthy', (e) => seen.push(`healthy ${e.endpoint}`));
  events.on('endpointStopped', (e) => seen.push(`stopped ${e.endpoint}`));
  events.on('endpointDown', (e) => seen.push(`down ${e.endpoint}: ${e.error.message}`));
  let wakes = 0;
  const labels = Array.from({ length: count }, (_, i) => `http://endpoint-${i}.test/v1`);
  const health = new EndpointHealth(labels, breaker, clock, events, () => wakes++);
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
    expect(health.admit(0).isProbe).toBe(true);
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
    expect(health.unusableCause()).toBe(error);
    const quota = new VolleyError(ErrorCode.QUOTA, 'no quota');
    health.stop(0, quota);
    expect(health.choose()).toBeUndefined();
    // The lowest-numbered stopped endpoint's cause.
    expect(health.unusableCause()).toBe(quota);
  });

  describe('down: nothing, or not the API, at the address', () => {
    const refused = new VolleyError(
      ErrorCode.CONNECT,
      'could not connect: connection refused (connect ECONNREFUSED 127.0.0.1:9)',
      { sent: false },
    );

    /** Admits `n` attempts to endpoint 0 together and fails them all as unreachable. */
    function failRound(health: EndpointHealth, n: number): boolean {
      const tickets = Array.from({ length: n }, () => health.admit(0).ticket);
      let marked = false;
      for (const ticket of tickets) {
        health.release(0, false);
        health.onFault(0);
        marked = health.onUnreachable(0, ticket, refused) || marked;
      }
      return marked;
    }

    it('counts attempts on the wire together as one round, and marks down after three', () => {
      const { health, seen } = setup(1);
      expect(failRound(health, 10)).toBe(false);
      expect(failRound(health, 1)).toBe(false);
      expect(health.isDown(0)).toBe(false);
      expect(failRound(health, 4)).toBe(true);
      expect(health.isDown(0)).toBe(true);
      expect(seen.filter((line) => line.startsWith('down'))).toEqual([
        'down 0: connection refused (connect ECONNREFUSED 127.0.0.1:9) at http://endpoint-0.test/v1',
      ]);
      const cause = health.unusableCause();
      expect(cause).toMatchObject({ code: ErrorCode.ENDPOINT_DOWN, endpoint: 0 });
      expect(cause?.cause).toBe(refused);
    });

    it('names a server that is not the API by what it answered', () => {
      const { health } = setup(1);
      const page = new VolleyError(ErrorCode.HTTP, 'HTTP 501: <html>', {
        status: 501,
        notApi: '501 text/html',
      });
      for (let round = 0; round < 3; round++) {
        const { ticket } = health.admit(0);
        health.release(0, false);
        health.onUnreachable(0, ticket, page);
      }
      expect(health.unusableCause()?.message).toBe(
        'http://endpoint-0.test/v1 answered 501 text/html: not an OpenAI-compatible endpoint? (check the base URL; it usually ends in /v1)',
      );
    });

    it('an answer from the API in between starts the count again', () => {
      const { health } = setup(1);
      failRound(health, 2);
      failRound(health, 2);
      health.onAnswered(0);
      failRound(health, 2);
      failRound(health, 2);
      expect(health.isDown(0)).toBe(false);
    });

    it('calls do not wait for a down endpoint; it takes a probe when its pause is over', () => {
      const { clock, health, seen } = setup(2);
      for (let round = 0; round < 3; round++) failRound(health, 1);
      expect(health.isDown(0)).toBe(true);
      expect(health.anyUsable()).toBe(true);
      // The other endpoint still serves.
      expect(health.choose()).toBe(1);
      health.stop(1, new VolleyError(ErrorCode.AUTH, 'bad key'));
      expect(health.anyUsable()).toBe(false);
      // Endpoint 0 is down and endpoint 1 stopped: no waiting, the call fails with a cause.
      expect(health.choose()).toBeUndefined();
      expect(health.unusableCause()?.code).toBe(ErrorCode.ENDPOINT_DOWN);
      clock.advance(10_000);
      expect(health.choose()).toBe(0);
      expect(health.admit(0).isProbe).toBe(true);
      health.release(0, true);
      health.onSuccess(0);
      expect(health.isDown(0)).toBe(false);
      expect(seen.at(-1)).toBe('healthy 0');
    });
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
