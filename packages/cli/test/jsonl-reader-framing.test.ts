import { describe, expect, it } from 'vitest';
import type { RawTextLine, ReaderStats } from '../src/jsonl/reader.js';
import { readAll, useTempDir, writeTemp } from './helpers/temp-files.js';

const tempDir = useTempDir();

function texts(lines: readonly unknown[]): string[] {
  return (lines as RawTextLine[]).map((l) => l.text);
}

describe('readJsonlLines framing', () => {
  it('yields each LF-terminated line with its number, byte offset and byte length', async () => {
    const path = await writeTemp(await tempDir(), 'a.jsonl', '{"a":1}\n{"b":"é"}\n');
    const lines = await readAll(path);
    expect(lines).toEqual([
      { lineNo: 1, offset: 0, bytes: 7, text: '{"a":1}' },
      { lineNo: 2, offset: 8, bytes: 10, text: '{"b":"é"}' },
    ]);
  });

  it('strips one trailing CR from CRLF lines and keeps offsets in bytes', async () => {
    const path = await writeTemp(await tempDir(), 'crlf.jsonl', '{"a":1}\r\n{"b":2}\r\n');
    const lines = (await readAll(path)) as RawTextLine[];
    expect(texts(lines)).toEqual(['{"a":1}', '{"b":2}']);
    expect(lines.map((l) => [l.offset, l.bytes])).toEqual([
      [0, 8],
      [9, 8],
    ]);
  });

  it('treats a CR-only file as one line (inspectInputFile refuses it up front)', async () => {
    const path = await writeTemp(await tempDir(), 'cr.jsonl', '{"a":1}\r{"b":2}\r{"c":3}');
    const lines = await readAll(path);
    expect(lines).toHaveLength(1);
    expect(texts(lines)).toEqual(['{"a":1}\r{"b":2}\r{"c":3}']);
  });

  it('reports a CR-only file over the line cap as LINE_TOO_LONG', async () => {
    const record = `{"prompt":"${'x'.repeat(100)}"}\r`;
    const path = await writeTemp(await tempDir(), 'cr-big.jsonl', record.repeat(100));
    const lines = await readAll(path, { maxLineBytes: 1024 });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ lineNo: 1, issue: { code: 'VOLLEY_INPUT_LINE_TOO_LONG' } });
  });

  it('keeps raw U+2028 and U+2029 inside strings in one record', async () => {
    const text = '{"prompt":"a\u2028b\u2029c"}';
    const path = await writeTemp(await tempDir(), 'ls.jsonl', `${text}\n{"x":1}\n`);
    const lines = await readAll(path);
    expect(texts(lines)).toEqual([text, '{"x":1}']);
  });

  it('yields a final line that has no trailing newline', async () => {
    const path = await writeTemp(await tempDir(), 'nonl.jsonl', '{"a":1}\n{"b":2}');
    const lines = await readAll(path);
    expect(lines.at(-1)).toEqual({ lineNo: 2, offset: 8, bytes: 7, text: '{"b":2}' });
  });

  it('skips blank and whitespace-only lines but counts them in line numbers and stats', async () => {
    const path = await writeTemp(
      await tempDir(),
      'blank.jsonl',
      '\n{"a":1}\n  \t\r\n\n{"b":2}\n\n',
    );
    const stats: ReaderStats = { lines: 0, blankLines: 0, issues: 0, bytesRead: 0 };
    const lines = await readAll(path, { stats });
    expect(lines.map((l) => l.lineNo)).toEqual([2, 5]);
    expect(stats).toMatchObject({ lines: 6, blankLines: 4, issues: 0, bytesRead: 24 });
  });

  it('returns the stats as the generator result', async () => {
    const path = await writeTemp(await tempDir(), 'ret.jsonl', '{"a":1}\n\n');
    const { readJsonlLines } = await import('../src/jsonl/reader.js');
    const it = readJsonlLines(path);
    let step = await it.next();
    while (step.done !== true) step = await it.next();
    expect(step.value).toMatchObject({ lines: 2, blankLines: 1 });
  });

  it('frames lines that straddle read chunks', async () => {
    const many = Array.from({ length: 5000 }, (_, i) => `{"i":${i},"pad":"${'p'.repeat(i % 97)}"}`);
    const path = await writeTemp(await tempDir(), 'many.jsonl', `${many.join('\n')}\n`);
    expect(texts(await readAll(path))).toEqual(many);
  });

  it('throws VOLLEY_ERR_INPUT_READ with the OS code for a missing file', async () => {
    const dir = await tempDir();
    await expect(readAll(`${dir}/missing.jsonl`)).rejects.toMatchObject({
      code: 'VOLLEY_ERR_INPUT_READ',
      osCode: 'ENOENT',
    });
  });

  it('stops with the abort reason when the signal fires', async () => {
    const path = await writeTemp(await tempDir(), 'abort.jsonl', '{"a":1}\n'.repeat(100_000));
    const controller = new AbortController();
    const reason = new Error('stop');
    const seen: number[] = [];
    const run = async (): Promise<void> => {
      for await (const line of (await import('../src/jsonl/reader.js')).readJsonlLines(path, {
        signal: controller.signal,
      })) {
        seen.push(line.lineNo);
        if (line.lineNo === 10) controller.abort(reason);
      }
    };
    await expect(run()).rejects.toBe(reason);
    expect(seen.length).toBeLessThan(100_000);
  });
});
