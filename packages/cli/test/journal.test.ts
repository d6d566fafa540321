import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSyncTimer, openJournalFile } from '../src/jsonl/journal.js';
import { useTempDir, writeTemp } from './helpers/temp-files.js';

const tempDir = useTempDir();

describe('openJournalFile', () => {
  it('appends whole lines in order, batching a turn of appends into one write', async () => {
    const path = join(await tempDir(), 'out.jsonl');
    const journal = await openJournalFile(path);
    const tickets = ['{"a":1}', '{"b":"é"}', '{"c":3}'].map((line) => journal.append(line));
    // Offsets are known at once: the spill index relies on them.
    expect(tickets.map((t) => [t.offset, t.bytes])).toEqual([
      [0, 8],
      [8, 11],
      [19, 8],
    ]);
    expect(journal.endOffset).toBe(27);
    await Promise.all(tickets.map((t) => t.written));
    expect(journal.writtenBytes).toBe(27);
    expect(await readFile(path, 'utf8')).toBe('{"a":1}\n{"b":"é"}\n{"c":3}\n');
    await journal.sync();
    expect(journal.syncedBytes).toBe(27);
    await journal.close();
    await journal.close(); // idempotent
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('appends after an existing file when resuming, and refuses to truncate one otherwise', async () => {
    const dir = await tempDir();
    const path = await writeTemp(dir, 'out.jsonl', '{"old":1}\n');
    await expect(openJournalFile(path)).rejects.toMatchObject({ code: 'VOLLEY_ERR_OUTPUT_EXISTS' });
    const journal = await openJournalFile(path, { append: true });
    expect(journal.append('{"new":2}').offset).toBe(10);
    await journal.close();
    expect(await readFile(path, 'utf8')).toBe('{"old":1}\n{"new":2}\n');
  });

  it('rejects appends after close with VOLLEY_ERR_OUTPUT_CLOSED', async () => {
    const journal = await openJournalFile(join(await tempDir(), 'out.jsonl'));
    await journal.close();
    await expect(journal.append('{}').written).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_CLOSED',
    });
  });

  it.skipIf(!existsSync('/dev/full'))(
    'turns a failed write into a sticky VOLLEY_ERR_OUTPUT_WRITE with the OS code',
    async () => {
      const journal = await openJournalFile('/dev/full');
      expect(journal.regular).toBe(false);
      await expect(journal.append('{"a":1}').written).rejects.toMatchObject({
        code: 'VOLLEY_ERR_OUTPUT_WRITE',
        osCode: 'ENOSPC',
      });
      expect(journal.failure?.osCode).toBe('ENOSPC');
      await expect(journal.append('{"b":2}').written).rejects.toMatchObject({
        code: 'VOLLEY_ERR_OUTPUT_WRITE',
      });
      await expect(journal.close()).rejects.toMatchObject({ code: 'VOLLEY_ERR_OUTPUT_WRITE' });
    },
  );

  it('writes a batch larger than one write call can take, checking every length', async () => {
    const path = join(await tempDir(), 'big.jsonl');
    const journal = await openJournalFile(path);
    const line = 'x'.repeat(300_000);
    await Promise.all(Array.from({ length: 20 }, () => journal.append(line).written));
    await journal.close();
    expect((await stat(path)).size).toBe(20 * 300_001);
  });
});

describe('createSyncTimer', () => {
  it('fdatasyncs dirty files on its interval and then checkpoints', async () => {
    const journal = await openJournalFile(join(await tempDir(), 'out.jsonl'));
    let checkpoints = 0;
    const timer = createSyncTimer({
      files: () => [journal],
      intervalMs: 20,
      onSync: async () => {
        checkpoints++;
      },
    });
    await journal.append('{"a":1}').written;
    await new Promise((resolve) => setTimeout(resolve, 80));
    timer.stop();
    expect(journal.syncedBytes).toBe(8);
    expect(checkpoints).toBeGreaterThan(0);
    await journal.close();
  });
});

describe('the unsynced-bytes bound', () => {
  it('fdatasyncs from the writer itself once maxUnsyncedBytes are written', async () => {
    const journal = await openJournalFile(join(await tempDir(), 'out.jsonl'), {
      maxUnsyncedBytes: 1000,
    });
    await journal.append('x'.repeat(600)).written;
    expect(journal.syncedBytes).toBe(0);
    await journal.append('x'.repeat(600)).written;
    expect(journal.syncedBytes).toBe(1202);
    await journal.close();
  });
});
