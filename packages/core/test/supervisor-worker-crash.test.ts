import { describe, expect, it } from 'vitest';
import type { VolleyError } from '../src/index.js';
import { ErrorCode } from '../src/index.js';
import { codeOf } from './helpers/async.js';
import { createHarness, useSupervisorHarness } from './helpers/supervisor-harness.js';

useSupervisorHarness();

// Harness default restart budget: 2 crashes within 60 s; the third escalates.

describe('supervisor: worker crashes and the restart budget', () => {
  it('tolerates crashes within the budget: calls stay pending and keep going', async () => {
    const h = createHarness();
    const crashes: number[] = [];
    h.events.on('workerCrash', (e) => crashes.push(e.restarts));
    const call = h.call();
    await h.settle();
    h.dispatcher.crash();
    h.dispatcher.crash();
    await h.settle();
    expect(call.state).toBe('pending');
    expect(crashes).toEqual([1, 2]);
    expect(h.supervisor.stats().workerRestarts).toBe(2);
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(call.state).toBe('fulfilled');
    expect(h.dispatcher.destroyCalls).toBe(0);
  });

  it('past the budget, rejects every pending call VOLLEY_ERR_WORKER_CRASHED and emits error', async () => {
    const h = createHarness({ concurrency: 2, lanes: [{ rpm: 60 }], burstMs: 2_000 });
    const errors: VolleyError[] = [];
    h.events.on('error', (e) => errors.push(e));
    // Two in flight (the burst holds two), one waiting on the bucket, one queued, one backing off.
    const inFlight = [h.call(), h.call()];
    await h.settle();
    h.dispatcher.fail(h.dispatcher.dispatched[0]?.id as number, {
      code: ErrorCode.HTTP,
      status: 503,
    });
    await h.settle();
    const waiting = h.call();
    const queued = h.call();
    await h.settle();
    expect(h.supervisor.stats()).toMatchObject({
      inFlight: 1,
      backingOff: 1,
      waitingOnRateLimit: 1,
      queued: 1,
    });
    const dispatchedBefore = h.dispatcher.dispatched.length;

    h.dispatcher.crash();
    h.dispatcher.crash();
    h.dispatcher.crash();
    await h.settle();
    for (const call of [...inFlight, waiting, queued]) {
      expect(call.state).toBe('rejected');
      expect(codeOf(call.error)).toBe(ErrorCode.WORKER_CRASHED);
    }
    expect(errors).toHaveLength(1);
    expect(errors[0]?.code).toBe(ErrorCode.WORKER_CRASHED);
    expect(h.dispatcher.destroyCalls).toBe(1);
    expect(h.supervisor.stats()).toMatchObject({
      inFlight: 0,
      backingOff: 0,
      waitingOnRateLimit: 0,
      queued: 0,
      failed: 4,
    });

    await h.advance(60_000);
    expect(h.dispatcher.dispatched).toHaveLength(dispatchedBefore);
    const late = h.call();
    await h.settle();
    expect(codeOf(late.error)).toBe(ErrorCode.WORKER_CRASHED);
  });

  it('forgets crashes older than the window', async () => {
    const h = createHarness({ restartBudget: { maxRestarts: 2, windowMs: 10_000 } });
    const errors: VolleyError[] = [];
    h.events.on('error', (e) => errors.push(e));
    const call = h.call();
    await h.settle();
    for (let i = 0; i < 6; i++) {
      h.dispatcher.crash();
      await h.advance(6_000);
    }
    expect(errors).toHaveLength(0);
    expect(call.state).toBe('pending');
    h.dispatcher.crash();
    h.dispatcher.crash();
    await h.settle();
    expect(errors).toHaveLength(1);
    expect(codeOf(call.error)).toBe(ErrorCode.WORKER_CRASHED);
  });
});
