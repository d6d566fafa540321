/**
 * The summary where people look: after an interrupt it prints the exact command that resumes;
 * `--quiet` drops the progress display but keeps the summary; JSON output has rounded numbers.
 */
import type { Simulator } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countLines, startCli, waitFor } from './cli-process.js';
import { runCli, tempDir, writeBatch } from './helpers.js';

let sim: Simulator;
beforeAll(async () => {
  sim = await createSimulator({ latency: { headersMs: 200 } });
});
afterAll(() => sim.close());

describe('the summary', () => {
  it('after Ctrl-C says the exact command that resumes, and that command finishes the run', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeBatch(input, 300);
    const args = ['run', input, '-o', output, '--base-url', sim.url, '--concurrency', '16'];
    const cli = startCli([...args, '--progress', 'plain', '--json']);
    await waitFor(async () => (await countLines(output)) >= 16);
    cli.child.kill('SIGINT');
    const result = await cli.exited;
    expect(result.code).toBe(130);
    const expected = `volley ${[...args, '--progress', 'plain', '--json'].join(' ')} --resume`;
    expect(result.stderr).toContain(`hint: to continue, run: ${expected}\n`);
    const summary = JSON.parse(result.stdout) as { resumeCommand: string; pending: number };
    expect(summary.pending).toBeGreaterThan(0);
    expect(summary.resumeCommand).toBe(expected);

    // The hint is a working command line.
    const words = expected.split(' ').slice(1);
    const resumed = await runCli(words);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).not.toContain('hint: to continue');
    expect(JSON.parse(resumed.stdout)).not.toHaveProperty('resumeCommand');
  }, 30_000);

  it('--quiet shows no progress or information lines, but the summary', async () => {
    await using dir = await tempDir();
    await writeBatch(dir.file('in.jsonl'), 40);
    const result = await runCli([
      'run',
      dir.file('in.jsonl'),
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      sim.url,
      '--progress-interval-ms',
      '50',
      '--quiet',
    ]);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/^volley summary\n {2}status: +finished\n/);
    expect(result.stderr).not.toMatch(/^volley \d/m);
    expect(result.stderr).not.toContain('40 valid');
  }, 30_000);

  it('rounds the numbers of --progress json events and of --json', async () => {
    await using dir = await tempDir();
    await writeBatch(dir.file('in.jsonl'), 200);
    const result = await runCli([
      'run',
      dir.file('in.jsonl'),
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      sim.url,
      '--concurrency',
      '32',
      '--progress',
      'json',
      '--progress-interval-ms',
      '100',
      '--price-input',
      '0.15',
      '--price-output',
      '0.6',
      '--json',
    ]);
    expect(result.code).toBe(0);
    // No float with more than 6 decimals anywhere (costs are kept to the micro-dollar).
    expect(`${result.stdout}${result.stderr}`).not.toMatch(/\d\.\d{7,}/);
    const events = result.stderr
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const progress = events.filter((e) => e.type === 'progress');
    expect(progress.length).toBeGreaterThanOrEqual(2);
    for (const event of progress) {
      expect(Number.isInteger(event.elapsedMs)).toBe(true);
      for (const key of ['reqPerSec', 'reqPerSecOverall', 'percent', 'completionTokensPerSec']) {
        const value = event[key];
        if (typeof value === 'number') expect(Math.round(value * 10) / 10).toBe(value);
      }
    }
    const summary = JSON.parse(result.stdout) as { wallMs: number; latencyMs: { p99: number } };
    expect(Number.isInteger(summary.wallMs)).toBe(true);
    expect(Number.isInteger(summary.latencyMs.p99)).toBe(true);
  }, 30_000);
});
