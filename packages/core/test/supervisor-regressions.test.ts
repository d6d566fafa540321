// Regressions found in review: dispatch to a stopped endpoint, queued deadlines never swept,
// stale `queued` counts, and bucket slots leaked by aborts between grant and dispatch.
import { describe, expect, it, vi } from 'vitest';
import { ErrorCode } from '../src/index.js';
import { causeCodeOf, codeOf } from './helpers/async.js';
import { createHarness, useSupervisorHarness } from './helpers/supervisor-harness.js';

useSupervisorHarness();

describe('supervisor regressions', () => {
  it('does not dispatch to an endpoint that stopped while the call waited on the bucket', async () => {
    // rpm 60: the first call goes now, the second is granted a second later.
    const h = createHarness({ concurrency: 2, lanes: [{ rpm: 60 }] });
    const first = h.call({ body: { n: 1 } });
    const second = h.call({ body: { n: 2 } });
    await h.settle();
    h.dispatcher.fail(h.dispatcher.last().id, { code: ErrorCode.AUTH, status: 401 });
    await h.settle();
    expect(codeOf(first.error)).toBe(ErrorCode.NO_ENDPOINT);
    await h.advance(1_000);
    expect(h.dispatcher.dispatched).toHaveLength(1);
    expect(codeOf(second.error)).toBe(ErrorCode.NO_ENDPOINT);
    expect(causeCodeOf(second.error)).toBe(ErrorCode.AUTH);
  });

  it('the sweep rejects a queued call past its deadline even while every slot is busy', async () => {
    const h = createHarness({ concurrency: 1 });
    h.call(); // holds the only slot; its worker stays silent
    const late = h.call({ timeoutMs: 1_000 });
    await h.settle();
    await h.advance(1_500);
    await h.sweep();
    expect(codeOf(late.error)).toBe(ErrorCode.TIMEOUT);
    expect(h.dispatcher.dispatched).toHaveLength(1);
  });

  it('stats.queued stops counting a queued call once it is aborted', async () => {
    const h = createHarness({ concurrency: 1 });
    h.call();
    const controller = new AbortController();
    h.call({ signal: controller.signal });
    h.call();
    await h.settle();
    expect(h.supervisor.stats().queued).toBe(2);
    controller.abort();
    await h.settle();
    expect(h.supervisor.stats().queued).toBe(1);
  });

  it('a call aborted between its grant and the dispatch flush gives its bucket slot back', async () => {
    const h = createHarness({ lanes: [{ maxInFlight: 1 }] });
    // Hold the supervisor's flush (its setImmediate) so the abort lands while the call is 'ready'.
    const held: Array<() => void> = [];
    const realSetImmediate = globalThis.setImmediate;
    const spy = vi.spyOn(globalThis, 'setImmediate').mockImplementation(((callback: () => void) => {
      held.push(callback);
      return realSetImmediate(() => undefined);
    }) as unknown as typeof setImmediate);
    const controller = new AbortController();
    const aborted = h.call({ signal: controller.signal });
    await h.settle();
    expect(held).toHaveLength(1);
    controller.abort();
    await h.settle();
    spy.mockRestore();
    for (const flush of held.splice(0)) flush();
    await h.settle();
    expect(codeOf(aborted.error)).toBe(ErrorCode.ABORTED);
    expect(h.dispatcher.dispatched).toHaveLength(0);
    expect((await h.bucket.stats())[0]?.inFlight).toBe(0);
    const next = h.call();
    await h.settle();
    expect(h.dispatcher.dispatched).toHaveLength(1);
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(next.state).toBe('fulfilled');
  });

  it('a call aborted right after call() does not use up a rate-limit slot', async () => {
    // rpm 60: one request now, then one per second.
    const h = createHarness({ lanes: [{ rpm: 60 }] });
    h.call({ body: { n: 1 } });
    await h.settle();
    const controller = new AbortController();
    const aborted = h.call({ body: { n: 2 }, signal: controller.signal });
    controller.abort(); // 'call' and 'abort' reach the supervisor in the same mailbox drain
    const after = h.call({ body: { n: 3 } });
    await h.settle();
    expect(codeOf(aborted.error)).toBe(ErrorCode.ABORTED);
    await h.advance(1_000);
    expect(h.dispatcher.dispatched.map((r) => r.body)).toEqual([{ n: 1 }, { n: 3 }]);
    expect(after.state).toBe('pending');
  });
});
