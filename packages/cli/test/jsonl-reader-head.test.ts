import { describe, expect, it } from 'vitest';
import type { ReaderStats } from '../src/jsonl/reader.js';
import { inspectInput } from '../src/jsonl/reader.js';
import { readAll, useTempDir, writeTemp } from './helpers/temp-files.js';

const tempDir = useTempDir();

const stats = (): ReaderStats => ({ lines: 0, blankLines: 0, issues: 0, bytesRead: 0 });

describe('readJsonlLines with the head the file check read', () => {
  it('frames the same lines, offsets and counts as a read from the start', async () => {
    // A BOM, a multi-byte character split by the head's end, a blank line, a last line without LF.
    const content = `\uFEFF{"a":1}\n{"b":"é${'x'.repeat(70_000)}"}\n\n{"c":3}`;
    const path = await writeTemp(await tempDir(), 'in.jsonl', content);
    const whole = stats();
    const expected = await readAll(path, { stats: whole });
    const { issue, head } = await inspectInput(path);
    expect(issue).toBeUndefined();
    expect(head?.length).toBe(64 * 1024);
    for (const cut of [1, 9, 13, 14, head?.length ?? 0]) {
      const fromHead = stats();
      const lines = await readAll(path, { stats: fromHead, head: head?.subarray(0, cut) });
      expect(lines).toEqual(expected);
      expect(fromHead).toEqual(whole);
    }
  });

  it('hands over the whole of a small file, and nothing with a problem', async () => {
    const dir = await tempDir();
    const small = await writeTemp(dir, 'small.jsonl', '{"a":1}\n');
    expect((await inspectInput(small)).head?.toString()).toBe('{"a":1}\n');
    const gzip = await writeTemp(dir, 'in.jsonl.gz', Buffer.from([0x1f, 0x8b, 8, 0, 0, 0]));
    const found = await inspectInput(gzip);
    expect(found.issue?.code).toBe('VOLLEY_INPUT_FILE_GZIP');
    expect(found.head).toBeUndefined();
  });
});
