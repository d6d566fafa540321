import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scanRecords } from '../src/run/output-scan.js';
import { useTempDir, writeTemp } from './helpers/temp-files.js';

const tempDir = useTempDir();
const isRecord = (line: Buffer): boolean => line.toString().startsWith('{"ok"');

describe('scanRecords', () => {
  it('reads every whole record of an intact file and changes nothing', async () => {
    const path = await writeTemp(await tempDir(), 'a.jsonl', '{"ok":1}\n{"ok":2}\n');
    const offsets: number[] = [];
    const result = await scanRecords(
      path,
      (line, offset) => {
        offsets.push(offset);
        return isRecord(line);
      },
      {
        repair: true,
      },
    );
    expect(result).toEqual({ records: 2, repairedBytes: 0, size: 18 });
    expect(offsets).toEqual([0, 9]);
  });

  it('cuts a last line without its newline (a write torn by kill -9)', async () => {
    const path = await writeTemp(await tempDir(), 'a.jsonl', '{"ok":1}\n{"ok":2}\n{"ok":3,"bo');
    const result = await scanRecords(path, isRecord, { repair: true });
    expect(result).toMatchObject({ records: 2, repairedBytes: 11, size: 18 });
    expect(await readFile(path, 'utf8')).toBe('{"ok":1}\n{"ok":2}\n');
  });

  it('cuts a tail of unreadable lines (unsynced blocks after a power loss)', async () => {
    const path = await writeTemp(await tempDir(), 'a.jsonl', `{"ok":1}\n\0\0\0\0\n\0\0\n`);
    const result = await scanRecords(path, isRecord, { repair: true });
    expect(result).toMatchObject({ records: 1, repairedBytes: 8 });
    expect(await readFile(path, 'utf8')).toBe('{"ok":1}\n');
  });

  it('only reports without repair', async () => {
    const path = await writeTemp(await tempDir(), 'a.jsonl', '{"ok":1}\n{"ok');
    expect(await scanRecords(path, isRecord, { repair: false })).toMatchObject({
      repairedBytes: 4,
    });
    expect(await readFile(path, 'utf8')).toBe('{"ok":1}\n{"ok');
  });

  it('refuses a file with an unreadable line followed by records: it was edited', async () => {
    const path = await writeTemp(await tempDir(), 'a.jsonl', '{"ok":1}\ngarbage\n{"ok":2}\n');
    await expect(scanRecords(path, isRecord, { repair: true })).rejects.toMatchObject({
      code: 'VOLLEY_ERR_RESUME_CORRUPT',
      exitCode: 2,
    });
  });

  it('scans a missing or empty file as empty', async () => {
    const dir = await tempDir();
    expect(await scanRecords(join(dir, 'nope'), isRecord, { repair: true })).toEqual({
      records: 0,
      repairedBytes: 0,
      size: 0,
    });
    const empty = await writeTemp(dir, 'empty', '');
    expect((await scanRecords(empty, isRecord, { repair: true })).records).toBe(0);
  });
});
