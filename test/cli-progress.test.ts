/**
 * What `volley run` shows while it works: a live line redrawn in place on a real terminal (a
 * pseudo-terminal made by `script`), plain lines with no escape codes anywhere else, JSON events
 * with `--progress json`, and the final summary (also as JSON with `--json`).
 */
import { spawn, spawnSync } from 'node:child_process';
import type { Simulator } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli, tempDir, writeBatch } from './helpers.js';

const hasScript =
  process.platform === 'linux' &&
  spawnSync('script', ['-qfec', 'true', '/dev/null'], { stdio: 'ignore' }).status === 0;

const ESC = '\u001b';
let sim: Simulator;

beforeAll(async () => {
  // About 1.5 s for 300 lines at concurrency 32: long enough for several redraws.
  sim = await createSimulator({ latency: { headersMs: 150 } });
});
afterAll(() => sim.close());

/** Runs a shell command line inside a pseudo-terminal; resolves with everything it displayed. */
function inPty(command: string): Promise<{ code: number | null; screen: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', command, '/dev/null'], {
      env: { PATH: process.env.PATH ?? '', TERM: 'xterm-256color' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let screen = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (screen += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, screen }));
  });
}

function runArgs(input: string, output: string, ...extra: string[]): string[] {
  return ['run', input, '-o', output, '--base-url', sim.url, '--concurrency', '32', ...extra];
}

describe('volley run progress', () => {
  it.skipIf(!hasScript)(
    'redraws one live line on a terminal and ends with the summary',
    async () => {
      await using dir = await tempDir();
      await writeBatch(dir.file('in.jsonl'), 300);
      // A pty nobody sized reports 0 x 0: the first run checks the display copes (80 x 24).
      for (const [i, size] of ['', 'stty cols 220 rows 40; '].entries()) {
        const args = runArgs(
          dir.file('in.jsonl'),
          dir.file(`out-${i}.jsonl`),
          '--price-input',
          '0.15',
          '--price-output',
          '0.6',
        );
        const command = `${size}"${process.execPath}" "${CLI}" ${args.map((a) => `"${a}"`).join(' ')}`;
        const { code, screen } = await inPty(command);
        expect(code).toBe(0);
        // Redrawn in place: erase-line and cursor-up sequences between frames.
        expect(screen).toContain(`${ESC}[2K${ESC}[1A`);
        const frames = screen.match(/volley\S* \d+\.\d% \|[^|]*\| \d+\/300 /g) ?? [];
        expect(frames.length).toBeGreaterThanOrEqual(3);
        expect(screen).toMatch(/req\/s/);
        expect(screen).toMatch(/\[\d\d:\d\d<(\d\d:\d\d|\?), /);
        if (size !== '') {
          // At 80 columns the counters after errors give way to the bar and rate when they must.
          expect(screen).toMatch(/cost \$\d/);
          expect(screen).toMatch(/in flight \d+/);
          expect(screen).toMatch(/retries \d+/);
          expect(screen).toMatch(/tok\/s in \S+ out \S+/);
        }
        expect(screen).toContain('volley summary');
        expect(screen).toMatch(/succeeded:\s+\S*300/);
        expect(screen).toMatch(/estimated cost:\s+\$\d/);
        expect(screen).toMatch(/latency:\s+p50 \d+ ms, p90 \d+ ms, p99 \d+ ms/);
      }
    },
    30_000,
  );

  it('prints plain progress lines with no escape codes when stderr is not a terminal', async () => {
    await using dir = await tempDir();
    await writeBatch(dir.file('in.jsonl'), 300);
    const result = await runCli(
      runArgs(dir.file('in.jsonl'), dir.file('out.jsonl'), '--progress-interval-ms', '200'),
      { TERM: 'xterm-256color' },
    );
    expect(result.code).toBe(0);
    expect(result.stderr).not.toContain(ESC);
    const lines = result.stderr
      .split('\n')
      .filter((line) => /^volley \d+\.\d% \d+\/300 /.test(line));
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(lines.at(-1)).toMatch(
      /\[\d\d:\d\d<(\d\d:\d\d|\?), \S+ req\/s\] .* errors 0 .* retries \d+ .* in flight \d+/,
    );
    expect(result.stderr).toMatch(/volley summary\n {2}status: +finished\n {2}total: +300/);
  });

  it('emits JSON events with --progress json, and a versioned summary with --json', async () => {
    await using dir = await tempDir();
    await writeBatch(dir.file('in.jsonl'), 300);
    const result = await runCli(
      runArgs(
        dir.file('in.jsonl'),
        dir.file('out.jsonl'),
        '--progress',
        'json',
        '--progress-interval-ms',
        '200',
        '--json',
        '--prices',
        await priceFile(dir.file('prices.json')),
      ),
    );
    expect(result.code).toBe(0);
    const events = result.stderr
      .trim()
      .split('\n')
      .map(
        (line) =>
          JSON.parse(line) as { type: string; version: number; done?: number; costUsd?: number },
      );
    expect(events.every((e) => e.version === 1)).toBe(true);
    const progress = events.filter((e) => e.type === 'progress');
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress.at(-1)).toMatchObject({ total: 300 });
    expect(events.at(-1)).toMatchObject({ type: 'summary', succeeded: 300 });
    const summary = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(summary).toMatchObject({
      version: 1,
      exitCode: 0,
      status: 'finished',
      total: 300,
      succeeded: 300,
      failed: 0,
      skipped: 0,
      pending: 0,
      retries: 0,
      extraBilledCalls: 0,
      byError: {},
    });
    expect(summary.latencyMs).toMatchObject({ p50: expect.any(Number), p99: expect.any(Number) });
    expect(summary.wallMs).toEqual(expect.any(Number));
    // 0.15 and 0.60 USD per million tokens, from the table's entry for the model.
    const cost = summary.costUsd as number;
    const expected =
      ((summary.promptTokens as number) * 0.15 + (summary.completionTokens as number) * 0.6) / 1e6;
    expect(cost).toBeCloseTo(expected, 6);
  });
});

async function priceFile(path: string): Promise<string> {
  const { writeFile } = await import('node:fs/promises');
  await writeFile(
    path,
    JSON.stringify({ 'volley-sim-1': { input: 0.15, output: 0.6 }, '*': { input: 9, output: 9 } }),
  );
  return path;
}
