/**
 * Regression: with `ulimit -n 256` and `-c 300`, connects failing with EMFILE were counted as
 * lost connections: 588 lines failed and the summary claimed 4,529 extra billed calls, although
 * nothing had been sent. A local resource error at connect is a not-sent failure: retried with
 * backoff, never billed, and a line that still fails says what to do about it.
 */

import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { Simulator } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, type CliResult, parseJsonl, tempDir, writeBatch } from './helpers.js';

const CLEAR_MESSAGE =
  'too many open files on this machine (EMFILE): lower --concurrency or raise ulimit -n';

/** Runs the built CLI under a file-descriptor limit (`ulimit -n`), in a shell that then execs node. */
function runCliWithFdLimit(fdLimit: number, args: string[]): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const quoted = [process.execPath, CLI, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`);
    const child = spawn('bash', ['-c', `ulimit -n ${fdLimit} && exec ${quoted.join(' ')}`], {
      env: { PATH: process.env.PATH ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({ code, signal, stdout, stderr }));
  });
}

describe('EMFILE at connect', () => {
  let sim: Simulator;

  beforeAll(async () => {
    // Slow enough answers that 300 connections are open at once (the client's limit is 200).
    sim = await createSimulator({ latency: { headersMs: 150 } });
  });
  afterAll(() => sim.close());

  it('is not billed: lines succeed, or fail retryable with the clear message, and nothing is sent twice', async () => {
    await using dir = await tempDir();
    const count = 900;
    await writeBatch(dir.file('in.jsonl'), count);
    const out = dir.file('out.jsonl');
    const before = sim.stats().requests;
    const result = await runCliWithFdLimit(200, [
      'run',
      dir.file('in.jsonl'),
      '-o',
      out,
      '--base-url',
      sim.url,
      '--mode',
      'async',
      '-c',
      '300',
      '--progress',
      'none',
      '--json',
    ]);
    const summary = JSON.parse(result.stdout) as {
      succeeded: number;
      failed: number;
      pending: number;
      retries: number;
      extraBilledCalls: number;
    };
    // The limit did bite: attempts failed at connect and were retried.
    expect(summary.retries).toBeGreaterThan(0);
    expect(summary.extraBilledCalls).toBe(0);
    expect(summary.succeeded + summary.failed + summary.pending).toBe(count);
    // Every request that reached the server was a line's one and only send.
    expect(sim.stats().requests - before).toBe(summary.succeeded);
    expect((await readFile(out, 'utf8')).split('\n').length - 1).toBe(summary.succeeded);
    const errors = parseJsonl(await readFile(dir.file('out.errors.jsonl'), 'utf8').catch(() => ''));
    expect(errors).toHaveLength(summary.failed);
    for (const record of errors) {
      expect(record.error).toMatchObject({ retryable: true });
      expect((record.error as { message: string }).message).toContain(CLEAR_MESSAGE);
    }
  }, 60_000);
});
