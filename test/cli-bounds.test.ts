/**
 * Bounds said at start: `--threads` above the machine's sane maximum is a usage error (200 threads
 * took 12 s and 3.6 GB before a request was sent), and `--rpm`/`--tpm` that can never finish a
 * line within its deadline print one warning with the arithmetic (the lines then fail as before).
 */

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Simulator } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxThreads } from 'volley';
import { parseJsonl, runCli, tempDir, writeBatch } from './helpers.js';

describe('start-up bounds', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await createSimulator();
  });
  afterAll(() => sim.close());

  it('--threads above 4 × cores (hard max 64) is a usage error naming the limit, nothing sent', async () => {
    await using dir = await tempDir();
    await writeBatch(dir.file('in.jsonl'), 1);
    const { limit } = maxThreads();
    const before = sim.stats().requests;
    const result = await runCli([
      'run',
      dir.file('in.jsonl'),
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      sim.url,
      '--mode',
      'threads',
      '--threads',
      String(limit + 1),
      '--progress',
      'none',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`--threads`);
    expect(result.stderr).toContain(`must be at most ${limit} (4 × `);
    expect(result.stderr).toContain('hard maximum 64');
    expect(existsSync(dir.file('out.jsonl'))).toBe(false);
    expect(sim.stats().requests).toBe(before);
  });

  it('--rpm that cannot serve the lines in flight within --timeout-ms warns once, with the arithmetic', async () => {
    await using dir = await tempDir();
    await writeBatch(dir.file('in.jsonl'), 6);
    const result = await runCli([
      'run',
      dir.file('in.jsonl'),
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      sim.url,
      '--rpm',
      '1',
      '-c',
      '3',
      '--timeout-ms',
      '1500',
      '--progress',
      'none',
    ]);
    const warnings = result.stderr.split('\n').filter((line) => line.startsWith('warning: --rpm'));
    expect(warnings).toEqual([
      'warning: --rpm 1 (requests a minute) with 3 lines in flight at once (-c 3, of 6 lines): the last waits up to 3 min for its turn, past its --timeout-ms of 1.5 s; about 3 of every 3 will time out. To finish them, raise --timeout-ms to 180000',
    ]);
    // Only a warning: the lines that could not start in time fail as before, retryable.
    expect(result.code).toBe(1);
    const errors = parseJsonl(await readFile(dir.file('out.errors.jsonl'), 'utf8'));
    expect(errors.length).toBeGreaterThan(0);
    for (const record of errors) {
      expect(record.error).toMatchObject({ code: 'VOLLEY_ERR_TIMEOUT', retryable: true });
    }
  });
});
