// Hedging (issue #13 item 4) against two real simulators on port 0, in async and threads mode: a
// stalled request is answered by its copy on the other replica and the stalled one is cancelled
// (the stalled simulator's log marks it aborted); copies stay within the budget; off by default.
// No timing asserts: p99 figures live in benchmarks/adaptive/run.ts (scenario hedging).
import { createSimulator, type Simulator } from '@volley/sim';
import { afterEach, describe, expect, it } from 'vitest';
import { createVolley, type Volley, type VolleyOptions } from 'volley';
import { type CliProcess, startSimCli, waitFor } from './cli-process.js';
import { runCli } from './helpers.js';

/** A request whose text starts with STALL stalls the first time either replica sees it. */
async function replicas(stallMs: number): Promise<{ sims: Simulator[]; stalled: Set<string> }> {
  const stalled = new Set<string>();
  const faultFor = ({ body }: { body: unknown }) => {
    const text = (body as { messages?: Array<{ content?: string }> }).messages?.[0]?.content ?? '';
    if (!text.startsWith('STALL') || stalled.has(text)) return undefined;
    stalled.add(text);
    return { kind: 'slow-headers' as const, slowMs: stallMs };
  };
  const sims = await Promise.all(
    [0, 1].map(() => createSimulator({ latency: { headersMs: 10 }, faultFor })),
  );
  return { sims, stalled };
}

const hedge = { percentile: 0.9, budget: 0.5, minDelayMs: 0, minSamples: 5 };

function ask(volley: Volley, text: string, stream: boolean) {
  return volley.request({
    path: '/chat/completions',
    body: { model: 'volley-sim-1', messages: [{ role: 'user', content: text }], max_tokens: 4 },
    stream,
  });
}

async function warmUp(volley: Volley, calls = 30): Promise<void> {
  for (let i = 0; i < calls; i += 5)
    await Promise.all([0, 1, 2, 3, 4].map((k) => ask(volley, `warm ${i + k}`, false)));
}

describe.each(['async', 'threads'] as const)('hedging (%s mode)', (mode) => {
  let sims: Simulator[] = [];
  let volley: Volley | undefined;
  afterEach(async () => {
    await volley?.close();
    volley = undefined;
    await Promise.all(sims.map((sim) => sim.close()));
    sims = [];
  });

  async function start(stallMs: number, options: VolleyOptions): Promise<Set<string>> {
    const set = await replicas(stallMs);
    sims = set.sims;
    volley = await createVolley({
      endpoints: sims.map((sim) => ({ baseUrl: sim.url })),
      mode,
      logger: false,
      ...options,
    });
    return set.stalled;
  }

  it.each([false, true])(
    'a stalled request (stream: %s) is answered by its copy; the stalled one is cancelled',
    async (stream) => {
      await start(60_000, { hedge });
      const runtime = volley!;
      await warmUp(runtime);
      const result = await ask(runtime, 'STALL 1', stream);
      expect(result.status).toBe(200);
      // The request log keeps bodies only with logBodies; find the stalled entry by its fault.
      const stalledSim = sims.findIndex((sim) =>
        sim.requests.some((r) => r.fault === 'slow-headers'),
      );
      expect(stalledSim).toBeGreaterThanOrEqual(0);
      expect(result.endpoint).toBe(1 - stalledSim);
      await waitFor(() =>
        sims[stalledSim]!.requests.some((r) => r.fault === 'slow-headers' && r.aborted),
      );
      const stats = runtime.stats();
      expect(stats.hedgedCalls).toBeGreaterThanOrEqual(1);
      expect(stats.extraBilledCalls).toBeGreaterThanOrEqual(stats.hedgedCalls);
      expect(stats.inFlight).toBe(0);
    },
  );

  it('keeps copies within the budget: stalls past it are waited out', async () => {
    const budget = 0.1;
    await start(1_500, { hedge: { ...hedge, budget } });
    const runtime = volley!;
    await warmUp(runtime, 10);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => ask(runtime, `STALL ${i}`, false)),
    );
    const stats = runtime.stats();
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(stats.hedgedCalls).toBeGreaterThanOrEqual(1);
    // 20 attempts sent (no retries): at most 2 copies.
    expect(stats.retries).toBe(0);
    expect(stats.hedgedCalls).toBeLessThanOrEqual(budget * 20);
    const waitedOut = sims.reduce(
      (n, sim) => n + sim.requests.filter((r) => r.fault === 'slow-headers' && !r.aborted).length,
      0,
    );
    expect(waitedOut).toBeGreaterThanOrEqual(10 - stats.hedgedCalls);
  });

  it('is off by default: a stalled request is waited out and never copied', async () => {
    await start(1_000, {});
    const runtime = volley!;
    await warmUp(runtime, 10);
    const result = await ask(runtime, 'STALL 1', false);
    const stalledSim = sims.findIndex((sim) =>
      sim.requests.some((r) => r.fault === 'slow-headers'),
    );
    expect(result.endpoint).toBe(stalledSim);
    expect(runtime.stats()).toMatchObject({ hedgedCalls: 0, extraBilledCalls: 0 });
    expect(sims.reduce((n, sim) => n + sim.stats().requests, 0)).toBe(11);
    expect(sims.reduce((n, sim) => n + sim.stats().aborted, 0)).toBe(0);
  });
});

