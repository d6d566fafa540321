import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../src/index.js';
import type { StreamDelta } from '../src/protocol/work.js';
import type { Harness, HarnessOptions } from './helpers/supervisor-harness.js';
import { createHarness, useSupervisorHarness } from './helpers/supervisor-harness.js';

useSupervisorHarness();

/** Two endpoints; the delay is the median of 2 samples; one copy per two attempts. */
const hedge = { percentile: 0.5, budget: 0.5, minDelayMs: 0, minSamples: 2 };

/** Calls answered `ms` after they were sent, one at a time, so both endpoints learn `ms`. */
async function warmUp(h: Harness, ms = 100, calls = 4): Promise<void> {
  for (let i = 0; i < calls; i++) {
    const call = h.call({ body: { warm: i } });
    await h.settle();
    await h.advance(ms);
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(call.state).toBe('fulfilled');
  }
}

/** Starts a call on a warmed-up harness and lets it stay silent until its copy is sent. */
async function race(h: Harness, spec: Parameters<Harness['call']>[0] = {}) {
  const call = h.call(spec);
  await h.settle();
  const first = h.dispatcher.last();
  await h.advance(150);
  const copy = h.dispatcher.last();
  expect(copy.id).not.toBe(first.id);
  return { call, first, copy };
}

function hedged(options: HarnessOptions = {}): Harness {
  return createHarness({ endpointCount: 2, hedge, ...options });
}

