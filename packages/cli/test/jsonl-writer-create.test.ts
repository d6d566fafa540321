import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openJsonlWriter } from '../src/jsonl/writer.js';
import { useTempDir } from './helpers/temp-files.js';

const tempDir = useTempDir();

describe('openJsonlWriter files', () => {
  it('creates the file owner-only (0600) whatever the umask', async () => {
    const path = join(await tempDir(), 'out.jsonl');
    const previous = process.umask(0o000);
    try {
      const out = await openJsonlWriter(path);
      await out.close();
    } finally {
      process.umask(previous);
    }
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('writes one newline-terminated record per write and counts them', async () => {
    const path = join(await tempDir(), 'out.jsonl');
    const out = await openJsonlWriter(path);
    await out.write('{"a":1}');
    await out.write('{"b":"\u2028"}');
    expect(out.linesWritten).toBe(2);
    expect(out.path).toBe(path);
    await out.close();
    expect(await readFile(path, 'utf8')).toBe('{"a":1}\n{"b":"\u2028"}\n');
  });

  it('keeps every record whole under many concurrent writes and backpressure', async () => {
    const path = join(await tempDir(), 'many.jsonl');
    const out = await openJsonlWriter(path);
    const big = 'x'.repeat(10_000);
    await Promise.all(
      Array.from({ length: 2000 }, (_, i) => out.write(JSON.stringify({ i, big }))),
    );
    await out.close();
    const lines = (await readFile(path, 'utf8')).split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((l) => (JSON.parse(l) as { i: number }).i)).toEqual(
      Array.from({ length: 2000 }, (_, i) => i),
    );
  });

  it('close is idempotent and later writes reject with VOLLEY_ERR_OUTPUT_CLOSED', async () => {
    const out = await openJsonlWriter(join(await tempDir(), 'c.jsonl'));
    const first = out.close();
    expect(out.close()).toBe(first);
    await first;
    await expect(out.write('{}')).rejects.toMatchObject({ code: 'VOLLEY_ERR_OUTPUT_CLOSED' });
  });

  it('refuses a record containing a newline (it would tear the framing)', async () => {
    const out = await openJsonlWriter(join(await tempDir(), 'nl.jsonl'));
    await expect(out.write('{"a":1}\n{"b":2}')).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_INVALID_LINE',
    });
    await out.close();
  });

  it('sync() resolves once accepted lines are on disk', async () => {
    const path = join(await tempDir(), 's.jsonl');
    const out = await openJsonlWriter(path);
    await out.write('{"a":1}');
    await out.sync();
    expect(await readFile(path, 'utf8')).toBe('{"a":1}\n');
    await out.close();
  });

  it('appends to an existing file with append, keeping its content', async () => {
    const path = join(await tempDir(), 'resume.jsonl');
    await writeFile(path, '{"old":1}\n', { mode: 0o600 });
    const out = await openJsonlWriter(path, { append: true });
    await out.write('{"new":2}');
    await out.close();
    expect(await readFile(path, 'utf8')).toBe('{"old":1}\n{"new":2}\n');
  });

  it('truncates an existing file with overwrite and tightens its mode to 0600', async () => {
    const path = join(await tempDir(), 'over.jsonl');
    await writeFile(path, 'previous run\n', { mode: 0o644 });
    const out = await openJsonlWriter(path, { overwrite: true });
    await out.write('{"fresh":true}');
    await out.close();
    expect(await readFile(path, 'utf8')).toBe('{"fresh":true}\n');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('uses an existing empty file without overwrite', async () => {
    const path = join(await tempDir(), 'empty.jsonl');
    await writeFile(path, '');
    const out = await openJsonlWriter(path);
    await out.write('{}');
    await out.close();
    expect(await readFile(path, 'utf8')).toBe('{}\n');
  });

  it("writes '-' to the stdout stream without ending it", async () => {
    const { PassThrough } = await import('node:stream');
    const stdout = new PassThrough();
    let data = '';
    stdout.setEncoding('utf8').on('data', (chunk: string) => {
      data += chunk;
    });
    const out = await openJsonlWriter('-', { stdout });
    await out.write('{"a":1}');
    await out.close();
    expect(data).toBe('{"a":1}\n');
    expect(stdout.writableEnded).toBe(false);
  });
});
