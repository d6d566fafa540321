/**
 * `volley bench` across replicas, with hedging (issue #13 item 4), against two real simulators on
 * port 0: a request the first replica stalls (the sim's `slow-headers` fault: no head for
 * `slowMs`) is answered by its copy on the other, and the stalled connection is closed (the
 * sim's request log marks it aborted); copies stay within the budget; hedging is off by default;
 * one replica and `--hedge` is a usage error. No timing asserts: p99 figures live in
 * benchmarks/hedging/run.ts.
 */
import type { BenchmarkOptions, Load } from '@volley/bench';
import { createBenchmark } from '@volley/bench';
import { createSimulator, type Simulator } from '@volley/sim';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../cli-process.js';
import { runCli } from '../helpers.js';
import { options, prompts } from './helpers.js';

const STALLED = 'slow-headers';
const closed: Load = { ratePerSecond: Infinity, arrival: 'constant', maxConcurrency: 4 };

/**
 * Two replicas; replica 0 stalls every `every`-th request from its `from`-th on (seq order), so
 * the samples it needs first come in healthy.
 */
async function replicas(stall: { from: number; every: number; ms: number }): Promise<Simulator[]> {
  return Promise.all([
    createSimulator({
      latency: { headersMs: 5 },
      faultFor: ({ index }) =>
        index >= stall.from && (index - stall.from) % stall.every === 0
          ? { kind: STALLED, slowMs: stall.ms }
          : undefined,
    }),
    createSimulator({ latency: { headersMs: 5 } }),
  ]);
}

const stalledEntries = (sim: Simulator) => sim.requests.filter((r) => r.fault === STALLED);

describe('volley bench across replicas, with hedging', () => {
  let sims: Simulator[] = [];
  afterEach(async () => {
    await Promise.all(sims.map((sim) => sim.close()));
    sims = [];
  });

  async function bench(count: number, extra: Partial<BenchmarkOptions>, load: Load = closed) {
    const list = await prompts(count, 4);
    const b = await createBenchmark({
      ...options(sims[0]!.url, list, extra),
      baseUrl: sims.map((sim) => sim.url),
    });
    try {
      return await b.run(load);
    } finally {
      await b.close();
    }
  }

  it.each([
    ['closed loop', closed],
    ['open loop', { ratePerSecond: 300, arrival: 'poisson' } as Load],
  ])(
    'answers a stalled request with the copy and closes the stalled connection (%s)',
    async (_, load) => {
      // A minute's stall: without the copy the run could not finish inside the test's time.
      sims = await replicas({ from: 30, every: 10, ms: 60_000 });
      const result = await bench(
        200,
        {
          warmupRequests: 40,
          hedge: { percentile: 0.9, budget: 0.5, minDelayMs: 0, minSamples: 10 },
        },
        load,
      );
      expect(result.completed).toBe(200);
      expect(result.failed).toBe(0);
      const stalled = stalledEntries(sims[0]!);
      expect(stalled.length).toBeGreaterThan(0);
      // Each stall lost its race: to its copy, or (a copy that stalled) to its original.
      expect(result.hedging?.copy_won).toBeGreaterThan(0);
      expect(result.hedged_requests).toBeGreaterThanOrEqual(stalled.length);
      expect(result.billed_requests).toBe(result.sent_requests + result.hedged_requests);
      expect(result.replicas.map((r) => r.base_url)).toEqual(sims.map((sim) => sim.url));
      expect(result.replicas.reduce((sum, r) => sum + r.calls, 0)).toBe(result.billed_requests);
      // The winner's times, from the original send (and from the intended time): nothing waited
      // out the stall.
      expect(result.metrics.e2el_ms.max).toBeLessThan(60_000);
      expect(result.metrics.e2el_from_intended_ms.max).toBeLessThan(60_000);
      // The stalled connections were closed: the server saw the client go.
      await waitFor(() => stalledEntries(sims[0]!).every((r) => r.aborted));
    },
  );

  it('keeps the copies within the budget when stalls outnumber it', async () => {
    // Every request of replica 0 from its 10th on stalls a minute, far more than 2% of the run;
    // those the budget gives no copy end at the 2 s idle limit.
    sims = await replicas({ from: 10, every: 1, ms: 60_000 });
    const result = await bench(200, {
      requestTimeoutMs: 2_000,
      hedge: { percentile: 0.5, budget: 0.02, minDelayMs: 0, minSamples: 5 },
    });
    expect(result.hedged_requests).toBeGreaterThan(0);
    expect(result.hedged_requests).toBeLessThanOrEqual(0.02 * result.sent_requests);
    // Stalls left without a copy once the budget was spent: they timed out.
    expect(result.errors.by_class.timeout).toBeGreaterThan(0);
    expect(result.completed + result.failed).toBe(200);
    expect(result.billed_requests).toBe(result.sent_requests + result.hedged_requests);
  });

  it('is off by default: replicas share the load, no copy, nothing aborted', async () => {
    sims = await replicas({ from: 10, every: 10, ms: 200 });
    const result = await bench(100, {});
    expect(result.completed).toBe(100);
    expect(result.hedging).toBeNull();
    expect(result.hedged_requests).toBe(0);
    expect(result.billed_requests).toBe(100);
    for (const replica of result.replicas) expect(replica.calls).toBeGreaterThan(0);
    expect(result.replicas.reduce((sum, r) => sum + r.calls, 0)).toBe(100);
    expect(stalledEntries(sims[0]!).length).toBeGreaterThan(0);
    expect(sims.flatMap((sim) => sim.requests).some((r) => r.aborted)).toBe(false);
  });

  it('refuses hedging with one replica (library and CLI)', async () => {
    sims = await replicas({ from: 0, every: 1, ms: 1 });
    await expect(
      createBenchmark(options(sims[1]!.url, await prompts(4), { hedge: {} })),
    ).rejects.toMatchObject({ code: 'VOLLEY_ERR_INVALID_OPTIONS' });
    const one = await runCli([
      'bench',
      '--base-url',
      sims[1]!.url,
      '--hedge',
      '--progress',
      'none',
    ]);
    expect(one.code).toBe(2);
    expect(one.stderr).toContain('--hedge');
    const orphan = await runCli([
      'bench',
      ...sims.flatMap((sim) => ['--base-url', sim.url]),
      '--hedge-budget',
      '0.1',
      '--progress',
      'none',
    ]);
    expect(orphan.code).toBe(2);
    expect(sims.flatMap((sim) => sim.requests)).toHaveLength(0);
  });

  it('volley bench --hedge with two --base-url reports replicas and hedges in its JSON', async () => {
    // The CLI keeps the library's warm-up of 100 samples per replica: replica 0 stalls from its
    // 120th request, after about 100 warm-ups and 20 measured requests.
    sims = await replicas({ from: 120, every: 10, ms: 60_000 });
    const r = await runCli([
      'bench',
      ...sims.flatMap((sim) => ['--base-url', sim.url]),
      '--hedge',
      '--hedge-percentile',
      '90',
      '--hedge-budget',
      '0.5',
      '--num-prompts',
      '200',
      '--num-warmups',
      '200',
      '--max-concurrency',
      '4',
      '--random-input-len',
      '16',
      '--random-output-len',
      '4',
      '--progress',
      'none',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.completed).toBe(200);
    expect(doc.base_urls).toHaveLength(2);
    expect(doc.hedging).toMatchObject({ percentile: 0.9, budget: 0.5 });
    expect(doc.replicas).toHaveLength(2);
    expect(doc.billed_requests).toBe(doc.sent_requests + doc.hedged_requests);
    expect(doc.hedged_requests).toBeGreaterThan(0);
  });
});