describe('hedging options', () => {
  it('refuses hedging with a single endpoint, and bad fractions', async () => {
    await expect(
      createVolley({
        endpoints: [{ baseUrl: 'http://127.0.0.1:9/v1' }],
        hedge: true,
        logger: false,
      }),
    ).rejects.toMatchObject({ code: 'VOLLEY_ERR_INVALID_OPTIONS' });
    await expect(
      createVolley({
        endpoints: [{ baseUrl: 'http://127.0.0.1:9/v1' }, { baseUrl: 'http://127.0.0.1:10/v1' }],
        hedge: { budget: 2 },
        logger: false,
      }),
    ).rejects.toMatchObject({ code: 'VOLLEY_ERR_INVALID_OPTIONS' });
  });
});

describe('hedging against `volley sim --stall-rate` processes', () => {
  it('answers every call although both replicas stall some requests, within the budget', async () => {
    const started = await Promise.all(
      [1, 2].map((seed) =>
        startSimCli([
          '--latency-ms',
          '10',
          '--stall-rate',
          '0.03',
          '--stall-ms',
          '3000',
          '--seed',
          String(seed),
        ]),
      ),
    );
    const clis: CliProcess[] = started.map((s) => s.cli);
    const volley = await createVolley({
      endpoints: started.map((s) => ({ baseUrl: s.url })),
      mode: 'threads',
      logger: false,
      hedge: { percentile: 0.9, budget: 0.2, minDelayMs: 0, minSamples: 5 },
    });
    try {
      await warmUp(volley, 10);
      const results = await Promise.all(
        Array.from({ length: 150 }, (_, i) => ask(volley, `call ${i}`, i % 2 === 0)),
      );
      expect(results.every((r) => r.status === 200)).toBe(true);
      const stats = volley.stats();
      expect(stats.hedgedCalls).toBeGreaterThanOrEqual(1);
      expect(stats.hedgedCalls).toBeLessThanOrEqual(0.2 * (160 + stats.retries));
      expect(stats.extraBilledCalls).toBeGreaterThanOrEqual(stats.hedgedCalls);
    } finally {
      await volley.close();
      for (const cli of clis) cli.child.kill('SIGTERM');
      await Promise.all(clis.map((cli) => cli.exited));
    }
  });

  it('refuses --stall-ms without --stall-rate', async () => {
    const result = await runCli(['sim', '--port', '0', '--stall-ms', '100']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--stall-ms needs --stall-rate');
  });
});