describe('supervisor: hedging', () => {
  it('sends a copy of a silent attempt to the other endpoint; the copy answers, the first is cancelled', async () => {
    const h = hedged();
    await warmUp(h);
    const call = h.call({ body: { n: 'slow' } });
    await h.settle();
    const first = h.dispatcher.last();
    await h.advance(99);
    expect(h.dispatcher.last()).toBe(first);
    await h.advance(2);
    const copy = h.dispatcher.last();
    expect(copy.id).not.toBe(first.id);
    expect(copy.endpoint).not.toBe(first.endpoint);
    expect(copy.body).toEqual({ n: 'slow' });
    h.dispatcher.succeed(copy.id);
    await h.settle();
    expect(call.state).toBe('fulfilled');
    expect(call.value?.endpoint).toBe(copy.endpoint);
    expect(call.value?.attempts).toBe(1);
    expect(h.dispatcher.cancelled).toEqual([first.id]);
    // The cancelled attempt still holds its place until its outcome arrives; then the books close.
    expect(h.supervisor.stats().inFlight).toBe(1);
    h.dispatcher.fail(first.id, { code: ErrorCode.ABORTED });
    await h.settle();
    expect(h.supervisor.stats()).toMatchObject({
      succeeded: 5,
      failed: 0,
      inFlight: 0,
      hedgedCalls: 1,
      extraBilledCalls: 1,
    });
    expect(h.supervisor.stats().byEndpoint.map((e) => e.inFlight)).toEqual([0, 0]);
  });

  it('keeps the first attempt when it answers first, and cancels the copy', async () => {
    const h = hedged();
    await warmUp(h);
    const { call, first, copy } = await race(h);
    h.dispatcher.succeed(first.id);
    await h.settle();
    expect(call.value?.endpoint).toBe(first.endpoint);
    expect(h.dispatcher.cancelled).toEqual([copy.id]);
    // The copy answered anyway after its cancel: counted once, at the copy's send.
    h.dispatcher.succeed(copy.id);
    await h.settle();
    expect(h.supervisor.stats()).toMatchObject({
      succeeded: 5,
      hedgedCalls: 1,
      extraBilledCalls: 1,
    });
  });

  it('leaves the call to the other attempt when one of the two fails', async () => {
    const h = hedged({ maxRetries: 0 });
    await warmUp(h);
    const { call, first, copy } = await race(h);
    h.dispatcher.fail(first.id, { code: ErrorCode.HTTP, status: 500 });
    await h.settle();
    expect(call.state).toBe('pending');
    h.dispatcher.succeed(copy.id);
    await h.settle();
    expect(call.value?.endpoint).toBe(copy.endpoint);
    expect(h.dispatcher.cancelled).toEqual([]);
    expect(h.supervisor.stats()).toMatchObject({ inFlight: 0, failed: 0, hedgedCalls: 1 });
  });

  it('is off by default: a silent attempt is never copied', async () => {
    const h = createHarness({ endpointCount: 2 });
    await warmUp(h);
    const call = h.call();
    await h.settle();
    await h.advance(10_000);
    expect(h.dispatcher.dispatched).toHaveLength(5);
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(call.state).toBe('fulfilled');
    expect(h.supervisor.stats()).toMatchObject({ hedgedCalls: 0, extraBilledCalls: 0 });
  });

  it('sends no copy before the endpoint has its samples (warm-up)', async () => {
    const h = hedged();
    await warmUp(h, 100, 2);
    h.call();
    await h.settle();
    // One sample per endpoint so far: fewer than minSamples.
    await h.advance(10_000);
    expect(h.dispatcher.dispatched).toHaveLength(3);
    expect(h.supervisor.stats().hedgedCalls).toBe(0);
  });

  it('stays within the budget, and copies a still-silent attempt once budget is there', async () => {
    const h = hedged({ hedge: { ...hedge, budget: 0.2 } });
    await warmUp(h); // 4 attempts sent: 0.8 copies of budget
    const call = h.call(); // 5 attempts: 1 copy
    const other = h.call(); // 6 attempts: 1.2 copies
    await h.settle();
    const [a, b] = h.dispatcher.dispatched.slice(-2);
    await h.advance(150);
    expect(h.dispatcher.dispatched).toHaveLength(7);
    expect(h.supervisor.stats().hedgedCalls).toBe(1);
    // Four more attempts: budget for a second copy; the silent one gets it at its next look.
    const more = [h.call(), h.call(), h.call(), h.call()];
    await h.settle();
    for (const r of h.dispatcher.dispatched.slice(-4)) h.dispatcher.succeed(r.id);
    await h.settle();
    await h.advance(150);
    expect(h.supervisor.stats().hedgedCalls).toBe(2);
    expect(h.supervisor.stats().hedgedCalls).toBeLessThanOrEqual(0.2 * 10);
    for (const id of h.dispatcher.openIds()) h.dispatcher.succeed(id);
    await h.settle();
    expect([call.state, other.state, ...more.map((m) => m.state)]).toEqual(
      Array(6).fill('fulfilled'),
    );
    expect([a?.id, b?.id]).not.toContain(undefined);
  });

  it('streams: a first delta means no copy; the first delta of a copy wins the race', async () => {
    const h = hedged();
    await warmUp(h);
    const deltas: StreamDelta[] = [];
    const talking = h.call({ stream: true, onDelta: (d) => deltas.push(d) });
    await h.settle();
    const heard = h.dispatcher.last();
    expect(heard.deltas).toBe(true);
    h.dispatcher.sink.deltas([{ id: heard.id, choice: 0, content: 'a' }]);
    await h.advance(10_000);
    expect(h.dispatcher.last()).toBe(heard);
    h.dispatcher.succeed(heard.id);
    await h.settle();
    expect(talking.state).toBe('fulfilled');

    // Without onDelta the stream's deltas are still asked for: they are how silence ends.
    const { call: silent, first, copy } = await race(h, { stream: true });
    expect(first.deltas).toBe(true);
    h.dispatcher.sink.deltas([{ id: copy.id, choice: 0, content: 'b' }]);
    await h.settle();
    expect(h.dispatcher.cancelled).toEqual([first.id]);
    h.dispatcher.succeed(copy.id);
    h.dispatcher.fail(first.id, { code: ErrorCode.ABORTED });
    await h.settle();
    expect(silent.value?.endpoint).toBe(copy.endpoint);
  });

  it("the caller's deltas come from the winner only", async () => {
    const h = hedged();
    await warmUp(h);
    const deltas: StreamDelta[] = [];
    const { call, first, copy } = await race(h, { stream: true, onDelta: (d) => deltas.push(d) });
    h.dispatcher.sink.deltas([
      { id: copy.id, choice: 0, content: 'copy' },
      { id: first.id, choice: 0, content: 'late' },
    ]);
    await h.settle();
    expect(deltas.map((d) => d.content)).toEqual(['copy']);
    h.dispatcher.succeed(copy.id);
    await h.settle();
    expect(call.state).toBe('fulfilled');
  });

  it('an abort cancels both attempts of a hedged call', async () => {
    const h = hedged();
    await warmUp(h);
    const controller = new AbortController();
    const { call, first, copy } = await race(h, { signal: controller.signal });
    controller.abort();
    await h.settle();
    expect(call.state).toBe('rejected');
    expect(h.dispatcher.cancelled.sort()).toEqual([first.id, copy.id].sort());
    h.dispatcher.fail(first.id, { code: ErrorCode.ABORTED });
    h.dispatcher.fail(copy.id, { code: ErrorCode.ABORTED });
    await h.settle();
    expect(h.supervisor.stats()).toMatchObject({ inFlight: 0, failed: 1 });
  });
});
