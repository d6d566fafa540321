import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../src/index.js';
import { createHarness, defaultSpec, useSupervisorHarness } from './helpers/supervisor-harness.js';

useSupervisorHarness();

describe('supervisor: attempts lost with their worker', () => {
  it('re-dispatches lost attempts as new attempts and counts them as possibly billed', async () => {
    const h = createHarness();
    const calls = [
      h.call({ body: { n: 1 } }),
      h.call({ body: { n: 2 } }),
      h.call({ body: { n: 3 } }),
    ];
    await h.settle();
    const [a, b, c] = h.dispatcher.dispatched;
    h.dispatcher.lose([a?.id as number, b?.id as number]);
    await h.settle();
    expect(h.supervisor.stats()).toMatchObject({ inFlight: 1, backingOff: 2, extraBilledCalls: 2 });
    await h.advance(500);
    const redispatched = h.dispatcher.dispatched.slice(3);
    expect(redispatched.map((r) => r.body)).toEqual([{ n: 1 }, { n: 2 }]);
    expect(redispatched.map((r) => r.id)).not.toContain(a?.id);
    expect(redispatched.map((r) => r.id)).not.toContain(b?.id);
    for (const id of h.dispatcher.openIds()) h.dispatcher.succeed(id, { id });
    await h.settle();
    expect(calls.map((call) => call.state)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    expect(calls[2]?.value?.body).toEqual({ id: c?.id });
    expect(calls[0]?.value?.attempts).toBe(2);
  });

  it('ignores a late success for a written-off attempt, counting it as billed twice', async () => {
    const h = createHarness();
    const call = h.call();
    await h.settle();
    const lost = h.dispatcher.last();
    h.dispatcher.lose([lost.id]);
    await h.settle();
    await h.advance(500);
    const retry = h.dispatcher.last();
    expect(retry.id).not.toBe(lost.id);
    expect(h.supervisor.stats().extraBilledCalls).toBe(1);

    h.dispatcher.succeed(lost.id, { from: 'late' });
    await h.settle();
    expect(call.state).toBe('pending');
    expect(h.supervisor.stats()).toMatchObject({ extraBilledCalls: 2, succeeded: 0, inFlight: 1 });

    h.dispatcher.succeed(retry.id, { from: 'retry' });
    await h.settle();
    expect(call.value?.body).toEqual({ from: 'retry' });
    expect(h.supervisor.stats()).toMatchObject({ succeeded: 1, inFlight: 0 });
  });

  it('ignores a late failure for a written-off attempt without counting it', async () => {
    const h = createHarness();
    const call = h.call();
    await h.settle();
    const lost = h.dispatcher.last();
    h.dispatcher.lose([lost.id]);
    await h.settle();
    h.dispatcher.fail(lost.id, { code: ErrorCode.HTTP, status: 400 });
    await h.settle();
    expect(call.state).toBe('pending');
    expect(h.supervisor.stats()).toMatchObject({ extraBilledCalls: 1, failed: 0 });
  });

  it('ignores an outcome for an attempt id it never dispatched', async () => {
    const h = createHarness();
    const call = h.call({ body: defaultSpec.body });
    await h.settle();
    h.dispatcher.succeed(123_456);
    h.dispatcher.fail(123_457, { code: ErrorCode.HTTP, status: 400 });
    await h.settle();
    expect(call.state).toBe('pending');
    expect(h.supervisor.stats().succeeded).toBe(0);
  });
});
