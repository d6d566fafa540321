/**
 * Input defects through the real CLI against the simulator: numbers that JSON.parse turns into
 * Infinity, placeholder ids that could name another line, and custom_ids whose hashes collide.
 */

import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import type { Simulator } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fnvCollidingIds } from '../packages/cli/test/helpers/hash-collisions.js';
import { startCli } from './cli-process.js';
import type { CliResult } from './helpers.js';
import { batchLine, CLI, parseJsonl, runCli, tempDir } from './helpers.js';

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

describe('volley run on lines without a valid custom_id', () => {
  it.each(['a file', 'standard input'])(
    'writes their records under a placeholder no real custom_id can take (%s)',
    async (source) => {
      await using dir = await tempDir();
      const line = (index: number, customId: unknown) =>
        JSON.stringify({ ...JSON.parse(batchLine(index)), custom_id: customId });
      const convenience = JSON.stringify({
        model: 'volley-sim-1',
        prompt: 'otters',
        max_tokens: 8,
      });
      const lines = [
        line(1, undefined), // 1: no custom_id
        line(2, 'line-1'), // 2: a real id equal to line 1's placeholder under the old scheme
        line(3, 'line-4'), // 3: a real id equal to line 4's placeholder under the old scheme
        line(4, 42), // 4: custom_id not a string
        line(5, 'line-6'), // 5: a real id equal to line 6's implicit id
        convenience, // 6: implicit id line-6, already taken: a duplicate
        line(7, '#line-3'), // 7: a real id of the reserved placeholder form
      ];
      const text = `${lines.join('\n')}\n`;
      let result: CliResult;
      if (source === 'a file') {
        await writeFile(dir.file('in.jsonl'), text);
        result = await run(dir.file('in.jsonl'), dir.file('out.jsonl'));
      } else {
        const args = ['run', '-', '-o', dir.file('out.jsonl'), '--base-url', sim.url];
        result = await startCli([...args, '--progress', 'none', '--json'], { stdin: text }).exited;
      }
      expect(result.code).toBe(1);
      const results = await records(dir.file('out.jsonl'));
      const errors = await records(dir.file('out.errors.jsonl'));
      expect(results.map((r) => r.custom_id).sort()).toEqual(['line-1', 'line-4', 'line-6']);
      expect(errors.map((e) => [e.custom_id, e.error?.code, e.error?.line]).sort()).toEqual([
        ['#line-1', 'VOLLEY_INPUT_CUSTOM_ID_MISSING', 1],
        ['#line-4', 'VOLLEY_INPUT_CUSTOM_ID_NOT_STRING', 4],
        ['#line-6', 'VOLLEY_INPUT_DUPLICATE_CUSTOM_ID', 6],
        ['#line-7', 'VOLLEY_INPUT_CUSTOM_ID_RESERVED', 7],
      ]);
      // Each custom_id names one line's record: none is both a success and an error.
      const succeeded = new Set(results.map((r) => r.custom_id));
      expect(errors.filter((e) => succeeded.has(e.custom_id))).toEqual([]);
    },
  );

  it('reports a real id equal to an earlier line’s implicit id as a duplicate', async () => {
    await using dir = await tempDir();
    const convenience = JSON.stringify({ model: 'volley-sim-1', prompt: 'otters', max_tokens: 8 });
    const real = JSON.stringify({ ...JSON.parse(batchLine(2)), custom_id: 'line-1' });
    await writeFile(dir.file('in.jsonl'), `${convenience}\n${real}\n`);
    const result = await run(dir.file('in.jsonl'), dir.file('out.jsonl'));
    expect(result.code).toBe(1);
    const results = await records(dir.file('out.jsonl'));
    const errors = await records(dir.file('out.errors.jsonl'));
    expect(results.map((r) => r.custom_id)).toEqual(['line-1']);
    expect(errors.map((e) => [e.custom_id, e.error?.code, e.error?.line])).toEqual([
      ['line-1', 'VOLLEY_INPUT_DUPLICATE_CUSTOM_ID', 2],
    ]);
  });
});

describe('volley embed on lines without a valid id', () => {
  it('writes their records under a placeholder no real id can take', async () => {
    await using dir = await tempDir();
    const lines = [
      JSON.stringify({ text: 'no id' }), // 1: no id
      JSON.stringify({ id: 'line-1', text: 'a real id equal to the old placeholder of line 1' }),
      JSON.stringify({ id: '#line-1', text: 'a real id of the reserved form' }), // 3
      "{'id': 'x', 'text': 'single quotes'}", // 4
    ];
    await writeFile(dir.file('in.jsonl'), `${lines.join('\n')}\n`);
    const result = await runCli([
      'embed',
      dir.file('in.jsonl'),
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      sim.url,
      '--model',
      'volley-sim-embed-1',
      '--progress',
      'none',
    ]);
    expect(result.code).toBe(1);
    const out = parseJsonl(await readFile(dir.file('out.jsonl'), 'utf8'));
    expect(out.map((r) => r.id)).toEqual(['line-1']);
    const errors = await records(dir.file('out.errors.jsonl'));
    expect(errors.map((e) => [e.custom_id, e.error?.code, e.error?.line]).sort()).toEqual([
      ['#line-1', 'VOLLEY_INPUT_ID_INVALID', 1],
      ['#line-3', 'VOLLEY_INPUT_ID_INVALID', 3],
      ['#line-4', 'VOLLEY_INPUT_JSON_SINGLE_QUOTE', 4],
    ]);
  });
});

