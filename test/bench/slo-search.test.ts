/**
 * The SLO search and the sweep's knee, against a server whose capacity is known: the simulator
 * with a requests-per-minute limit answers 429 beyond it, so at most `rpm / 60` requests per
 * second succeed. `server-model.test.ts` runs the same checks against the engine model's slots.
 */
import { createBenchmark, searchSlo, sweep } from '@volley/bench';
import { createSimulator } from '@volley/sim';
import { describe, expect, it } from 'vitest';
import { options, prompts } from './helpers.js';

describe('volley bench against a server of known capacity', () => {
  it('the SLO search returns the highest rate meeting the SLOs within one step of the truth', async () => {
    const capacity = 5; // requests per second
    const sim = await createSimulator({
      limits: { rpm: capacity * 60 },
      latency: { headersMs: 5 },
    });
    const bench = await createBenchmark(
      options(sim.url, await prompts(50, 4, false), {
        stop: { durationMs: 5000 },
        slos: { e2el: 2000 },
      }),
    );
    try {
      const outcome = await searchSlo(bench, {
        axis: 'rate',
        start: 1,
        step: 1,
        goodFraction: 0.99,
        loadFor: (rate) => ({ ratePerSecond: rate, arrival: 'constant' }),
      });
      expect(outcome.best).not.toBeNull();
      expect(Math.abs((outcome.best as number) - capacity)).toBeLessThanOrEqual(1);
      expect(outcome.lowestFailing).toBeGreaterThan(capacity);
      // Every probe above the capacity by two steps failed on 429s, counted against goodput.
      for (const probe of outcome.probes) {
        if (probe.value >= capacity + 2) {
          expect(probe.passed).toBe(false);
          expect(probe.result.errors.by_class.http_429).toBeGreaterThan(0);
        }
      }
    } finally {
      await bench.close();
      await sim.close();
    }
  }, 120_000);

  it('a concurrency sweep finds the knee where throughput stops growing', async () => {
    // 100 ms per request: concurrency c serves 10·c req/s, until the 30 req/s limit at c = 3.
    const sim = await createSimulator({ limits: { rpm: 30 * 60 }, latency: { headersMs: 100 } });
    const bench = await createBenchmark(
      options(sim.url, await prompts(20, 4, false), { stop: { durationMs: 3000 } }),
    );
    try {
      const outcome = await sweep(bench, 'concurrency', [1, 2, 3, 4, 5, 6], {
        loadFor: (c) => ({ ratePerSecond: Infinity, arrival: 'constant', maxConcurrency: c }),
      });
      expect(outcome.runs.length).toBe(6);
      expect(outcome.knee).not.toBeNull();
      // The truth is 3; one step of the sweep either side of a noisy point is allowed.
      expect([3, 4]).toContain(outcome.knee?.load);
      expect(outcome.runs[0]?.request_throughput).toBeLessThan(11);
      // The simulator's bucket holds one second of refill, so a 3 s run can see up to 4 s of the
      // limit: 40 req/s is the ceiling, well below the 60 req/s that c = 6 would reach unlimited.
      expect(outcome.runs[5]?.request_throughput).toBeLessThanOrEqual(40);
    } finally {
      await bench.close();
      await sim.close();
    }
  }, 120_000);
});
