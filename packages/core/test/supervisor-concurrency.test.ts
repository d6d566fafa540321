import { describe, expect, it } from 'vitest';
import { microtasks } from './helpers/async.js';
import { createHarness, defaultSpec, useSupervisorHarness } from './helpers/supervisor-harness.js';

useSupervisorHarness();

describe('supervisor: concurrency bound', () => {
  it('never has more than `concurrency` attempts dispatched without outcomes', async () => {
    const h = createHarness({ concurrency: 3 });
    const calls = Array.from({ length: 10 }, (_, i) =>
      h.call({ body: { ...defaultSpec.body, i } }),
    );
    await h.settle();
    expect(h.dispatcher.open.size).toBe(3);
    expect(h.supervisor.stats()).toMatchObject({ submitted: 10, inFlight: 3, queued: 7 });
    for (let round = 0; round < 10 && h.dispatcher.open.size > 0; round++) {
      // Answer one at a time so slots free up unevenly.
      const [first] = h.dispatcher.openIds();
      h.dispatcher.succeed(first as number);
      await h.settle();
      expect(h.dispatcher.open.size).toBeLessThanOrEqual(3);
    }
    while (h.dispatcher.open.size > 0) {
      for (const id of h.dispatcher.openIds()) h.dispatcher.succeed(id);
      await h.settle();
    }
    expect(h.dispatcher.maxOpen).toBe(3);
    expect(calls.every((c) => c.state === 'fulfilled')).toBe(true);
    expect(h.dispatcher.dispatched).toHaveLength(10);
    expect(h.supervisor.stats()).toMatchObject({ succeeded: 10, inFlight: 0, queued: 0 });
  });

  it('counts granted calls still waiting for the next dispatch flush against the bound', async () => {
    const h = createHarness({ concurrency: 2 });
    for (let i = 0; i < 5; i++) h.call({ body: { i } });
    await h.settle();
    const [a, b] = h.dispatcher.openIds();
    h.dispatcher.succeed(a as number);
    // Microtasks only: the third call is granted and waits for the flush (a real setImmediate).
    await microtasks(50);
    expect(h.dispatcher.dispatched).toHaveLength(2);
    h.dispatcher.succeed(b as number);
    await h.settle();
    expect(h.dispatcher.open.size).toBe(2);
    expect(h.dispatcher.maxOpen).toBe(2);
  });

  it('dispatches queued calls in the order they were made', async () => {
    const h = createHarness({ concurrency: 1 });
    for (let i = 0; i < 5; i++) h.call({ body: { i } });
    await h.settle();
    for (let i = 0; i < 5; i++) {
      h.dispatcher.succeed(h.dispatcher.last().id);
      await h.settle();
    }
    expect(h.dispatcher.dispatched.map((r) => r.body.i)).toEqual([0, 1, 2, 3, 4]);
  });

  it('counts calls waiting on the token bucket against the bound', async () => {
    // rpm 60: one request now, the next a second later.
    const h = createHarness({ concurrency: 2, lanes: [{ rpm: 60 }] });
    for (let i = 0; i < 4; i++) h.call({ body: { i } });
    await h.settle();
    expect(h.dispatcher.dispatched).toHaveLength(1);
    expect(h.supervisor.stats()).toMatchObject({ inFlight: 1, waitingOnRateLimit: 1, queued: 2 });
    await h.advance(1_000);
    expect(h.dispatcher.dispatched).toHaveLength(2);
    expect(h.supervisor.stats()).toMatchObject({ inFlight: 2, waitingOnRateLimit: 0, queued: 2 });
  });

  it('spreads calls over endpoints by least outstanding', async () => {
    const h = createHarness({ concurrency: 4, endpointCount: 2 });
    for (let i = 0; i < 4; i++) h.call({ body: { i } });
    await h.settle();
    const perEndpoint = [0, 0];
    for (const r of h.dispatcher.dispatched)
      perEndpoint[r.endpoint] = (perEndpoint[r.endpoint] ?? 0) + 1;
    expect(perEndpoint).toEqual([2, 2]);
  });

  it('reports saturation at maxQueue and emits drain once the queue is below half', async () => {
    const h = createHarness({ concurrency: 1, maxQueue: 4 });
    let drains = 0;
    h.events.on('drain', () => drains++);
    for (let i = 0; i < 5; i++) h.call({ body: { i } });
    await h.settle();
    expect(h.supervisor.isSaturated).toBe(true);
    h.dispatcher.succeed(h.dispatcher.last().id); // queue 4 -> 3
    await h.settle();
    h.dispatcher.succeed(h.dispatcher.last().id); // 3 -> 2
    await h.settle();
    expect(h.supervisor.isSaturated).toBe(true);
    expect(drains).toBe(0);
    h.dispatcher.succeed(h.dispatcher.last().id); // 2 -> 1
    await h.settle();
    expect(h.supervisor.isSaturated).toBe(false);
    expect(drains).toBe(1);
  });
});
