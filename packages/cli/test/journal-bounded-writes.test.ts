/**
 * Regression: 64 answers of 40 MB settled while a write was running were joined into one 2.5 GB
 * string, past V8's string limit (~512 MB on Node 20); the RangeError killed the run and lost the
 * paid answers. A batch is now written in slices of at most `maxWriteBytes`, records never split
 * between slices. The bound is explicit so this is tested with kilobytes, not gigabytes.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openJournalFile } from '../src/jsonl/journal.js';
import { useTempDir } from './helpers/temp-files.js';

const tempDir = useTempDir();

describe('journal writes are bounded', () => {
  it('writes a batch larger than maxWriteBytes as several writes of whole records, content exact', async () => {
    const path = join(await tempDir(), 'out.jsonl');
    const writes: number[] = [];
    const maxWriteBytes = 1024;
    const journal = await openJournalFile(path, {
      maxWriteBytes,
      onWrite: (bytes) => writes.push(bytes),
    });
    // One turn of appends: one batch of 20 KB, with a record three times the bound among them.
    const lines = Array.from({ length: 200 }, (_, i) =>
      JSON.stringify({ i, text: i === 100 ? 'é'.repeat(1500) : 'x'.repeat(90) }),
    );
    const tickets = lines.map((line) => journal.append(line));
    await Promise.all(tickets.map((ticket) => ticket.written));
    await journal.close();

    const expected = lines.map((line) => `${line}\n`).join('');
    expect(await readFile(path, 'utf8')).toBe(expected);
    const total = Buffer.byteLength(expected);
    expect(total).toBeGreaterThan(10 * maxWriteBytes);
    expect(writes.reduce((sum, bytes) => sum + bytes, 0)).toBe(total);
    expect(writes.length).toBeGreaterThan(10);
    // Every write ends on a record boundary; only the oversized record's write passes the bound.
    const recordEnds = new Set(tickets.map((ticket) => ticket.offset + ticket.bytes));
    let end = 0;
    for (const bytes of writes) {
      end += bytes;
      expect(recordEnds.has(end)).toBe(true);
    }
    const bigRecordBytes = (tickets[100] as { bytes: number }).bytes;
    expect(bigRecordBytes).toBeGreaterThan(maxWriteBytes);
    expect(writes.filter((bytes) => bytes > maxWriteBytes)).toEqual([bigRecordBytes]);
  });

  it('slices mixed raw and text batches the same way', async () => {
    const path = join(await tempDir(), 'out.bin');
    const writes: number[] = [];
    const journal = await openJournalFile(path, {
      maxWriteBytes: 100,
      onWrite: (bytes) => writes.push(bytes),
    });
    const chunks = Array.from({ length: 30 }, (_, i) => Buffer.alloc(40, i));
    for (const chunk of chunks) journal.appendBytes(chunk);
    journal.append('{"tail":true}');
    await journal.close();
    expect(await readFile(path)).toEqual(
      Buffer.concat([...chunks, Buffer.from('{"tail":true}\n')]),
    );
    expect(writes.length).toBeGreaterThan(10);
    expect(Math.max(...writes)).toBeLessThanOrEqual(100);
  });
});
