import { describe, expect, it } from 'vitest';
import { parseBatchLine } from '../src/jsonl/batch-line.js';
import type { RawTextLine } from '../src/jsonl/reader.js';
import { readAll, useTempDir, writeTemp } from './helpers/temp-files.js';

const tempDir = useTempDir();

describe('readJsonlLines byte order marks', () => {
  it('strips a UTF-8 BOM on line 1; the offset still counts its bytes', async () => {
    const path = await writeTemp(await tempDir(), 'bom.jsonl', '\ufeff{"a":1}\n{"b":2}\n');
    const lines = (await readAll(path)) as RawTextLine[];
    expect(lines[0]).toEqual({ lineNo: 1, offset: 0, bytes: 10, text: '{"a":1}' });
    expect(lines[1]).toMatchObject({ lineNo: 2, offset: 11, text: '{"b":2}' });
  });

  it('keeps a BOM on a later line, which the parser reports as UNEXPECTED_BOM', async () => {
    const path = await writeTemp(await tempDir(), 'bom2.jsonl', '{"a":1}\n\ufeff{"prompt":"x"}\n');
    const lines = (await readAll(path)) as RawTextLine[];
    expect(lines[1]?.text.charCodeAt(0)).toBe(0xfeff);
    const result = parseBatchLine(lines[1] as RawTextLine, { model: 'm' });
    expect(result).toMatchObject({
      ok: false,
      issue: { code: 'VOLLEY_INPUT_UNEXPECTED_BOM', lineNo: 2 },
    });
  });

  it('treats a BOM-only first line as blank', async () => {
    const path = await writeTemp(await tempDir(), 'bom3.jsonl', '\ufeff\n{"a":1}\n');
    const lines = await readAll(path);
    expect(lines.map((l) => l.lineNo)).toEqual([2]);
  });
});
