import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../src/index.js';
import { causeCodeOf, codeOf } from './helpers/async.js';
import { createHarness, useSupervisorHarness } from './helpers/supervisor-harness.js';

useSupervisorHarness();

/** supervisor.ts LOST_ATTEMPT_GRACE_MS */
const LOST_ATTEMPT_GRACE_MS = 5_000;

describe('supervisor: deadlines', () => {
  it('rejects a call whose deadline passed in the queue with VOLLEY_ERR_TIMEOUT, without dispatching it', async () => {
    const h = createHarness({ concurrency: 1 });
    const first = h.call();
    const late = h.call({ body: { n: 'late' }, timeoutMs: 1_000 });
    await h.settle();
    await h.advance(1_500);
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(first.state).toBe('fulfilled');
    expect(codeOf(late.error)).toBe(ErrorCode.TIMEOUT);
    expect(h.dispatcher.dispatched).toHaveLength(1);
  });

  it('rejects a call still waiting on the bucket at its deadline with VOLLEY_ERR_TIMEOUT', async () => {
    // rpm 1: the second request would wait a minute.
    const h = createHarness({ lanes: [{ rpm: 1 }] });
    h.call();
    const waiting = h.call({ timeoutMs: 2_000 });
    await h.settle();
    await h.advance(1_999);
    await h.sweep();
    expect(waiting.state).toBe('pending');
    await h.advance(1);
    await h.sweep();
    expect(codeOf(waiting.error)).toBe(ErrorCode.TIMEOUT);
    expect(h.supervisor.stats().waitingOnRateLimit).toBe(0);
    expect(h.dispatcher.dispatched).toHaveLength(1);
  });

  it('uses the runtime timeoutMs when the call sets none', async () => {
    const h = createHarness({ timeoutMs: 3_000, lanes: [{ rpm: 1 }] });
    h.call();
    const waiting = h.call();
    await h.settle();
    await h.advance(3_000);
    await h.sweep();
    expect(codeOf(waiting.error)).toBe(ErrorCode.TIMEOUT);
  });

  it('writes off an attempt the worker never reports, cancels it and retries it as ambiguous', async () => {
    const h = createHarness({ attemptTimeoutMs: 10_000 });
    const call = h.call();
    await h.settle();
    const silent = h.dispatcher.last();
    await h.advance(10_000 + LOST_ATTEMPT_GRACE_MS);
    await h.sweep();
    expect(h.dispatcher.cancelled).toEqual([]);
    await h.advance(1);
    await h.sweep();
    expect(h.dispatcher.cancelled).toEqual([silent.id]);
    expect(h.supervisor.stats()).toMatchObject({ extraBilledCalls: 1, backingOff: 1, inFlight: 0 });
    await h.advance(500);
    expect(h.dispatcher.dispatched).toHaveLength(2);
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(call.value?.attempts).toBe(2);
  });

  it('fails the call with VOLLEY_ERR_TIMEOUT when the written-off attempt used up its budget', async () => {
    const h = createHarness({ attemptTimeoutMs: 10_000 });
    const call = h.call({ timeoutMs: 10_000 });
    await h.settle();
    await h.advance(10_000 + LOST_ATTEMPT_GRACE_MS + 1);
    await h.sweep();
    expect(codeOf(call.error)).toBe(ErrorCode.TIMEOUT);
    expect(causeCodeOf(call.error)).toBe(ErrorCode.TIMEOUT);
  });
});
