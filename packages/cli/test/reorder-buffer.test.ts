import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { JournalFile } from '../src/jsonl/journal.js';
import { openJournalFile } from '../src/jsonl/journal.js';
import type { OrderedRecord } from '../src/run/reorder-buffer.js';
import {
  createReorderBuffer,
  decodeSpillLine,
  encodeSpillLine,
} from '../src/run/reorder-buffer.js';
import { useTempDir } from './helpers/temp-files.js';

const tempDir = useTempDir();

async function setup(
  options: { windowLines?: number; cacheBytes?: number; spill?: JournalFile } = {},
) {
  const dir = await tempDir();
  const spill = options.spill ?? (await openJournalFile(join(dir, 'spill')));
  const emitted: string[] = [];
  const reorder = createReorderBuffer({
    windowLines: options.windowLines ?? 64,
    cacheBytes: options.cacheBytes ?? 1 << 20,
    spill,
    emit: async (record: OrderedRecord) => {
      emitted.push(`${record.target}:${record.record}`);
    },
    mustWait: () => false,
  });
  // The spill journal and the buffer's reader are files: closed, never left to the collector.
  onTestFinished(async () => {
    await reorder.close();
    await spill.close();
  });
  return { dir, spill, emitted, reorder };
}

const rec = (n: number): OrderedRecord => ({ target: 'results', record: `{"n":${n}}` });

describe('createReorderBuffer', () => {
  it('writes records in input order whatever order they finish in', async () => {
    const { emitted, reorder, spill } = await setup();
    const order = [5, 2, 1, 4, 3, 8, 6, 7];
    for (let line = 1; line <= 8; line++) reorder.expect(line);
    for (const line of order) await reorder.complete(line, rec(line));
    await reorder.settle();
    expect(emitted).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((n) => `results:{"n":${n}}`));
    expect(reorder.head).toBe(9);
    expect(reorder.pending).toBe(0);
    // What finished ahead of its turn went to the spill file first (kill -9 safe); what finished
    // on its turn (1, then 3 once 2 was out, then 6 and 7) went straight to its file.
    await spill.flush();
    const spilled = (await readFile(spill.path, 'utf8')).trim().split('\n');
    expect(spilled.map((line) => decodeSpillLine(line)?.lineNo)).toEqual([5, 2, 4, 8]);
    await reorder.close();
  });

  it('skips blank lines and lines done in an earlier run, and routes errors to their file', async () => {
    const { emitted, reorder } = await setup();
    // Lines are registered in the order they are read.
    await reorder.complete(1, rec(1)); // a bad line, rejected at once
    reorder.expect(2);
    reorder.skip(3); // finished before
    reorder.expect(5); // line 4 blank: never registered
    await reorder.complete(5, { target: 'errors', record: '{"e":5}' });
    expect(emitted).toEqual(['results:{"n":1}']);
    await reorder.complete(2, rec(2));
    await reorder.settle();
    expect(emitted).toEqual(['results:{"n":1}', 'results:{"n":2}', 'errors:{"e":5}']);
  });

  it('reads spilled records back from disk when they did not fit in the cache', async () => {
    const { emitted, reorder } = await setup({ cacheBytes: 0 });
    for (let line = 1; line <= 4; line++) reorder.expect(line);
    for (const line of [4, 3, 2]) await reorder.complete(line, rec(line));
    await reorder.complete(1, rec(1));
    await reorder.settle();
    expect(emitted).toEqual([1, 2, 3, 4].map((n) => `results:{"n":${n}}`));
  });

  it('emits records an interrupted run left in the spill file', async () => {
    const dir = await tempDir();
    const earlier = await openJournalFile(join(dir, 'spill'));
    const ticket = earlier.append(encodeSpillLine(2, rec(2)));
    await earlier.close();
    const spill = await openJournalFile(join(dir, 'spill'), { append: true });
    const { emitted, reorder } = await setup({ spill });
    reorder.expect(1);
    reorder.completeSpilled(2, ticket.offset, ticket.bytes);
    await reorder.complete(1, rec(1));
    await reorder.settle();
    expect(emitted).toEqual(['results:{"n":1}', 'results:{"n":2}']);
  });

  it('holds back a line beyond the window until the head moves', async () => {
    const { reorder } = await setup({ windowLines: 4 });
    for (let line = 1; line <= 4; line++) reorder.expect(line);
    expect(reorder.waitForRoom(4)).toBeUndefined();
    const room = reorder.waitForRoom(5);
    expect(room).toBeInstanceOf(Promise);
    let released = false;
    void room?.then(() => {
      released = true;
    });
    await reorder.complete(3, rec(3));
    await new Promise((resolve) => setImmediate(resolve));
    expect(released).toBe(false);
    await reorder.complete(1, rec(1));
    await reorder.settle();
    expect(released).toBe(true);
  });
});

describe('spill lines', () => {
  it('round-trip, whatever the record holds', () => {
    const record: OrderedRecord = { target: 'errors', record: '{"a":"tab\there","b":"\\u0000"}' };
    expect(decodeSpillLine(encodeSpillLine(12, record))).toEqual({ lineNo: 12, record });
    expect(decodeSpillLine('garbage')).toBeUndefined();
    expect(decodeSpillLine('0\u0000r\u0000{}')).toBeUndefined();
  });
});
