import { describe, expect, it } from 'vitest';
import { readAll, useTempDir, writeTemp } from './helpers/temp-files.js';

const tempDir = useTempDir();

describe('readJsonlLines strict UTF-8', () => {
  it.each([
    ['a lone continuation byte', [0x80]],
    ['a truncated 2-byte sequence', [0xc3]],
    ['an overlong encoding', [0xc0, 0xaf]],
    ['an encoded surrogate', [0xed, 0xa0, 0x80]],
    ['Latin-1 é', [0xe9]],
  ])('reports %s as VOLLEY_INPUT_INVALID_UTF8, never U+FFFD', async (_name, bad) => {
    const bytes = Buffer.concat([
      Buffer.from('{"a":1}\n{"prompt":"ab'),
      Buffer.from(bad),
      Buffer.from('cd"}\n{"b":2}\n'),
    ]);
    const path = await writeTemp(await tempDir(), 'bad.jsonl', bytes);
    const lines = await readAll(path);
    expect(lines).toHaveLength(3);
    const issue = lines[1];
    expect(issue).toMatchObject({
      lineNo: 2,
      offset: 8,
      issue: { code: 'VOLLEY_INPUT_INVALID_UTF8', lineNo: 2, offset: 8 },
    });
    if (issue !== undefined && 'issue' in issue) {
      expect(issue.issue.snippet).not.toContain('\ufffd');
      expect(issue.issue.snippet).toMatch(/\\x[0-9a-f]{2}/);
      expect(issue.issue.snippet.length).toBeLessThanOrEqual(80);
    }
    expect(lines[2]).toMatchObject({ lineNo: 3, text: '{"b":2}' });
  });

  it('accepts 4-byte sequences (emoji) and multi-byte characters split across chunks', async () => {
    const text = `{"prompt":"${'😀é'.repeat(30_000)}"}`;
    const path = await writeTemp(await tempDir(), 'emoji.jsonl', `${text}\n`);
    const lines = await readAll(path);
    expect(lines).toEqual([{ lineNo: 1, offset: 0, bytes: Buffer.byteLength(text), text }]);
  });
});
