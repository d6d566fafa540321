/**
 * Coordinated omission: an open loop at 40 req/s with a concurrency cap of 2 against a server
 * that takes ~200 ms per request can deliver only ~10 req/s. Every request keeps its intended
 * send time, so latency from the intended time grows with the backlog while latency from the
 * actual send stays at the server's ~200 ms, and the client-health check says the client queued
 * (the deterministic "starved client" case: a tiny cap under a high rate).
 */
import { createBenchmark } from '@volley/bench';
import { createSimulator } from '@volley/sim';
import { describe, expect, it } from 'vitest';
import { options, prompts } from './helpers.js';

describe('volley bench under client-side overload', () => {
  it('intended-time latency grows, actual-send latency does not, and the client is flagged', async () => {
    const sim = await createSimulator({ latency: { headersMs: 150, tokensPerSecond: 100 } });
    const bench = await createBenchmark(options(sim.url, await prompts(60, 4)));
    try {
      const r = await bench.run({ ratePerSecond: 40, arrival: 'constant', maxConcurrency: 2 });
      expect(r.completed).toBe(60);
      const actual = r.metrics.e2el_ms;
      const intended = r.metrics.e2el_from_intended_ms;
      // The server's time per request (~150 ms + 3 gaps of 10 ms) stays what it is (the limit
      // leaves room for a busy machine's late timers)...
      const actualP50 = actual.percentiles.p50 as number;
      expect(actualP50).toBeLessThan(400);
      // ...while the backlog adds seconds: 60 requests planned over 1.5 s, served over ~5.4 s.
      expect(intended.percentiles.p50).toBeGreaterThan(1000);
      expect(intended.percentiles.p50).toBeGreaterThan(3 * actualP50);
      expect(intended.max).toBeGreaterThan(3000);
      // Growing with the backlog: the last second's intended TTFT far above the first's.
      const series = r.timeseries.ttft_from_intended_mean_ms.filter((v): v is number => v !== null);
      expect((series[series.length - 1] as number) - (series[0] as number)).toBeGreaterThan(1000);
      const health = r.client_health;
      expect(health.client_limited).toBe(true);
      expect(health.reasons.join(' ')).toMatch(/the client queued/);
      expect(health.concurrency_wait_p99_ms).toBeGreaterThan(1000);
      expect(r.metrics.concurrency_wait_ms.percentiles.p99).toBeGreaterThan(1000);
    } finally {
      await bench.close();
      await sim.close();
    }
  }, 60_000);

  it('a duration stop counts sends that were due but never left as dropped', async () => {
    const sim = await createSimulator({ latency: { headersMs: 400 } });
    const bench = await createBenchmark(
      options(sim.url, await prompts(20, 4, false), { stop: { durationMs: 1500 } }),
    );
    try {
      const r = await bench.run({ ratePerSecond: 20, arrival: 'constant', maxConcurrency: 1 });
      expect(r.stop_reason).toBe('duration');
      expect(r.client_health.dropped_sends).toBeGreaterThan(10);
      expect(r.client_health.client_limited).toBe(true);
      expect(r.client_health.reasons.some((reason) => /never sent/.test(reason))).toBe(true);
    } finally {
      await bench.close();
      await sim.close();
    }
  }, 60_000);
});
