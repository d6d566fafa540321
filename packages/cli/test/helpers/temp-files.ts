import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import type { RawLine, ReadJsonlOptions } from '../../src/jsonl/reader.js';
import { readJsonlLines } from '../../src/jsonl/reader.js';

/** A fresh directory under the OS temp dir, removed after each test of the calling file. */
export function useTempDir(): () => Promise<string> {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), 'volley-cli-test-'));
    dirs.push(dir);
    return dir;
  };
}

/** Writes `content` to `name` in `dir` and returns the path. */
export async function writeTemp(
  dir: string,
  name: string,
  content: string | Uint8Array,
): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

/** Reads every line of a source into an array. */
export async function readAll(source: string, options?: ReadJsonlOptions): Promise<RawLine[]> {
  const lines: RawLine[] = [];
  for await (const line of readJsonlLines(source, options)) lines.push(line);
  return lines;
}