describe('volley run --resume with custom_ids whose 64-bit hashes collide', () => {
  // Equal under the unkeyed 64-bit hashPair the finished set once used (see
  // packages/cli/test/helpers/hash-collisions.ts).
  const X =
    'req-GihyQHHvRtAp69yTQuDieXP8hQlK4iurpdGl7cN9P_q_Hjf5-QaeM26SMAymqtUc69ylLxJgeVUdulvKsE3hzUFe0m';
  const Y =
    'req-GihyQuKrp2YV3chTQuDieXP8hqVSoZurpdGl7cN9o1TghWGTlqaeM26SMAym0SkwT9ylLxFx3c-dulvKsE3hzZpg4z';
  const line = (index: number, customId: string) =>
    JSON.stringify({ ...JSON.parse(batchLine(index)), custom_id: customId });

  it('resumes a finished run without a false conflict', async () => {
    await using dir = await tempDir();
    await writeFile(dir.file('in.jsonl'), `${line(0, X)}\n${line(1, Y)}\n`);
    const first = await run(dir.file('in.jsonl'), dir.file('out.jsonl'));
    expect(first.code).toBe(0);
    const before = sim.stats().requests;
    const again = await run(dir.file('in.jsonl'), dir.file('out.jsonl'), '--resume');
    expect(again.stderr).not.toMatch(/repeat|cannot resume/);
    expect(again.code).toBe(0);
    expect(sim.stats().requests).toBe(before);
    const results = await records(dir.file('out.jsonl'));
    expect(results.map((r) => r.custom_id).sort()).toEqual([X, Y].sort());
  });

  it('sends a line added since with --force-resume instead of skipping it', async () => {
    await using dir = await tempDir();
    await writeFile(dir.file('in.jsonl'), `${line(0, X)}\n`);
    expect((await run(dir.file('in.jsonl'), dir.file('out.jsonl'))).code).toBe(0);
    await writeFile(dir.file('in.jsonl'), `${line(0, X)}\n${line(1, Y)}\n`);
    const before = sim.stats().requests;
    const result = await run(dir.file('in.jsonl'), dir.file('out.jsonl'), '--force-resume');
    expect(result.code).toBe(0);
    expect(sim.stats().requests - before).toBe(1);
    const results = await records(dir.file('out.jsonl'));
    expect(results.map((r) => r.custom_id).sort()).toEqual([X, Y].sort());
  });

  it('sends a line added since with --resume instead of refusing', async () => {
    await using dir = await tempDir();
    await writeFile(dir.file('in.jsonl'), `${line(0, X)}\n`);
    expect((await run(dir.file('in.jsonl'), dir.file('out.jsonl'))).code).toBe(0);
    await writeFile(dir.file('in.jsonl'), `${line(0, X)}\n${line(1, Y)}\n`);
    const before = sim.stats().requests;
    const result = await run(dir.file('in.jsonl'), dir.file('out.jsonl'), '--resume');
    expect(result.stderr).not.toMatch(/cannot resume/);
    expect(result.code).toBe(0);
    expect(sim.stats().requests - before).toBe(1);
    const results = await records(dir.file('out.jsonl'));
    expect(results.map((r) => r.custom_id).sort()).toEqual([X, Y].sort());
  });
});

describe('volley run on 65,536 custom_ids crafted to share one unkeyed hash', () => {
  /** The CLI, stopped (SIGTERM) if it runs longer than `ms`. */
  function runWithin(ms: number, args: string[]): Promise<CliResult> {
    return new Promise((resolvePromise, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], {
        env: { PATH: process.env.PATH ?? '' },
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: ms,
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.on('error', reject);
      child.on('close', (code, signal) => resolvePromise({ code, signal, stdout, stderr }));
    });
  }

  it('checks them for duplicates in linear time', async () => {
    await using dir = await tempDir();
    const ids = fnvCollidingIds(65_536);
    const lines = ids.map((id) => JSON.stringify({ custom_id: id, prompt: 'x', max_tokens: 1 }));
    lines.push(lines[0] as string); // one real duplicate, still found
    await writeFile(dir.file('in.jsonl'), `${lines.join('\n')}\n`);
    // About 2 s here; with the unkeyed hash the duplicate check alone took minutes (16,384 such
    // ids: 12 s, growing with the square).
    const started = performance.now();
    const result = await runWithin(30_000, [
      'run',
      dir.file('in.jsonl'),
      '--dry-run',
      '--model',
      'volley-sim-1',
      '--json',
      '--progress',
      'none',
    ]);
    // At the limit the CLI gets SIGTERM, which it handles (so no signal shows): check the time.
    expect(performance.now() - started).toBeLessThan(30_000);
    expect(result.signal).toBeNull();
    expect(result.stderr).not.toMatch(/\n\s+at \S+/);
    expect(result.stdout).toMatch(/"duplicates":\s*1\b/);
  }, 40_000);
});
