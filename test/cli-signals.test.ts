/**
 * Ctrl-C and SIGTERM: the first stops intake and drains what is in flight within the grace
 * period, writes the state and exits 130/143; a second aborts at once. Either way the run resumes
 * with nothing lost or doubled.
 */
import { readFile } from 'node:fs/promises';
import type { Simulator } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkBatchOutput } from './cli-batch-check.js';
import { countLines, startCli, waitFor } from './cli-process.js';
import { runCli, tempDir, writeBatch } from './helpers.js';

let sim: Simulator;

beforeAll(async () => {
  sim = await createSimulator({ latency: { headersMs: 250 } });
});
afterAll(() => sim.close());

function runArgs(input: string, output: string, ...extra: string[]): string[] {
  return [
    'run',
    input,
    '-o',
    output,
    '--base-url',
    sim.url,
    '--progress',
    'plain',
    '--concurrency',
    '16',
    '--json',
    ...extra,
  ];
}

interface Summary {
  exitCode: number;
  status: string;
  succeeded: number;
  failed: number;
  pending: number;
}

describe.each([
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const)('the first %s', (signal, exitCode) => {
  it(`drains the requests in flight, exits ${exitCode} within the grace period, and resumes`, async () => {
    await using dir = await tempDir();
    const count = 400;
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeBatch(input, count);
    const cli = startCli(runArgs(input, output, '--grace-ms', '5000'));
    await waitFor(async () => (await countLines(output)) >= 32);
    const sentAt = Date.now();
    cli.child.kill(signal);
    const result = await cli.exited;
    const tookMs = Date.now() - sentAt;
    expect(result.code).toBe(exitCode);
    // In-flight requests take 250 ms here: the drain is far inside the 5 s grace period.
    expect(tookMs).toBeLessThan(5000);
    expect(result.stderr).toContain(`${signal}: reading no more lines`);
    const summary = JSON.parse(result.stdout) as Summary;
    expect(summary).toMatchObject({ exitCode, status: 'interrupted', failed: 0 });
    expect(summary.pending).toBe(count - summary.succeeded);
    // Everything that was in flight finished and was written: nothing was aborted.
    expect(await countLines(output)).toBe(summary.succeeded);
    expect(await countLines(dir.file('out.errors.jsonl'))).toBe(0);
    const state = JSON.parse(await readFile(`${output}.volley-state.json`, 'utf8')) as {
      status: string;
      counts: { succeeded: number };
    };
    expect(state).toMatchObject({
      status: 'interrupted',
      counts: { succeeded: summary.succeeded },
    });

    const resumed = await runCli(runArgs(input, output, '--resume', '--concurrency', '200'));
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({
      succeeded: count - summary.succeeded,
      alreadyDone: summary.succeeded,
    });
    expect(await checkBatchOutput(count, output, dir.file('out.errors.jsonl'))).toMatchObject({
      lost: 0,
      duplicated: 0,
      torn: 0,
      mismatched: 0,
    });
  }, 30_000);
});

describe('interrupting a run with slow requests', () => {
  it('aborts at once on a second SIGINT; the aborted lines stay pending and resume', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeBatch(input, 40);
    sim.setOptions({ latency: { headersMs: 20_000 } });
    try {
      const cli = startCli(runArgs(input, output, '--grace-ms', '60000'));
      await waitFor(() => sim.stats().inFlight >= 16);
      cli.child.kill('SIGINT');
      await waitFor(() => cli.stderr().includes('reading no more lines'));
      const sentAt = Date.now();
      cli.child.kill('SIGINT');
      const result = await cli.exited;
      expect(Date.now() - sentAt).toBeLessThan(3000);
      expect(result.code).toBe(130);
      expect(result.stderr).toContain('SIGINT again: aborting');
      expect(JSON.parse(result.stdout)).toMatchObject({ status: 'interrupted', pending: 40 });
      expect(await countLines(output)).toBe(0);
      expect(await countLines(dir.file('out.errors.jsonl'))).toBe(0);
    } finally {
      sim.setOptions({ latency: { headersMs: 250 } });
    }
    const resumed = await runCli(runArgs(input, output, '--resume'));
    expect(resumed.code).toBe(0);
    expect(await checkBatchOutput(40, output, dir.file('out.errors.jsonl'))).toMatchObject({
      lost: 0,
      duplicated: 0,
    });
  }, 30_000);

  it('gives up on requests still in flight when the grace period ends', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeBatch(input, 20);
    sim.setOptions({ latency: { headersMs: 20_000 } });
    try {
      const cli = startCli(runArgs(input, output, '--grace-ms', '500'));
      await waitFor(() => sim.stats().inFlight >= 16);
      const sentAt = Date.now();
      cli.child.kill('SIGTERM');
      const result = await cli.exited;
      expect(Date.now() - sentAt).toBeLessThan(3000);
      expect(result.code).toBe(143);
      expect(result.stderr).toContain('grace period over');
      expect(JSON.parse(result.stdout)).toMatchObject({ pending: 20, failed: 0 });
    } finally {
      sim.setOptions({ latency: { headersMs: 250 } });
    }
  }, 30_000);
});
