/**
 * `volley embed` end to end: the real CLI in a child process against a simulator started in this
 * test process, with real files. Every vector is compared, element by element, with what the
 * simulator serves for its text (`simulatedEmbedding`).
 */

import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Simulator } from '@volley/sim';
import { createSimulator, simulatedEmbedding } from '@volley/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countLines, startCli, waitFor } from './cli-process.js';
import { parseJsonl, runCli, tempDir } from './helpers.js';

const MODEL = 'volley-sim-embed-1';

function text(i: number): string {
  return `passage ${i}: otters hold hands while they sleep so they do not drift apart`;
}

async function writeTexts(path: string, count: number, id = (i: number) => `doc-${i}`) {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) lines.push(JSON.stringify({ id: id(i), text: text(i) }));
  await writeFile(path, `${lines.join('\n')}\n`);
}

/** The ids file of a binary output, in row order. */
async function readIds(path: string): Promise<string[]> {
  return (await readFile(path, 'utf8'))
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as string);
}

/**
 * Parses a `.npy` file the way NumPy's `format.read_array_header_1_0` does, checking every rule
 * a reader relies on, and returns its shape and rows.
 */
function readNpy(file: Buffer): { shape: [number, number]; data: Float32Array } {
  expect(file.subarray(0, 6)).toEqual(Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]));
  expect([file[6], file[7]]).toEqual([1, 0]);
  const headerLength = file.readUInt16LE(8);
  const dataStart = 10 + headerLength;
  expect(dataStart % 64).toBe(0); // NumPy aligns the data to 64 bytes
  const header = file.toString('latin1', 10, dataStart);
  expect(header.endsWith('\n')).toBe(true);
  const match =
    /^\{'descr': '<f4', 'fortran_order': False, 'shape': \((\d+), (\d+)\), \} *\n$/.exec(header);
  expect(match).not.toBeNull();
  const shape: [number, number] = [Number(match?.[1]), Number(match?.[2])];
  expect(file.length - dataStart).toBe(shape[0] * shape[1] * 4);
  const copy = Buffer.from(file.subarray(dataStart)); // aligned copy for the Float32Array view
  return { shape, data: new Float32Array(copy.buffer, copy.byteOffset, shape[0] * shape[1]) };
}

/** Every row equals the simulator's vector for its id's text, element by element. */
function expectExactRows(
  ids: string[],
  rows: (row: number) => Float32Array,
  dimensions: number,
): void {
  ids.forEach((id, row) => {
    const expected = simulatedEmbedding(text(Number(id.slice(4))), MODEL, dimensions);
    const actual = rows(row);
    if (actual.length !== expected.length || actual.some((v, k) => v !== expected[k])) {
      throw new Error(`row ${row} (${id}) differs from what the server sent`);
    }
  });
}

