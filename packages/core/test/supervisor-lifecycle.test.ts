import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../src/index.js';
import { codeOf, track } from './helpers/async.js';
import { createHarness, useSupervisorHarness } from './helpers/supervisor-harness.js';

useSupervisorHarness();

describe('supervisor: close and destroy', () => {
  it('close() resolves only after in-flight and queued calls settle, then closes the dispatcher', async () => {
    const h = createHarness({ concurrency: 1 });
    const calls = [h.call(), h.call()];
    await h.settle();
    const closed = track(h.supervisor.close());
    await h.settle();
    expect(closed.state).toBe('pending');
    expect(h.dispatcher.closeCalls).toBe(0);
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(closed.state).toBe('pending');
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(calls.map((c) => c.state)).toEqual(['fulfilled', 'fulfilled']);
    expect(closed.state).toBe('fulfilled');
    expect(h.dispatcher.closeCalls).toBe(1);
  });

  it('close() waits for a call backing off', async () => {
    const h = createHarness();
    const call = h.call();
    await h.settle();
    h.dispatcher.fail(h.dispatcher.last().id, { code: ErrorCode.HTTP, status: 503 });
    await h.settle();
    const closed = track(h.supervisor.close());
    await h.advance(500);
    expect(closed.state).toBe('pending');
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(call.state).toBe('fulfilled');
    expect(closed.state).toBe('fulfilled');
  });

  it('close() on an idle supervisor resolves at once and is idempotent', async () => {
    const h = createHarness();
    const first = h.supervisor.close();
    expect(h.supervisor.close()).toBe(first);
    await first;
    expect(h.dispatcher.closeCalls).toBe(1);
  });

  it('refuses new calls once closing, with VOLLEY_ERR_STOPPED', async () => {
    const h = createHarness();
    const inFlight = h.call();
    await h.settle();
    const closed = track(h.supervisor.close());
    const refused = h.call();
    await h.settle();
    expect(codeOf(refused.error)).toBe(ErrorCode.STOPPED);
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(inFlight.state).toBe('fulfilled');
    expect(closed.state).toBe('fulfilled');
    expect(h.dispatcher.dispatched).toHaveLength(1);
  });

  it('destroy() rejects every pending call with VOLLEY_ERR_ABORTED and destroys the dispatcher', async () => {
    const h = createHarness({ concurrency: 1 });
    const calls = [h.call(), h.call(), h.call()];
    await h.settle();
    expect(h.supervisor.stats()).toMatchObject({ inFlight: 1, queued: 2 });
    const reason = new Error('SIGTERM');
    await h.supervisor.destroy(reason);
    await h.settle();
    for (const call of calls) {
      expect(call.state).toBe('rejected');
      expect(codeOf(call.error)).toBe(ErrorCode.ABORTED);
      expect((call.error as Error).cause).toBe(reason);
    }
    // One destroy ends three calls: each gets its own error with its own attempt count.
    expect(calls.map((call) => (call.error as { attempts?: number }).attempts)).toEqual([1, 0, 0]);
    expect(new Set(calls.map((call) => call.error)).size).toBe(3);
    expect(h.dispatcher.destroyCalls).toBe(1);
    expect(h.supervisor.stats()).toMatchObject({ failed: 3, inFlight: 0, queued: 0 });
    expect(h.supervisor.stats().byEndpoint[0]?.inFlight).toBe(0);
    const late = h.call();
    await h.settle();
    expect(codeOf(late.error)).toBe(ErrorCode.STOPPED);
  });

  it('destroy() during close() lets close() finish', async () => {
    const h = createHarness();
    const call = h.call();
    await h.settle();
    const closed = track(h.supervisor.close());
    await h.supervisor.destroy();
    await h.settle();
    expect(codeOf(call.error)).toBe(ErrorCode.ABORTED);
    expect(closed.state).toBe('fulfilled');
  });
});
