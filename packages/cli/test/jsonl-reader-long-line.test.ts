import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import type { RawLine, ReaderStats } from '../src/jsonl/reader.js';
import { readJsonlLines } from '../src/jsonl/reader.js';
import { useTempDir, writeTemp } from './helpers/temp-files.js';

const tempDir = useTempDir();

function exposeGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

describe('readJsonlLines line cap', () => {
  it('skips a 50 MB line without buffering it and reads the next line', async () => {
    const path = join(await tempDir(), 'huge.jsonl');
    const handle = await open(path, 'w');
    await handle.write('{"a":1}\n{"prompt":"');
    const block = Buffer.alloc(1024 * 1024, 'x');
    for (let i = 0; i < 50; i++) await handle.write(block);
    await handle.write('"}\n{"b":2}\n');
    await handle.close();

    // Sample retained memory while the line streams past: stats.bytesRead is updated on every
    // chunk, so a setter on it runs mid-line. A forced GC makes the figure what is retained, not
    // garbage awaiting collection.
    const gc = exposeGc();
    gc();
    const retained = (): number => {
      gc();
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const baseline = retained();
    let peakGrowth = 0;
    let read = 0;
    let nextSample = 0;
    const stats = { lines: 0, blankLines: 0, issues: 0 } as ReaderStats;
    Object.defineProperty(stats, 'bytesRead', {
      get: () => read,
      set: (v: number) => {
        read = v;
        if (v >= nextSample) {
          nextSample += 5 * 1024 * 1024;
          peakGrowth = Math.max(peakGrowth, retained() - baseline);
        }
      },
    });
    const lines: RawLine[] = [];
    for await (const line of readJsonlLines(path, { maxLineBytes: 1024 * 1024, stats })) {
      lines.push(line);
    }
    const hugeBytes = 11 + 50 * 1024 * 1024 + 2;
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatchObject({
      lineNo: 2,
      offset: 8,
      bytes: hugeBytes,
      issue: { code: 'VOLLEY_INPUT_LINE_TOO_LONG', lineNo: 2, offset: 8 },
    });
    expect(lines[2]).toEqual({ lineNo: 3, offset: 8 + hugeBytes + 1, bytes: 7, text: '{"b":2}' });
    // Had the line been buffered, growth would be at least 50 MB.
    expect(read).toBeGreaterThan(50 * 1024 * 1024);
    expect(peakGrowth).toBeLessThan(8 * 1024 * 1024);
  });

  it('keeps a line of exactly maxLineBytes, with or without a CR, and refuses one byte more', async () => {
    const ok = `{"p":"${'x'.repeat(92)}"}`; // 100 bytes
    const tooLong = `{"p":"${'x'.repeat(93)}"}`; // 101 bytes
    const path = await writeTemp(await tempDir(), 'edge.jsonl', `${ok}\n${ok}\r\n${tooLong}\n`);
    const lines: RawLine[] = [];
    for await (const line of readJsonlLines(path, { maxLineBytes: 100 })) lines.push(line);
    expect(lines.map((l) => ('issue' in l ? l.issue.code : 'text'))).toEqual([
      'text',
      'text',
      'VOLLEY_INPUT_LINE_TOO_LONG',
    ]);
  });

  it('gives the too-long issue a short escaped snippet of the line start', async () => {
    const path = await writeTemp(
      await tempDir(),
      'snip.jsonl',
      `{"prompt":"\u001b[2J${'y'.repeat(5000)}"}\n`,
    );
    const lines: RawLine[] = [];
    for await (const line of readJsonlLines(path, { maxLineBytes: 1000 })) lines.push(line);
    const first = lines[0];
    expect(first !== undefined && 'issue' in first).toBe(true);
    if (first !== undefined && 'issue' in first) {
      expect(first.issue.snippet.startsWith('{"prompt":"\\x1b[2J')).toBe(true);
      expect(first.issue.snippet.length).toBeLessThanOrEqual(80);
    }
  });
});
