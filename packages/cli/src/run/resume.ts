/**
 * Reading what an interrupted run left, and tidying it before the run continues.
 *
 *   results.jsonl ──► every success          ──┐
 *   errors.jsonl  ──► failures kept for good ──┼──► FinishedSet (custom_id → record id, kind)
 *   spill         ──► records not yet placed ──┘
 *
 * Failures that `--resume` sends again (retryable ones: 429, 5xx, timeouts, lost connections) and
 * bad-input records (re-derived from the input every run) are not finished; the errors file is
 * rewritten without them before anything new is written, so a line never ends with a record in
 * both files. The rewrite goes through a temporary file and a rename: a crash leaves the old file
 * or the new one.
 */

import { createReadStream, constants as fsConstants } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { syncDirectory } from '../sync-directory.js';
import type { FinishedSet } from './finished-set.js';
import { createFinishedSet, RecordKind } from './finished-set.js';
import { scanRecords } from './output-scan.js';
import { parseRecordHead } from './record.js';
import { decodeSpillLine, type OrderedRecord } from './reorder-buffer.js';

/** What {@link loadPreviousRun} found. */
export interface PreviousRun {
  finished: FinishedSet;
  successes: number;
  /** Failures kept (not retried). */
  finalErrors: number;
  /** Records in the errors file that will be dropped: retried failures and bad-input records. */
  droppedErrors: number;
  /** Records waiting in the spill file. */
  spilled: number;
  /** Success records for a custom_id already seen (never written by Volley; reported). */
  duplicateSuccesses: number;
  /** Bytes of torn tails cut off, per file. */
  repaired: { results: number; errors: number; spill: number };
}

/** An errors-file record, as much as resuming needs of it. */
interface ErrorHead {
  id: string;
  customId: string;
  /** Retried by `--resume` (or re-derived, for bad input), so not finished. */
  redo: boolean;
}

