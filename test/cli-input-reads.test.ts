/**
 * The input is read once per pass (preflight, then sending) and each line is parsed once per
 * pass. The file check's 64 KiB sample used to be a third read: the preflight pass now starts
 * from the bytes the check read. Counted in the real CLI process by a preload that watches the
 * input file's reads and JSON.parse (test/fixtures/count-input-reads.mjs).
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Simulator } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir, writeBatch } from './helpers.js';

const PRELOAD = join(dirname(fileURLToPath(import.meta.url)), 'fixtures/count-input-reads.mjs');

let sim: Simulator;

beforeAll(async () => {
  sim = await createSimulator();
});
afterAll(() => sim.close());

interface Counts {
  opens: number;
  bytes: number;
  parses: number;
}

/** Runs the CLI on `input` (over 64 KiB, so the sample is not the whole file) and counts. */
async function counted(input: string, args: string[]): Promise<Counts & { size: number }> {
  const { size } = await stat(input);
  expect(size).toBeGreaterThan(64 * 1024);
  const out = `${input}.counts.json`;
  const result = await runCli(args, {
    NODE_OPTIONS: `--import ${PRELOAD}`,
    COUNT_INPUT: input,
    COUNT_OUT: out,
  });
  expect(result.code, result.stderr).toBe(0);
  return { ...(JSON.parse(await readFile(out, 'utf8')) as Counts), size };
}

describe('reading the input', () => {
  it('volley run reads the file twice and parses each line once per pass', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const lines = 2000; // about 250 KB: more than the 64 KiB sample
    await writeBatch(input, lines);
    const counts = await counted(input, [
      'run',
      input,
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      sim.url,
      '--progress',
      'none',
    ]);
    expect(counts.bytes).toBe(2 * counts.size);
    expect(counts.parses).toBe(2 * lines);
  });

  it('volley embed reads the file twice', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const lines = Array.from({ length: 3000 }, (_, i) =>
      JSON.stringify({ id: `t${i}`, text: `text number ${i} to embed` }),
    );
    await writeFile(input, `${lines.join('\n')}\n`);
    const counts = await counted(input, [
      'embed',
      input,
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      sim.url,
      '--model',
      'volley-sim-embed-1',
      '--progress',
      'none',
    ]);
    expect(counts.bytes).toBe(2 * counts.size);
    expect(counts.parses).toBe(2 * lines.length);
  });
});
