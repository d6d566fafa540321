// The circuit breaker: an endpoint that keeps failing leaves rotation, is probed once its pause
// is over, and comes back on a successful probe; failed probes double the pause.
import { describe, expect, it } from 'vitest';
import type { VolleyEvents } from '../src/index.js';
import { ErrorCode } from '../src/index.js';
import { createHarness, useSupervisorHarness } from './helpers/supervisor-harness.js';

useSupervisorHarness();

const circuitBreaker = { failureThreshold: 3, openMs: 1_000, maxOpenMs: 4_000, downAfterRounds: 3 };
const serverError = { code: ErrorCode.HTTP, status: 500 };

describe('supervisor: circuit breaker', () => {
  it('takes an endpoint out after consecutive faults and sends the work to the others', async () => {
    const h = createHarness({
      endpointCount: 2,
      concurrency: 2,
      circuitBreaker,
      backoff: { baseDelayMs: 1, maxDelayMs: 1 },
    });
    const unhealthy: Array<VolleyEvents['endpointUnhealthy'][0]> = [];
    h.events.on('endpointUnhealthy', (event) => unhealthy.push(event));
    const calls = Array.from({ length: 10 }, () => h.call());
    await h.settle();
    // Endpoint 1 answers 500 to everything; endpoint 0 answers.
    for (let round = 0; round < 50 && calls.some((call) => call.state === 'pending'); round++) {
      for (const [id, request] of [...h.dispatcher.open]) {
        if (request.endpoint === 1) h.dispatcher.fail(id, serverError);
        else h.dispatcher.succeed(id);
      }
      await h.advance(1);
    }
    expect(calls.every((call) => call.state === 'fulfilled')).toBe(true);
    expect(unhealthy).toEqual([{ endpoint: 1, openMs: 1_000, failures: 3 }]);
    expect(h.supervisor.stats().byEndpoint[1]?.circuit).toBe('open');
    // Exactly the three faults that opened the circuit reached endpoint 1.
    expect(h.dispatcher.dispatched.filter((request) => request.endpoint === 1)).toHaveLength(3);
  });

  it('spreads ties evenly instead of always choosing the first endpoint', async () => {
    const h = createHarness({ endpointCount: 3, concurrency: 1 });
    for (let i = 0; i < 6; i++) {
      h.call();
      await h.settle();
      h.dispatcher.succeed(h.dispatcher.last().id);
      await h.settle();
    }
    expect(h.dispatcher.dispatched.map((request) => request.endpoint)).toEqual([0, 1, 2, 0, 1, 2]);
  });

  it('with a single endpoint, waits for the pause, probes once, and closes on success', async () => {
    const h = createHarness({
      concurrency: 4,
      circuitBreaker,
      maxRetries: 10,
      backoff: { baseDelayMs: 1, maxDelayMs: 1 },
    });
    const healthy: number[] = [];
    h.events.on('endpointHealthy', ({ endpoint }) => healthy.push(endpoint));
    const calls = Array.from({ length: 4 }, () => h.call());
    await h.settle();
    for (const id of h.dispatcher.openIds().slice(0, 3)) h.dispatcher.fail(id, serverError);
    await h.advance(5);
    expect(h.supervisor.stats().byEndpoint[0]?.circuit).toBe('open');
    const sentWhileOpen = h.dispatcher.dispatched.length;
    await h.advance(990);
    expect(h.dispatcher.dispatched.length).toBe(sentWhileOpen);
    // The pause is over: exactly one probe goes out.
    await h.advance(10);
    expect(h.supervisor.stats().byEndpoint[0]?.circuit).toBe('half-open');
    const probes = h.dispatcher.dispatched.slice(sentWhileOpen);
    expect(probes).toHaveLength(1);
    h.dispatcher.succeed((probes[0] as { id: number }).id);
    await h.advance(1);
    expect(healthy).toEqual([0]);
    expect(h.supervisor.stats().byEndpoint[0]?.circuit).toBe('closed');
    for (const id of h.dispatcher.openIds()) h.dispatcher.succeed(id);
    await h.advance(1);
    for (const id of h.dispatcher.openIds()) h.dispatcher.succeed(id);
    await h.advance(1);
    expect(calls.every((call) => call.state === 'fulfilled')).toBe(true);
  });

  it('doubles the pause after a failed probe, up to the maximum', async () => {
    const h = createHarness({
      concurrency: 1,
      circuitBreaker,
      maxRetries: 100,
      backoff: { baseDelayMs: 1, maxDelayMs: 1 },
    });
    const pauses: number[] = [];
    h.events.on('endpointUnhealthy', ({ openMs }) => pauses.push(openMs));
    h.call();
    await h.settle();
    for (let i = 0; i < 40 && pauses.length < 5; i++) {
      for (const id of h.dispatcher.openIds()) h.dispatcher.fail(id, serverError);
      await h.advance(500);
    }
    expect(pauses).toEqual([1_000, 2_000, 4_000, 4_000, 4_000]);
  });

  it("does not count the request's own faults, rate limits or aborts against the endpoint", async () => {
    const h = createHarness({ concurrency: 8, circuitBreaker, maxRetries: 0 });
    const calls = Array.from({ length: 6 }, () => h.call());
    await h.settle();
    const [a, b, c, d, e, f] = h.dispatcher.openIds();
    h.dispatcher.fail(a as number, { code: ErrorCode.HTTP, status: 400 });
    h.dispatcher.fail(b as number, { code: ErrorCode.HTTP, status: 422 });
    h.dispatcher.fail(c as number, { code: ErrorCode.RATE_LIMITED, status: 429, retryAfterMs: 1 });
    h.dispatcher.fail(d as number, { code: ErrorCode.RATE_LIMITED, status: 429, retryAfterMs: 1 });
    h.dispatcher.fail(e as number, { code: ErrorCode.ABORTED });
    h.dispatcher.fail(f as number, { code: ErrorCode.RESPONSE_TOO_LARGE });
    await h.advance(1);
    expect(h.supervisor.stats().byEndpoint[0]?.circuit).toBe('closed');
    expect(calls.filter((call) => call.state === 'rejected')).toHaveLength(4);
  });
});

describe('supervisor: circuit breaker probes', () => {
  it('a probe aborted while it waits for rate-limit capacity does not wedge the endpoint', async () => {
    const h = createHarness({ concurrency: 4, circuitBreaker, maxRetries: 0 });
    const doomed = Array.from({ length: 3 }, () => h.call());
    await h.settle();
    for (const id of h.dispatcher.openIds()) h.dispatcher.fail(id, serverError);
    await h.settle();
    expect(doomed.every((call) => call.state === 'rejected')).toBe(true);
    expect(h.supervisor.stats().byEndpoint[0]?.circuit).toBe('open');
    // Hold the lane so the probe has to wait in the bucket, then abort it there.
    h.bucket.cooldown(0, 5_000);
    await h.settle();
    await h.advance(1_000);
    const controller = new AbortController();
    const probe = h.call({ signal: controller.signal });
    await h.settle();
    expect(h.supervisor.stats().byEndpoint[0]?.circuit).toBe('half-open');
    controller.abort();
    await h.settle();
    expect(probe.state).toBe('rejected');
    // The next call becomes the probe once the lane reopens, instead of waiting forever.
    const next = h.call();
    await h.advance(4_000);
    expect(h.dispatcher.open.size).toBe(1);
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(next.state).toBe('fulfilled');
    expect(h.supervisor.stats().byEndpoint[0]?.circuit).toBe('closed');
  });
});
