/**
 * Reading back what an earlier run wrote, for `--resume`: every whole record, and the repair of a
 * torn tail.
 *
 * The journal writes whole batches of whole records (journal.ts), so the only damage a crash can
 * leave is at the end of a file: a last line without its `\n` (kill -9 in the middle of a write),
 * or, after power loss, a tail of unsynced blocks that reads back as zeros or garbage. Both are cut
 * off. An unreadable record followed by readable ones cannot come from a crash; it means the file
 * was edited, and resuming refuses (`VOLLEY_ERR_RESUME_CORRUPT`) rather than guess.
 */

import { createReadStream, constants as fsConstants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { open, stat } from 'node:fs/promises';
import { CliError, ExitCode } from '../exit-codes.js';
import { openError } from '../jsonl/writer.js';

/** What {@link scanRecords} found. */
export interface ScanResult {
  /** Whole, valid records. */
  records: number;
  /** Bytes cut off the end (0 when the file was intact). */
  repairedBytes: number;
  /** File size after the repair. */
  size: number;
}

const LF = 0x0a;

/**
 * Calls `onRecord` for each whole line of `path` (its bytes without `\n`, and its offset); the
 * callback returns false for a line that is not a valid record. With `repair`, a torn or invalid
 * tail is truncated away. A missing file scans as empty.
 *
 * @example
 * await scanRecords('results.jsonl', (line) => parseRecordHead(line) !== undefined, { repair: true });
 */
export async function scanRecords(
  path: string,
  onRecord: (line: Buffer, offset: number) => boolean,
  options: { repair: boolean },
): Promise<ScanResult> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') {
      return { records: 0, repairedBytes: 0, size: 0 };
    }
    throw error;
  }
  if (size === 0) return { records: 0, repairedBytes: 0, size: 0 };
  let records = 0;
  let offset = 0; // start of the current line
  let parts: Buffer[] = [];
  let firstInvalid: { offset: number; lineNo: number } | undefined;
  let lineNo = 0;
  const endLine = (line: Buffer): void => {
    lineNo++;
    const valid = line.length > 0 && onRecord(line, offset);
    if (valid) {
      if (firstInvalid !== undefined) {
        throw new CliError(
          `${path}: line ${firstInvalid.lineNo} (byte ${firstInvalid.offset}) is not a record Volley wrote, but records follow it; the file was modified. Restore it or start over with --overwrite`,
          ExitCode.USAGE,
          'VOLLEY_ERR_RESUME_CORRUPT',
        );
      }
      records++;
    } else {
      firstInvalid ??= { offset, lineNo };
    }
    offset += line.length + 1;
  };
  for await (const chunk of createReadStream(path, {
    highWaterMark: 256 * 1024,
    end: size - 1,
  }) as AsyncIterable<Buffer>) {
    let pos = 0;
    while (pos < chunk.length) {
      const nl = chunk.indexOf(LF, pos);
      if (nl === -1) {
        parts.push(chunk.subarray(pos));
        break;
      }
      const piece = chunk.subarray(pos, nl);
      const line = parts.length === 0 ? piece : Buffer.concat([...parts, piece]);
      parts = [];
      endLine(line);
      pos = nl + 1;
    }
  }
  // Bytes after the last `\n` are a torn record, whatever they look like.
  const keep = firstInvalid?.offset ?? offset;
  const repairedBytes = size - keep;
  if (repairedBytes > 0 && options.repair) await truncateFile(path, keep);
  return { records, repairedBytes, size: options.repair ? keep : size };
}

/** Cuts a file to its first `keep` bytes, durably (never through a symlink). */
export async function truncateFile(path: string, keep: number): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(path, fsConstants.O_RDWR | fsConstants.O_NOFOLLOW);
  } catch (error) {
    // Coded as a fresh run's open would be (a link planted since the paths were checked).
    throw openError(path, error);
  }
  try {
    await handle.truncate(keep);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}
