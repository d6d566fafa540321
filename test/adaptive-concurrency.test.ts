// `concurrency: 'auto'` against real `volley sim` processes with the engine model: replicas of
// different sizes, a server that sheds load with 503, and the CLI's progress and summary. No
// timing asserts: what is checked is behaviour (limits exist and move for the documented reasons,
// hints are read, 503s are waited out, the bigger replica takes more). Figures live in
// benchmarks/adaptive/run.ts.
import type { LimitDecision } from '@volley/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVolley, ErrorCode, type Volley } from 'volley';
import { type CliProcess, startSimCli, waitFor } from './cli-process.js';
import { runCli, tempDir, writeBatch } from './helpers.js';

function startSim(args: string[]): Promise<{ cli: CliProcess; url: string }> {
  return startSimCli(['--decode-step-ms', '2', ...args]);
}

async function stop(cli: CliProcess): Promise<void> {
  cli.child.kill('SIGTERM');
  await cli.exited;
}

function chat(volley: Volley, i: number) {
  return volley.chat(
    { model: 'volley-sim-1', messages: [{ role: 'user', content: `q${i}` }], max_tokens: 8 },
    { stream: true },
  );
}

describe("concurrency: 'auto' (library)", () => {
  const sims: CliProcess[] = [];
  let small: string;
  let big: string;
  let shedding: string;
  beforeAll(async () => {
    const started = await Promise.all([
      startSim(['--engine-slots', '4']),
      startSim(['--engine-slots', '16']),
      startSim(['--engine-slots', '2', '--max-waiting', '0']),
    ]);
    sims.push(...started.map((s) => s.cli));
    [small, big, shedding] = started.map((s) => s.url) as [string, string, string];
  });
  afterAll(() => Promise.all(sims.map(stop)));

  it('gives each replica its own limit, read its server hints, and sends the bigger one more', async () => {
    const volley = await createVolley({
      endpoints: [{ baseUrl: small }, { baseUrl: big }],
      concurrency: 'auto',
      logger: false,
    });
    const decisions: Array<LimitDecision & { endpoint: number }> = [];
    volley.on('concurrencyLimit', (decision) => decisions.push(decision));
    try {
      await Promise.all(Array.from({ length: 600 }, (_, i) => chat(volley, i)));
      await waitFor(() => volley.stats().byEndpoint.every((e) => e.server?.slots !== undefined));
      const [a, b] = volley.stats().byEndpoint;
      expect((a?.succeeded ?? 0) + (b?.succeeded ?? 0)).toBe(600);
      expect(a?.server?.slots).toBe(4);
      expect(b?.server?.slots).toBe(16);
      expect(a?.concurrencyLimit).toEqual(expect.any(Number));
      expect(b?.concurrencyLimit).toEqual(expect.any(Number));
      expect(b?.succeeded).toBeGreaterThan(a?.succeeded ?? 0);
      // The big server grew from the small start (doubling, or straight to its 16 slots once its
      // hints were read); the small one's limit ends below it.
      expect(decisions.find((d) => d.endpoint === 1)).toMatchObject({
        from: 4,
        reason: 'slow-start',
      });
      expect(a?.concurrencyLimit).toBeLessThan(b?.concurrencyLimit ?? 0);
    } finally {
      await volley.close();
    }
  });

  it("cuts on a server's 503 (queue full) and waits the 503s out instead of failing", async () => {
    const volley = await createVolley({
      endpoints: [{ baseUrl: shedding }],
      concurrency: 'auto',
      logger: false,
    });
    const decisions: LimitDecision[] = [];
    volley.on('concurrencyLimit', (decision) => decisions.push(decision));
    try {
      await Promise.all(Array.from({ length: 100 }, (_, i) => chat(volley, i)));
      const stats = volley.stats();
      expect(stats.succeeded).toBe(100);
      expect(stats.failed).toBe(0);
      expect(stats.backpressure).toBeGreaterThan(0);
      expect(decisions.some((d) => d.reason === 'load-shed')).toBe(true);
    } finally {
      await volley.close();
    }
  });

  it('refuses a per-endpoint concurrency other than auto', async () => {
    await expect(
      createVolley({
        endpoints: [{ baseUrl: small, concurrency: 8 as unknown as 'auto' }],
        logger: false,
      }),
    ).rejects.toMatchObject({ code: ErrorCode.INVALID_OPTIONS });
  });

  it('leaves an endpoint without auto unlimited beside one with it', async () => {
    const volley = await createVolley({
      endpoints: [{ baseUrl: small, concurrency: 'auto' }, { baseUrl: big }],
      concurrency: 32,
      logger: false,
      metrics: true,
    });
    try {
      await Promise.all(Array.from({ length: 50 }, (_, i) => chat(volley, i)));
      const [a, b] = volley.stats().byEndpoint;
      expect(a?.concurrencyLimit).toEqual(expect.any(Number));
      expect(b?.concurrencyLimit).toBeUndefined();
      const text = (await volley.metrics?.metrics()) ?? '';
      const gauge = text.split('\n').filter((line) => line.startsWith('volley_concurrency_limit{'));
      expect(gauge).toEqual([
        `volley_concurrency_limit{endpoint="${new URL(small).origin}"} ${a?.concurrencyLimit}`,
      ]);
    } finally {
      await volley.close();
    }
  });
});

describe('volley run --concurrency auto', () => {
  let sim: CliProcess;
  let url: string;
  beforeAll(async () => {
    ({ cli: sim, url } = await startSim(['--engine-slots', '8']));
  });
  afterAll(() => stop(sim));

  it('shows the limit in --progress json events and the summary', async () => {
    await using dir = await tempDir();
    await writeBatch(dir.file('in.jsonl'), 300);
    const result = await runCli([
      'run',
      dir.file('in.jsonl'),
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      url,
      '--concurrency',
      'auto',
      '--progress',
      'json',
      '--progress-interval-ms',
      '100',
      '--json',
    ]);
    expect(result.code).toBe(0);
    const events = result.stderr
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; concurrencyLimits?: unknown });
    const progress = events.filter((e) => e.type === 'progress');
    expect(progress.length).toBeGreaterThan(0);
    for (const event of progress) expect(event.concurrencyLimits).toEqual([expect.any(Number)]);
    const summary = JSON.parse(result.stdout) as {
      succeeded: number;
      byEndpoint: Record<string, { concurrencyLimit?: number }>;
    };
    expect(summary.succeeded).toBe(300);
    expect(summary.byEndpoint[url]?.concurrencyLimit).toEqual(expect.any(Number));
  });

  it('refuses -c with neither a number nor auto', async () => {
    const result = await runCli(['run', '-', '--concurrency', 'fast']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('--concurrency');
  });
});
