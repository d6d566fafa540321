/**
 * Stop conditions and the automatic sweep, against the simulator.
 */
import { autoSweep, createBenchmark } from '@volley/bench';
import { createSimulator } from '@volley/sim';
import { describe, expect, it } from 'vitest';
import { options, prompts } from './helpers.js';

describe('volley bench stop conditions and automatic sweep', () => {
  it('stops a run whose recent failures pass --max-error-rate, and counts errors by class', async () => {
    // Every other request fails with a 500 (seeded faults).
    const sim = await createSimulator({
      faults: { rate: 0.5, kinds: { 'status-500': 1 } },
      seed: 3,
    });
    const bench = await createBenchmark(
      options(sim.url, await prompts(10, 4, false), {
        stop: { requests: 5000, maxErrorRate: 0.2 },
      }),
    );
    try {
      const r = await bench.run({ ratePerSecond: 200, arrival: 'constant' });
      expect(r.stop_reason).toBe('error_rate');
      expect(r.sent_requests).toBeLessThan(5000);
      expect(r.errors.by_class.http_500).toBeGreaterThan(0);
      expect(r.errors.error_rate).toBeGreaterThan(0.2);
      expect(r.completed + r.failed).toBe(r.sent_requests);
    } finally {
      await bench.close();
      await sim.close();
    }
  }, 60_000);

  it('the automatic sweep runs one at a time, all at once, then rates strictly between', async () => {
    const sim = await createSimulator({ latency: { headersMs: 50 } });
    const bench = await createBenchmark(options(sim.url, await prompts(20, 4, false)));
    try {
      const outcome = await autoSweep(bench, { points: 4, arrival: 'constant' });
      expect(outcome.runs.map((r) => r.label)).toEqual([
        'synchronous',
        `rate ${outcome.loads[1]}/s`,
        `rate ${outcome.loads[2]}/s`,
        'saturation',
      ]);
      const [sync, , , saturation] = outcome.runs;
      expect(sync?.load.model).toBe('closed');
      expect(sync?.max_concurrency).toBe(1);
      // One request at a time at ~50 ms each: about 20 req/s, far below all-at-once.
      expect(sync?.request_throughput).toBeLessThan(25);
      expect(saturation?.request_throughput).toBeGreaterThan(2 * (sync?.request_throughput ?? 0));
      const low = outcome.loads[0] as number;
      const high = outcome.loads[3] as number;
      for (const rate of outcome.loads.slice(1, 3)) {
        expect(rate).toBeGreaterThan(low);
        expect(rate).toBeLessThan(high);
      }
    } finally {
      await bench.close();
      await sim.close();
    }
  }, 90_000);
});