function parseErrorRecord(line: Buffer | string): ErrorHead | undefined {
  let value: unknown;
  try {
    value = JSON.parse(typeof line === 'string' ? line : line.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as { id?: unknown; custom_id?: unknown; error?: unknown };
  const error = record.error as { code?: unknown; retryable?: unknown } | null | undefined;
  if (
    typeof record.id !== 'string' ||
    !/^batch_req_[0-9a-f]{24}$/.test(record.id) ||
    typeof record.custom_id !== 'string' ||
    typeof error !== 'object' ||
    error === null ||
    typeof error.code !== 'string'
  ) {
    return undefined;
  }
  const redo = error.retryable === true || error.code.startsWith('VOLLEY_INPUT_');
  return { id: record.id, customId: record.custom_id, redo };
}

/**
 * Scans the previous run's files (repairing torn tails) into a {@link FinishedSet}. A file that
 * was edited (an unreadable record followed by readable ones) throws `VOLLEY_ERR_RESUME_CORRUPT`.
 */
export async function loadPreviousRun(files: {
  results: string;
  errors: string;
  spill: string | undefined;
}): Promise<PreviousRun> {
  const finished = createFinishedSet();
  const run: PreviousRun = {
    finished,
    successes: 0,
    finalErrors: 0,
    droppedErrors: 0,
    spilled: 0,
    duplicateSuccesses: 0,
    repaired: { results: 0, errors: 0, spill: 0 },
  };
  const results = await scanRecords(
    files.results,
    (line) => {
      const head = parseRecordHead(line);
      if (head === undefined) return false;
      if (finished.add(head.customId, head.id, RecordKind.SUCCESS)) run.successes++;
      else run.duplicateSuccesses++;
      return true;
    },
    { repair: true },
  );
  run.repaired.results = results.repairedBytes;

  const errors = await scanErrorRecords(files.errors, finished);
  run.finalErrors = errors.finalErrors;
  run.droppedErrors = errors.droppedErrors;
  run.repaired.errors = errors.repairedBytes;

  if (files.spill !== undefined) {
    const spill = await scanRecords(
      files.spill,
      (line, offset) => {
        const decoded = decodeSpillLine(line.toString('utf8'));
        if (decoded === undefined) return false;
        const head =
          decoded.record.target === 'results'
            ? parseRecordHead(Buffer.from(decoded.record.record))
            : parseErrorRecord(decoded.record.record);
        if (head === undefined) return false;
        if ('redo' in head && head.redo) return true;
        // Already placed in its file (the spill keeps a copy until the run ends): skip it. A
        // failure is stored with a negative length, so its retry line can be written again.
        const length = (line.length + 1) * (decoded.record.target === 'errors' ? -1 : 1);
        if (finished.add(head.customId, head.id, RecordKind.SPILLED, offset, length)) {
          run.spilled++;
        }
        return true;
      },
      { repair: true },
    );
    run.repaired.spill = spill.repairedBytes;
  }
  return run;
}

/**
 * Adds the failures of an errors file that stay final to `finished` (after its successes, which
 * win), repairing a torn tail. Retryable failures and bad-input records are counted as dropped:
 * the run redoes them, and {@link compactErrors} removes them from the file.
 */
export async function scanErrorRecords(
  path: string,
  finished: FinishedSet,
): Promise<{ finalErrors: number; droppedErrors: number; repairedBytes: number }> {
  let finalErrors = 0;
  let droppedErrors = 0;
  const scan = await scanRecords(
    path,
    (line) => {
      const head = parseErrorRecord(line);
      if (head === undefined) return false;
      if (head.redo) {
        droppedErrors++;
        return true;
      }
      const kind = finished.kindOf(head.customId);
      if (kind === RecordKind.SUCCESS) {
        // A success and a failure for one line cannot both stand; the success is what was paid for.
        droppedErrors++;
      } else if (kind === RecordKind.FINAL_ERROR) {
        // The same line failed again after an edit: the later record supersedes the earlier.
        finished.replace(head.customId, head.id, RecordKind.FINAL_ERROR);
        droppedErrors++;
      } else {
        finished.add(head.customId, head.id, RecordKind.FINAL_ERROR);
        finalErrors++;
      }
      return true;
    },
    { repair: true },
  );
  return { finalErrors, droppedErrors, repairedBytes: scan.repairedBytes };
}

/** Where {@link compactErrors} writes the new errors file before renaming it into place. */
export function compactionTempPath(errors: string): string {
  return `${errors}.volley-tmp`;
}

/**
 * Rewrites the errors file keeping only failures that stay final (not retried, not bad input,
 * not superseded, not for a line that changed). Returns the number of records dropped.
 */
export async function compactErrors(path: string, finished: FinishedSet): Promise<number> {
  const tmp = compactionTempPath(path);
  const { O_WRONLY, O_CREAT, O_TRUNC, O_NOFOLLOW } = fsConstants;
  let dropped = 0;
  let renamed = false;
  const out = await open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o600);
  try {
    let batch: Buffer[] = [];
    let batchBytes = 0;
    const flush = async (): Promise<void> => {
      if (batchBytes === 0) return;
      const buffer = Buffer.concat(batch, batchBytes);
      batch = [];
      batchBytes = 0;
      let done = 0;
      while (done < buffer.length) {
        const { bytesWritten } = await out.write(buffer, done, buffer.length - done);
        if (bytesWritten <= 0) throw new Error(`short write to ${tmp}`);
        done += bytesWritten;
      }
    };
    for await (const line of readLines(path)) {
      const head = parseErrorRecord(line);
      if (
        head === undefined ||
        head.redo ||
        !finished.keeps(head.customId, head.id, RecordKind.FINAL_ERROR)
      ) {
        dropped++;
        continue;
      }
      batch.push(line, NEWLINE);
      batchBytes += line.length + 1;
      if (batchBytes >= 1 << 20) await flush();
    }
    await flush();
    await out.datasync();
  } catch (error) {
    await out.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
  await out.close();
  if (dropped === 0) await unlink(tmp).catch(() => undefined);
  if (dropped === 0) return 0;
  try {
    await rename(tmp, path);
    renamed = true;
    await syncDirectory(path);
  } finally {
    if (!renamed) await unlink(tmp).catch(() => undefined);
  }
  return dropped;
}

const NEWLINE = Buffer.from('\n');

async function* readLines(path: string): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let stream: AsyncIterable<Buffer>;
  try {
    stream = createReadStream(path, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>;
    for await (const chunk of stream) {
      let pos = 0;
      while (pos < chunk.length) {
        const nl = chunk.indexOf(0x0a, pos);
        if (nl === -1) {
          parts.push(chunk.subarray(pos));
          break;
        }
        const piece = chunk.subarray(pos, nl);
        yield parts.length === 0 ? piece : Buffer.concat([...parts, piece]);
        parts = [];
        pos = nl + 1;
      }
    }
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return;
    throw error;
  }
}

/** Reads one spill line written at `offset` (`length` bytes with its `\n`). */
export async function readSpillRecord(
  path: string,
  offset: number,
  length: number,
): Promise<OrderedRecord> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(buffer, done, length - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    const decoded = decodeSpillLine(
      buffer.toString('utf8', 0, buffer[done - 1] === 0x0a ? done - 1 : done),
    );
    if (decoded === undefined) throw new Error(`${path} is damaged at byte ${offset}`);
    return decoded.record;
  } finally {
    await handle.close();
  }
}
