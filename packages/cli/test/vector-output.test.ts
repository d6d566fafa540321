import { appendFile, readFile, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NPY_HEADER_BYTES, npyHeader, parseNpyHeader } from '../src/embed/npy.js';
import type { VectorFormat } from '../src/embed/vector-output.js';
import { loadVectorOutput, openVectorSink, vectorPaths } from '../src/embed/vector-output.js';
import { createFinishedSet, RecordKind } from '../src/run/finished-set.js';
import { useTempDir } from './helpers/temp-files.js';

const tempDir = useTempDir();

function vector(seed: number, dims: number): Float32Array {
  return Float32Array.from({ length: dims }, (_, k) => Math.sin(seed * 31 + k) / 3);
}

async function writeRows(format: VectorFormat, dir: string, count: number, dims: number) {
  const paths = vectorPaths(join(dir, `v.${format === 'f32' ? 'f32' : format}`), format, {});
  const sink = await openVectorSink({
    paths,
    format,
    dimensions: undefined,
    rows: 0,
    resuming: false,
    overwrite: false,
  });
  for (let i = 0; i < count; i++) await sink.write(`id-${i}`, vector(i, dims));
  await sink.close();
  return paths;
}

describe('npy header', () => {
  it('is 128 bytes, version 1.0, 64-byte aligned, and parses back', () => {
    const header = npyHeader(1_000_000, 1536);
    expect(header.length).toBe(NPY_HEADER_BYTES);
    expect(header.readUInt16LE(8) + 10).toBe(128);
    expect(header.toString('latin1', 10)).toMatch(
      /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(1000000, 1536\), \} +\n$/,
    );
    expect(parseNpyHeader(header)).toEqual({ rows: 1_000_000, dimensions: 1536 });
    expect(parseNpyHeader(header.subarray(0, 100))).toBeUndefined();
  });
});

describe('loadVectorOutput', () => {
  it('keeps only rows whose vector and id are both whole, and cuts the rest (npy)', async () => {
    const dir = await tempDir();
    const paths = await writeRows('npy', dir, 10, 4);
    // A kill between the two files: half a row more in one, two ids more in the other.
    await appendFile(paths.output, Buffer.alloc(8));
    await appendFile(paths.ids as string, '"id-10"\n"id-11"\n"id-1');
    const finished = createFinishedSet();
    const state = await loadVectorOutput(paths, 'npy', undefined, finished);
    expect(state).toMatchObject({ rows: 10, dimensions: 4 });
    expect((await stat(paths.output)).size).toBe(NPY_HEADER_BYTES + 10 * 16);
    expect((await readFile(paths.ids as string, 'utf8')).split('\n')).toHaveLength(11);
    expect(finished.kindOf('id-9')).toBe(RecordKind.SUCCESS);
    expect(finished.kindOf('id-10')).toBe(0);
  });

  it('drops ids whose rows never reached the file (f32, dimensions from the state file)', async () => {
    const dir = await tempDir();
    const paths = await writeRows('f32', dir, 6, 3);
    const bytes = await readFile(paths.output);
    await truncate(paths.output, bytes.length - 2 * 12 - 5);
    const finished = createFinishedSet();
    const state = await loadVectorOutput(paths, 'f32', 3, finished);
    expect(state.rows).toBe(3);
    expect((await stat(paths.output)).size).toBe(3 * 12);
    expect(await readFile(paths.ids as string, 'utf8')).toBe('"id-0"\n"id-1"\n"id-2"\n');
    expect(finished.kindOf('id-3')).toBe(0);
  });

  it('resumes a sink after the kept rows and rewrites the header count', async () => {
    const dir = await tempDir();
    const paths = await writeRows('npy', dir, 3, 2);
    const finished = createFinishedSet();
    const kept = await loadVectorOutput(paths, 'npy', undefined, finished);
    const sink = await openVectorSink({
      paths,
      format: 'npy',
      dimensions: kept.dimensions,
      rows: kept.rows,
      resuming: true,
      overwrite: false,
    });
    expect(sink.problemWith(new Float32Array(3))).toContain('3 dimensions');
    await sink.write('id-3', vector(3, 2));
    await sink.close();
    const file = await readFile(paths.output);
    expect(parseNpyHeader(file)).toEqual({ rows: 4, dimensions: 2 });
    const rows = new Float32Array(file.buffer.slice(file.byteOffset + NPY_HEADER_BYTES));
    expect(rows.subarray(6, 8)).toEqual(vector(3, 2));
  });
});