describe('volley embed', () => {
  let sim: Simulator;

  beforeAll(async () => {
    sim = await createSimulator({
      faultFor: ({ body }) => {
        const input = (body as { input?: unknown }).input;
        return Array.isArray(input) && input.some((t) => String(t).includes('poison'))
          ? 'status-400-context-length'
          : undefined;
      },
    });
  });
  afterAll(() => sim.close());

  it('writes 100,000 vectors to .npy, killed twice with kill -9 and resumed: none lost, none duplicated, every element exact', async () => {
    await using dir = await tempDir();
    const count = 100_000;
    const dims = 32;
    await writeTexts(dir.file('in.jsonl'), count);
    sim.setOptions({ latency: { headersMs: 3 } });
    const args = [
      'embed',
      dir.file('in.jsonl'),
      '-o',
      dir.file('vectors.npy'),
      '--base-url',
      sim.url,
      '--model',
      MODEL,
      '--dimensions',
      String(dims),
      '--batch-size',
      '50',
      '--concurrency',
      '8',
      '--progress',
      'none',
    ];
    try {
      let kills = 0;
      for (const target of [20_000, 55_000]) {
        const cli = startCli(kills === 0 ? args : [...args, '--resume']);
        await waitFor(
          async () => (await countLines(dir.file('vectors.ids.jsonl'))) >= target,
          60_000,
        );
        cli.child.kill('SIGKILL');
        const result = await cli.exited;
        if (result.signal === 'SIGKILL') kills++;
      }
      expect(kills).toBe(2);
    } finally {
      sim.setOptions({ latency: undefined });
    }
    const last = await runCli([...args, '--resume', '--json']);
    expect(last.code).toBe(0);
    const summary = JSON.parse(last.stdout) as {
      alreadyDone: number;
      succeeded: number;
      vectors: { rows: number; dimensions: number };
    };
    expect(summary.alreadyDone + summary.succeeded).toBe(count);
    expect(summary.vectors).toMatchObject({ rows: count, dimensions: dims });

    const ids = await readIds(dir.file('vectors.ids.jsonl'));
    expect(ids).toHaveLength(count);
    expect(new Set(ids).size).toBe(count);
    const npy = readNpy(await readFile(dir.file('vectors.npy')));
    expect(npy.shape).toEqual([count, dims]);
    expectExactRows(ids, (row) => npy.data.subarray(row * dims, (row + 1) * dims), dims);
    expect(await stat(dir.file('vectors.errors.jsonl'))).toMatchObject({ size: 0 });
  }, 180_000);

  it.each(['async', 'threads'] as const)(
    'writes JSONL whose numbers give back the exact float32 vectors (%s mode), from Batch lines and plain text',
    async (mode) => {
      await using dir = await tempDir();
      const dims = 48;
      const batch: string[] = [];
      for (let i = 0; i < 300; i++) {
        batch.push(
          JSON.stringify({
            custom_id: `doc-${i}`,
            method: 'POST',
            url: '/v1/embeddings',
            body: { model: MODEL, input: text(i) },
          }),
        );
      }
      await writeFile(dir.file('batch.jsonl'), `${batch.join('\n')}\n`);
      const common = ['--dimensions', String(dims), '--mode', mode, '--progress', 'none'];
      const fromBatch = await runCli([
        'embed',
        dir.file('batch.jsonl'),
        '-o',
        dir.file('out.jsonl'),
        '--base-url',
        sim.url,
        '--model',
        MODEL,
        '--batch-size',
        '32',
        ...common,
      ]);
      expect(fromBatch.stderr).toBe('');
      expect(fromBatch.code).toBe(0);
      const records = parseJsonl(await readFile(dir.file('out.jsonl'), 'utf8')) as Array<{
        id: string;
        embedding: number[];
      }>;
      expect(records.map((r) => r.id).sort()).toEqual(batch.map((_, i) => `doc-${i}`).sort());
      expectExactRows(
        records.map((r) => r.id),
        (row) => Float32Array.from(records[row]?.embedding ?? []),
        dims,
      );

      // Plain text: the id of each text is its line number (blank lines count, and get none).
      await writeFile(dir.file('texts.txt'), `${text(0)}\r\n\n${text(1)}\n`);
      const fromText = await runCli([
        'embed',
        dir.file('texts.txt'),
        '-o',
        dir.file('texts.f32'),
        ...common,
      ]);
      expect(fromText.code).toBe(0);
      expect(await readIds(dir.file('texts.ids.jsonl'))).toEqual(['1', '3']);
      const raw = await readFile(dir.file('texts.f32'));
      expect(raw.length).toBe(2 * dims * 4);
      const rows = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
      expect(rows.subarray(0, dims)).toEqual(simulatedEmbedding(text(0), MODEL, dims));
      expect(rows.subarray(dims)).toEqual(simulatedEmbedding(text(1), MODEL, dims));
    },
    60_000,
  );

  it('refuses outputs that are the same file as each other or the input (the check volley run uses), writing nothing', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    await writeTexts(input, 3);
    const before = sim.requests.length;
    const cases: Array<{ output: string; extra: string[]; code: string; flags: RegExp }> = [
      {
        output: dir.file('v.jsonl'),
        extra: ['-e', dir.file('v.jsonl.volley-lock')],
        code: 'CONFLICT',
        flags: /-o\/--output \(its lock file\) names the same file as -e\/--errors/,
      },
      {
        output: dir.file('v.npy'),
        extra: ['--ids', join(dir.path, '.', 'v.npy')],
        code: 'CONFLICT',
        flags: /--ids names the same file as -o\/--output/,
      },
      {
        output: dir.file('v.jsonl'),
        extra: ['-e', input],
        code: 'SAME_AS_INPUT',
        flags: /-e\/--errors names the input file/,
      },
    ];
    for (const { output, extra, code, flags } of cases) {
      const result = await runCli([
        'embed',
        input,
        '-o',
        output,
        '--base-url',
        sim.url,
        '--model',
        MODEL,
        ...extra,
        '--json',
      ]);
      expect(result.code, extra.join(' ')).toBe(2);
      const error = JSON.parse(result.stdout) as { code: string; message: string };
      expect(error.code, extra.join(' ')).toBe(`VOLLEY_ERR_OUTPUT_${code}`);
      expect(error.message).toMatch(flags);
    }
    expect(sim.requests.length).toBe(before);
    expect(await readdir(dir.path)).toEqual(['in.jsonl']);
  });

  it('names the line and field of every bad line, embeds every good one, and --strict sends nothing', async () => {
    await using dir = await tempDir();
    const lines = [
      JSON.stringify({ id: 'doc-0', text: text(0) }),
      JSON.stringify({ id: 'doc-1' }),
      "{'id': 'doc-2', 'text': 'single quotes'}",
      JSON.stringify({ id: 'doc-0', text: 'again' }),
      JSON.stringify({ id: 7, text: text(7) }),
      JSON.stringify({ id: '', text: 'no id' }),
      JSON.stringify({
        custom_id: 'doc-9',
        method: 'POST',
        url: '/v1/embeddings',
        body: { model: MODEL, input: ['a', 'b'] },
      }),
      JSON.stringify({
        custom_id: 'doc-10',
        method: 'POST',
        url: '/v1/embeddings',
        body: { model: 'another-model', input: 'x' },
      }),
    ];
    await writeFile(dir.file('in.jsonl'), `${lines.join('\n')}\n`);
    const before = sim.requests.length;
    const strict = await runCli([
      'embed',
      dir.file('in.jsonl'),
      '-o',
      dir.file('strict.npy'),
      '--base-url',
      sim.url,
      '--model',
      MODEL,
      '--strict',
    ]);
    expect(strict.code).toBe(2);
    expect(strict.stderr).toContain('line 2: "text" must be a non-empty string');
    expect(sim.requests.length).toBe(before);

    const result = await runCli([
      'embed',
      dir.file('in.jsonl'),
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      sim.url,
      '--model',
      MODEL,
      '--dimensions',
      '8',
      '--progress',
      'none',
    ]);
    expect(result.code).toBe(1);
    const out = parseJsonl(await readFile(dir.file('out.jsonl'), 'utf8'));
    expect(out.map((r) => r.id).sort()).toEqual(['7', 'doc-0']);
    const errors = parseJsonl(await readFile(dir.file('out.errors.jsonl'), 'utf8')) as Array<{
      error: { code: string; line: number; message: string };
    }>;
    const byLine = Object.fromEntries(errors.map((e) => [e.error.line, e.error]));
    expect(byLine[2]).toMatchObject({ code: 'VOLLEY_INPUT_TEXT_INVALID' });
    expect(byLine[3]?.code).toBe('VOLLEY_INPUT_JSON_SINGLE_QUOTE');
    expect(byLine[4]).toMatchObject({ code: 'VOLLEY_INPUT_DUPLICATE_ID' });
    expect(byLine[6]?.message).toContain('"id" must be a non-empty string');
    expect(byLine[7]).toMatchObject({ code: 'VOLLEY_INPUT_MANY_INPUTS' });
    expect(byLine[8]).toMatchObject({ code: 'VOLLEY_INPUT_MODEL_MISMATCH' });
    expect(errors).toHaveLength(6);
  });

  it('sends a batch the server refused again one text at a time, so only the bad text fails', async () => {
    await using dir = await tempDir();
    const lines: string[] = [];
    for (let i = 0; i < 200; i++) {
      lines.push(JSON.stringify({ id: `doc-${i}`, text: i === 77 ? 'poison pill' : text(i) }));
    }
    await writeFile(dir.file('in.jsonl'), `${lines.join('\n')}\n`);
    const result = await runCli([
      'embed',
      dir.file('in.jsonl'),
      '-o',
      dir.file('out.npy'),
      '--base-url',
      sim.url,
      '--model',
      MODEL,
      '--dimensions',
      '16',
      '--batch-size',
      '50',
      '--progress',
      'none',
      '--json',
    ]);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ succeeded: 199, failed: 1 });
    const ids = await readIds(dir.file('out.ids.jsonl'));
    expect(ids).toHaveLength(199);
    expect(ids).not.toContain('doc-77');
    const errors = parseJsonl(await readFile(dir.file('out.errors.jsonl'), 'utf8'));
    expect(errors).toMatchObject([
      { custom_id: 'doc-77', error: { status: 400, retryable: false, line: 78 } },
    ]);
  });

  it('keeps transient failures for --resume, which embeds them and drops their error records', async () => {
    await using dir = await tempDir();
    await writeTexts(dir.file('in.jsonl'), 400);
    const args = [
      'embed',
      dir.file('in.jsonl'),
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      sim.url,
      '--model',
      MODEL,
      '--dimensions',
      '8',
      '--batch-size',
      '20',
      '--max-retries',
      '0',
      '--progress',
      'none',
      '--json',
    ];
    sim.setOptions({ faults: { rate: 0.3, kinds: { 'status-500': 1 } } });
    let first: Awaited<ReturnType<typeof runCli>>;
    try {
      first = await runCli(args);
    } finally {
      sim.setOptions({ faults: undefined });
    }
    expect(first.code).toBe(1);
    const failed = (JSON.parse(first.stdout) as { failed: number }).failed;
    expect(failed).toBeGreaterThan(0);

    const changed = await runCli([...args, '--resume', '--dimensions', '16']);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toContain('configuration changed');

    // The same outputs belong to an embed run: volley run must not resume them.
    const asRun = await runCli([
      'run',
      dir.file('in.jsonl'),
      '-o',
      dir.file('out.jsonl'),
      '--resume',
    ]);
    expect(asRun.code).toBe(2);
    expect(asRun.stderr).toContain('written by volley embed');
    // ...under its own code: the configuration did not change, the command did.
    const asRunJson = await runCli([
      'run',
      dir.file('in.jsonl'),
      '-o',
      dir.file('out.jsonl'),
      '--resume',
      '--json',
    ]);
    expect(asRunJson.code).toBe(2);
    expect(JSON.parse(asRunJson.stdout)).toMatchObject({ code: 'VOLLEY_ERR_RESUME_WRONG_COMMAND' });

    const second = await runCli([...args, '--resume']);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ succeeded: failed, failed: 0 });
    const ids = parseJsonl(await readFile(dir.file('out.jsonl'), 'utf8')).map((r) => r.id);
    expect(new Set(ids).size).toBe(400);
    expect(ids).toHaveLength(400);
    expect(await readFile(dir.file('out.errors.jsonl'), 'utf8')).toBe('');
  });

  it('stops reading on SIGINT, exits 130, and --resume finishes the rest', async () => {
    await using dir = await tempDir();
    await writeTexts(dir.file('in.jsonl'), 5_000);
    const args = [
      'embed',
      dir.file('in.jsonl'),
      '-o',
      dir.file('out.npy'),
      '--base-url',
      sim.url,
      '--model',
      MODEL,
      '--dimensions',
      '8',
      '--batch-size',
      '10',
      '--concurrency',
      '2',
      '--progress',
      'none',
    ];
    sim.setOptions({ latency: { headersMs: 5 } });
    try {
      const cli = startCli(args);
      await waitFor(async () => (await countLines(dir.file('out.ids.jsonl'))) >= 200);
      cli.child.kill('SIGINT');
      const result = await cli.exited;
      expect(result.code).toBe(130);
    } finally {
      sim.setOptions({ latency: undefined });
    }
    const rest = await runCli([...args, '--resume']);
    expect(rest.code).toBe(0);
    const ids = await readIds(dir.file('out.ids.jsonl'));
    expect(ids).toHaveLength(5_000);
    expect(new Set(ids).size).toBe(5_000);
    const npy = readNpy(await readFile(dir.file('out.npy')));
    expect(npy.shape).toEqual([5_000, 8]);
    expectExactRows(ids, (row) => npy.data.subarray(row * 8, (row + 1) * 8), 8);
  }, 60_000);
});
