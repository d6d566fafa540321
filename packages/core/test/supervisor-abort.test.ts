import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../src/index.js';
import { codeOf } from './helpers/async.js';
import { createHarness, useSupervisorHarness } from './helpers/supervisor-harness.js';

useSupervisorHarness();

describe('supervisor: caller abort', () => {
  it('rejects an already-aborted call at once, without submitting it', async () => {
    const h = createHarness();
    const call = h.call({ signal: AbortSignal.abort() });
    await h.settle();
    expect(codeOf(call.error)).toBe(ErrorCode.ABORTED);
    expect(h.dispatcher.dispatched).toHaveLength(0);
    expect(h.supervisor.stats().submitted).toBe(0);
  });

  it('rejects a queued call VOLLEY_ERR_ABORTED and never dispatches it', async () => {
    const h = createHarness({ concurrency: 1 });
    const first = h.call({ body: { n: 1 } });
    const controller = new AbortController();
    const queued = h.call({ body: { n: 2 }, signal: controller.signal });
    const third = h.call({ body: { n: 3 } });
    await h.settle();
    controller.abort(new Error('user pressed ^C'));
    await h.settle();
    expect(codeOf(queued.error)).toBe(ErrorCode.ABORTED);
    expect((queued.error as Error).cause).toBeInstanceOf(Error);
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(h.dispatcher.dispatched.map((r) => r.body)).toEqual([{ n: 1 }, { n: 3 }]);
    expect([first.state, third.state]).toEqual(['fulfilled', 'fulfilled']);
    expect(h.supervisor.stats()).toMatchObject({ succeeded: 2, failed: 1, queued: 0 });
  });

  it('cancels an in-flight call with its attempt id; the slot frees when the outcome arrives', async () => {
    const h = createHarness({ concurrency: 1 });
    const controller = new AbortController();
    const call = h.call({ signal: controller.signal });
    const next = h.call();
    await h.settle();
    const attempt = h.dispatcher.last();
    controller.abort();
    await h.settle();
    expect(codeOf(call.error)).toBe(ErrorCode.ABORTED);
    expect(h.dispatcher.cancelled).toEqual([attempt.id]);
    // The attempt is still on the wire and holds its slot until the worker reports.
    expect(h.dispatcher.dispatched).toHaveLength(1);
    h.dispatcher.fail(attempt.id, { code: ErrorCode.ABORTED });
    await h.settle();
    expect(h.dispatcher.dispatched).toHaveLength(2);
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(next.state).toBe('fulfilled');
    expect(h.supervisor.stats()).toMatchObject({ failed: 1, succeeded: 1, inFlight: 0 });
  });

  it('ignores a success that arrives after the caller aborted', async () => {
    const h = createHarness();
    const controller = new AbortController();
    const call = h.call({ signal: controller.signal });
    await h.settle();
    controller.abort();
    await h.settle();
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(codeOf(call.error)).toBe(ErrorCode.ABORTED);
    expect(h.supervisor.stats()).toMatchObject({ succeeded: 0, failed: 1, inFlight: 0 });
  });

  it('stops a call backing off from being retried', async () => {
    const h = createHarness();
    const controller = new AbortController();
    const call = h.call({ signal: controller.signal });
    await h.settle();
    h.dispatcher.fail(h.dispatcher.last().id, { code: ErrorCode.HTTP, status: 503 });
    await h.settle();
    controller.abort();
    await h.settle();
    expect(codeOf(call.error)).toBe(ErrorCode.ABORTED);
    expect(h.supervisor.stats().backingOff).toBe(0);
    await h.advance(60_000);
    expect(h.dispatcher.dispatched).toHaveLength(1);
  });

  it('gives back the rate-limit place of a call aborted while waiting on the bucket', async () => {
    // rpm 60: one request now, the next a second later.
    const h = createHarness({ lanes: [{ rpm: 60 }] });
    h.call({ body: { n: 1 } });
    const controller = new AbortController();
    const waiting = h.call({ body: { n: 2 }, signal: controller.signal });
    const after = h.call({ body: { n: 3 } });
    await h.settle();
    controller.abort();
    await h.settle();
    expect(codeOf(waiting.error)).toBe(ErrorCode.ABORTED);
    expect(h.supervisor.stats().waitingOnRateLimit).toBe(1);
    await h.advance(1_000);
    expect(h.dispatcher.dispatched.map((r) => r.body)).toEqual([{ n: 1 }, { n: 3 }]);
    expect(after.state).toBe('pending');
  });
});
