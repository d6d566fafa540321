/**
 * Regression: in threads mode a cancel could miss its request. It was sent only to threads that
 * had already reported in, and a thread ignored a cancel for an attempt it had not started yet
 * (the control port can overtake the task). Such requests ran to completion at the server while
 * the caller had already been told they were aborted.
 */
import { createSimulator } from '@volley/sim';
import { describe, expect, it } from 'vitest';
import { createVolley, ErrorCode } from 'volley';

const MODEL = 'volley-sim-1';

async function abortEarly(warm: boolean, abortAfterMs: number) {
  // Slow generation: a request that is not cancelled keeps the server busy for seconds.
  const sim = await createSimulator({ latency: { tokensPerSecond: 20 } });
  const volley = await createVolley({
    mode: 'threads',
    endpoints: [{ baseUrl: sim.url }],
    model: MODEL,
    concurrency: 32,
    logger: false,
  });
  try {
    if (warm) {
      await volley.chat({ messages: [{ role: 'user', content: 'warm up' }], max_tokens: 1 });
    }
    const before = sim.requests.length;
    const controller = new AbortController();
    const calls = Array.from({ length: 20 }, (_, i) =>
      volley.chat(
        { messages: [{ role: 'user', content: `cancel me ${i}` }], max_tokens: 200 },
        { signal: controller.signal },
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, abortAfterMs));
    controller.abort();
    const settled = await Promise.allSettled(calls);
    for (const result of settled) {
      expect(result.status).toBe('rejected');
      expect((result as PromiseRejectedResult).reason).toMatchObject({ code: ErrorCode.ABORTED });
    }
    // Aborted calls are the caller's doing, not failures of the endpoint.
    expect(volley.stats().byEndpoint[0]?.failed).toBe(0);
    // Every attempt comes back within moments, not after a 10 s generation.
    await expect.poll(() => volley.stats().inFlight, { timeout: 2_000 }).toBe(0);
    await expect.poll(() => sim.stats().inFlight, { timeout: 2_000 }).toBe(0);
    for (const entry of sim.requests.slice(before)) expect(entry.aborted).toBe(true);
  } finally {
    await volley.close();
    await sim.close();
  }
}

describe('cancellation in threads mode', () => {
  it(
    'reaches requests dispatched before any worker thread had reported in',
    () => abortEarly(false, 30),
    30_000,
  );
  it('reaches requests whose cancel overtakes their task', () => abortEarly(true, 1), 30_000);
});
