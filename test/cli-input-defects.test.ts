/**
 * Input defects through the real CLI against the simulator: numbers that JSON.parse turns into
 * Infinity, placeholder ids that could name another line, and custom_ids whose hashes collide.
 */

import { readFile, writeFile } from 'node:fs/promises';
import type { Simulator } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchLine, parseJsonl, runCli, tempDir } from './helpers.js';

interface OutputLine {
  custom_id: string;
  response: { status_code: number } | null;
  error: { code: string; message: string; line?: number } | null;
}

let sim: Simulator;

beforeAll(async () => {
  sim = await createSimulator();
});
afterAll(() => sim.close());

async function run(input: string, out: string, ...extra: string[]) {
  return runCli([
    'run',
    input,
    '-o',
    out,
    '--base-url',
    sim.url,
    '--progress',
    'none',
    '--json',
    ...extra,
  ]);
}

async function records(path: string): Promise<OutputLine[]> {
  return parseJsonl(await readFile(path, 'utf8').catch(() => '')) as unknown as OutputLine[];
}

describe('volley run on numbers beyond the double range', () => {
  it('refuses a line with "temperature": 1e400 instead of sending null, naming line and field', async () => {
    await using dir = await tempDir();
    const overflow = batchLine(1).replace('"max_tokens":24', '"max_tokens":24,"temperature":1e400');
    expect(overflow).toContain('1e400');
    await writeFile(dir.file('in.jsonl'), `${batchLine(0)}\n${overflow}\n${batchLine(2)}\n`);
    const before = sim.stats().requests;
    const result = await run(dir.file('in.jsonl'), dir.file('out.jsonl'));
    expect(result.stderr).not.toMatch(/\n\s+at \S+/);
    expect(result.code).toBe(1);
    expect(sim.stats().requests - before).toBe(2);
    const results = await records(dir.file('out.jsonl'));
    expect(results.map((r) => r.custom_id).sort()).toEqual(['req-0', 'req-2']);
    const errors = await records(dir.file('out.errors.jsonl'));
    expect(errors).toHaveLength(1);
    expect(errors[0]?.custom_id).toBe('req-1');
    expect(errors[0]?.error?.code).toBe('VOLLEY_INPUT_JSON_NUMBER_OUT_OF_RANGE');
    expect(errors[0]?.error?.line).toBe(2);
    expect(errors[0]?.error?.message).toMatch(/^line 2: "body\.temperature": number 1e400 /);
  });
});
