/**
 * `volley run --metrics-port 0 --metrics-dump <file>`: the real CLI in a child process against a
 * simulator in this process. While it runs, `/metrics` answers valid Prometheus text; at the end
 * the dumped scrape's counters equal the summary's counts exactly, in both modes; the key appears
 * in no label.
 */

import { access, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Simulator } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, waitFor } from './cli-process.js';
import { batchLine, runCli, tempDir } from './helpers.js';
import type { Scrape } from './metrics-helpers.js';
import { allLabelValues, byLabel, parseScrape, poisonAndFlaky, sumOf } from './metrics-helpers.js';

const LINES = 50_000;
/** Every 100th line fails for good (400); every 100th, offset, fails once and is retried. */
const POISON_EVERY = 100;
const CANARY_KEY = 'sk-canary-cli-metrics-0a9b8c7d6e';

interface Summary {
  succeeded: number;
  failed: number;
  retries: number;
  extraBilledCalls: number;
  promptTokens: number;
  completionTokens: number;
  byError: Record<string, number>;
}

describe('volley run --metrics-port', () => {
  let sim: Simulator;

  beforeAll(async () => {
    sim = await createSimulator({
      apiKey: CANARY_KEY,
      faultFor: poisonAndFlaky(),
    });
  });
  afterAll(() => sim.close());

  for (const mode of ['async', 'threads'] as const) {
    it(`serves valid Prometheus text mid-run, and its final counters equal the summary (${mode})`, async () => {
      await using dir = await tempDir();
      const lines: string[] = [];
      for (let i = 0; i < LINES; i++) {
        const word =
          i % POISON_EVERY === 7 ? 'poison' : i % POISON_EVERY === 51 ? `flaky ${mode}` : 'plain';
        lines.push(batchLine(i, { metadata: { note: word } }));
      }
      await writeFile(dir.file('in.jsonl'), `${lines.join('\n')}\n`);
      const cli = startCli(
        [
          'run',
          dir.file('in.jsonl'),
          '-o',
          dir.file('out.jsonl'),
          '--base-url',
          sim.url,
          '--mode',
          mode,
          '--concurrency',
          '128',
          '--max-retries',
          '2',
          '--progress',
          'none',
          '--json',
          '--metrics-port',
          '0',
          '--metrics-dump',
          dir.file('final.prom'),
        ],
        { env: { OPENAI_API_KEY: CANARY_KEY } },
      );

      // Mid-run: the URL is printed on stderr; scrape until calls have ended but the run has not.
      let url = '';
      await waitFor(() => {
        url = /metrics at (\S+)/.exec(cli.stderr())?.[1] ?? '';
        return url !== '';
      });
      let midRun: Scrape | undefined;
      await waitFor(async () => {
        const response = await fetch(url);
        expect(response.status).toBe(200);
        expect(response.headers.get('content-type')).toContain('text/plain');
        midRun = parseScrape(await response.text());
        return sumOf(midRun, 'volley_requests_total') > 0;
      }, 60_000);
      const seenMidRun = sumOf(midRun as Scrape, 'volley_requests_total');
      expect(seenMidRun).toBeLessThan(LINES);

      const result = await cli.exited;
      expect(result.code, result.stderr).toBe(1); // finished with errors: the poisoned lines
      const summary = JSON.parse(result.stdout) as Summary;
      const poisoned = LINES / POISON_EVERY;
      expect(summary).toMatchObject({ succeeded: LINES - poisoned, failed: poisoned });

      const final = parseScrape(await readFile(dir.file('final.prom'), 'utf8'));
      const outcomes = byLabel(final, 'volley_requests_total', 'outcome');
      expect(outcomes.success).toBe(summary.succeeded);
      const { success: _, ...failures } = outcomes;
      expect(failures).toEqual(summary.byError);
      expect(sumOf(final, 'volley_retries_total')).toBe(summary.retries);
      expect(summary.retries).toBe(poisoned);
      expect(sumOf(final, 'volley_extra_billed_calls_total')).toBe(summary.extraBilledCalls);
      expect(sumOf(final, 'volley_tokens_total', { direction: 'input' })).toBe(
        summary.promptTokens,
      );
      expect(sumOf(final, 'volley_tokens_total', { direction: 'output' })).toBe(
        summary.completionTokens,
      );
      expect(sumOf(final, 'volley_request_duration_seconds')).toBe(summary.succeeded);
      expect(sumOf(final, 'volley_in_flight')).toBe(0);
      expect(sumOf(final, 'volley_requests_total')).toBeGreaterThan(seenMidRun);

      for (const scrape of [midRun as Scrape, final]) {
        for (const value of allLabelValues(scrape)) expect(value).not.toContain('canary');
      }
      expect(await readFile(dir.file('final.prom'), 'utf8')).not.toContain(CANARY_KEY);
      // Served for the run's duration only.
      await expect(fetch(url)).rejects.toThrow();
    }, 240_000);
  }

  it('volley embed: the final scrape counts its embedding requests and their tokens', async () => {
    await using dir = await tempDir();
    const texts = Array.from({ length: 500 }, (_, i) => `passage ${i} about otters`);
    await writeFile(dir.file('texts.txt'), `${texts.join('\n')}\n`);
    const result = await runCli(
      [
        'embed',
        dir.file('texts.txt'),
        '-o',
        dir.file('vectors.f32'),
        '--base-url',
        sim.url,
        '--model',
        'volley-sim-embed-1',
        '--batch-size',
        '50',
        '--progress',
        'none',
        '--metrics-port',
        '0',
        '--metrics-dump',
        dir.file('final.prom'),
      ],
      { OPENAI_API_KEY: CANARY_KEY },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/metrics at http:\/\/127\.0\.0\.1:\d+\/metrics/);
    const final = parseScrape(await readFile(dir.file('final.prom'), 'utf8'));
    expect(byLabel(final, 'volley_requests_total', 'outcome')).toEqual({ success: 10 });
    expect(byLabel(final, 'volley_requests_total', 'model')).toEqual({ 'volley-sim-embed-1': 10 });
    expect(sumOf(final, 'volley_tokens_total', { direction: 'input' })).toBeGreaterThan(0);
    for (const value of allLabelValues(final)) expect(value).not.toContain('canary');
  });

  it('a metrics port already taken is a usage error, before anything is sent', async () => {
    await using dir = await tempDir();
    await writeFile(dir.file('in.jsonl'), `${batchLine(0)}\n`);
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as { port: number };
    try {
      const before = sim.stats().requests;
      const result = await runCli(
        [
          'run',
          dir.file('in.jsonl'),
          '-o',
          dir.file('out.jsonl'),
          '--base-url',
          sim.url,
          '--progress',
          'none',
          '--metrics-port',
          String(port),
        ],
        { OPENAI_API_KEY: CANARY_KEY },
      );
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`cannot serve metrics on 127.0.0.1:${port}: EADDRINUSE`);
      expect(sim.stats().requests).toBe(before);
      await expect(access(dir.file('out.jsonl'))).rejects.toThrow();
    } finally {
      taken.close();
    }
  });
});
