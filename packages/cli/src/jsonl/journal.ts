/**
 * The durable journal: append-only output files, each with exactly one writer.
 *
 *   append(line) ──► pending batch ──► positioned writes of at most maxWriteBytes each, lengths
 *                                          │  checked; failed: ftruncate back to the batch start
 *   every syncIntervalMs (or maxUnsyncedBytes) ──► fdatasync each dirty file ──► onSync()
 *
 * A record is never split across batches, and a batch is kept whole or not at all: after a failed
 * write the file is truncated back to where the batch began, so a full disk leaves only whole
 * records behind. A batch is never built into one string or buffer: 64 answers of 40 MB settled
 * while a write was running made a 2.5 GB `join('')`, past V8's string limit (~512 MB on Node 20),
 * and the RangeError killed the run. Records are written in slices of at most `maxWriteBytes` (a
 * larger record alone, never split), so memory beyond the queued records stays bounded.
 *
 * The one thing no writer can prevent is a kill -9 (or power loss) in the middle of a write; that leaves at most one torn tail, which `--resume` cuts off (see output-scan.ts).
 *
 * Durability against a killed process needs only the write(2): the page cache survives the
 * process. fdatasync protects against power loss and OS crashes; it is batched because one fsync
 * per record would cap a run at the disk's fsync rate (a few hundred to a few thousand per second
 * here) instead of its bandwidth. The window of records that an OS crash could lose is bounded by
 * `syncIntervalMs` and `maxUnsyncedBytes`, whichever comes first.
 */

import type { FileHandle } from 'node:fs/promises';
import type { JsonlWriter } from './writer.js';
import { OutputError, openOutputFile } from './writer.js';

/** Where an appended line will land, and when it has been handed to the OS. */
export interface AppendTicket {
  /** Byte offset of the line in the file. */
  offset: number;
  /** Bytes of the line, including its `\n`. */
  bytes: number;
  /** Resolves once the batch holding the line is written; rejects with an {@link OutputError}. */
  written: Promise<void>;
}

/** One append-only output file; see {@link openJournalFile}. */
export interface JournalFile {
  readonly path: string;
  /** False for stdout and character devices: no truncation, no fsync, no resume. */
  readonly regular: boolean;
  /** Size the file will have once everything queued is written. */
  readonly endOffset: number;
  /** Size of the file after the last completed write. */
  readonly writtenBytes: number;
  /** Bytes known to be on stable storage (fdatasync returned). */
  readonly syncedBytes: number;
  /** Bytes queued and not yet written. */
  readonly queuedBytes: number;
  /** The first write failure; sticky: every later append rejects with it. */
  readonly failure: OutputError | undefined;
  /**
   * Queues `line + '\n'`, the line given whole or as pieces written one after another. It must not
   * contain `\n` (the caller builds records).
   */
  append(line: LineText): AppendTicket;
  /**
   * Queues raw bytes (binary outputs, e.g. rows of float32 vectors). The caller hands over
   * `bytes`: they are written later and must not change meanwhile.
   */
  appendBytes(bytes: Uint8Array): AppendTicket;
  /** Resolves when everything queued so far is written (rejects on failure). */
  flush(): Promise<void>;
  /** Flushes, then fdatasyncs (regular files). */
  sync(): Promise<void>;
  /** Flushes, syncs and closes. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link openJournalFile}. */
export interface OpenJournalFileOptions {
  /** Truncate an existing non-empty file (a fresh run with `--overwrite`). */
  overwrite?: boolean;
  /** Keep an existing file and append after it (resume). */
  append?: boolean;
  /** fdatasync as soon as this many written bytes are unsynced, whatever the timer. Default 64 MiB. */
  maxUnsyncedBytes?: number;
  /**
   * Most bytes built into one buffer and written in one go; a record larger than this is written
   * alone. Default {@link DEFAULT_MAX_WRITE_BYTES}.
   */
  maxWriteBytes?: number;
  /** Called after every write(2) with the bytes it wrote (observability, tests). */
  onWrite?: (bytes: number) => void;
}

/** Default of `maxUnsyncedBytes`: bounds what an OS crash can lose when the disk is fast. */
export const DEFAULT_MAX_UNSYNCED_BYTES = 64 * 1024 * 1024;

/**
 * Default of `maxWriteBytes`: large enough that a write costs one syscall per many records, small
 * enough that building it never nears V8's string limit nor holds much memory twice.
 */
export const DEFAULT_MAX_WRITE_BYTES = 8 * 1024 * 1024;

/** Above this many queued bytes a batch is written without waiting for the next turn. */
const MAX_BATCH_BYTES = 1024 * 1024;

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(error: Error): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A batch nobody awaits must not become an unhandled rejection; awaiting callers still see it.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/**
 * Opens (creating owner-only, never through a symlink, never truncating without `overwrite`) an
 * append-only journal file. See writer.ts for the open rules; character devices such as
 * `/dev/null` and `/dev/full` are accepted as non-regular targets.
 *
 * @example
 * const results = await openJournalFile('results.jsonl', { append: resuming });
 * await results.append(record).written;   // in the OS: survives kill -9
 * await results.sync();                    // on disk: survives power loss
 */
export async function openJournalFile(
  path: string,
  options: OpenJournalFileOptions = {},
): Promise<JournalFile> {
  const { handle, regular } = await openOutputFile(path, options);
  let size = 0;
  try {
    if (regular) size = (await handle.stat()).size;
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw new OutputError('VOLLEY_ERR_OUTPUT_OPEN', path, 'cannot open output', error);
  }
  return new FileJournal(path, handle, regular, size, {
    maxUnsyncedBytes: options.maxUnsyncedBytes ?? DEFAULT_MAX_UNSYNCED_BYTES,
    maxWriteBytes: options.maxWriteBytes ?? DEFAULT_MAX_WRITE_BYTES,
    onWrite: options.onWrite,
  });
}

interface WriteLimits {
  maxUnsyncedBytes: number;
  maxWriteBytes: number;
  onWrite: ((bytes: number) => void) | undefined;
}

/**
 * A line for {@link JournalFile.append}: one string, or pieces that are written in turn. Pieces
 * spare a record the flat copy of itself that joining them costs (a success record embeds the
 * server's body as is: issue 12).
 */
export type LineText = string | readonly string[];

/** The UTF-8 size of a line with its `\n`. */
function lineBytes(line: LineText): number {
  if (typeof line === 'string') return Buffer.byteLength(line) + 1;
  let bytes = 1;
  for (const piece of line) bytes += Buffer.byteLength(piece);
  return bytes;
}

/** One queued record: a line (written with its `'\n'`) or raw bytes, and its size in bytes. */
interface Part {
  data: LineText | Uint8Array;
  bytes: number;
}

/** Takes the place of a written part, so the batch no longer holds its data. */
const WRITTEN: Part = { data: '', bytes: 0 };

/**
 * Most bytes of the buffer a journal keeps for building its writes: a slice up to this size reuses
 * it, a larger one gets its own.
 */
const SCRATCH_MAX_BYTES = 2 * MAX_BATCH_BYTES;

/**
 * Encodes a slice of records into `target` (at least `bytes` long): each line straight into its
 * place with its `\n` (its size is known from `append`), raw bytes copied. No joined string and no
 * second copy: a join and `Buffer.from` of it cost two copies and ~1 KB of garbage per record.
 */
function encodeParts(parts: readonly Part[], target: Buffer, bytes: number): Buffer {
  let offset = 0;
  for (const { data, bytes: size } of parts) {
    if (typeof data === 'string') {
      offset += target.write(data, offset, 'utf8');
      target[offset++] = 0x0a;
    } else if (data instanceof Uint8Array) {
      target.set(data, offset);
      offset += size;
    } else {
      for (const piece of data) offset += target.write(piece, offset, 'utf8');
      target[offset++] = 0x0a;
    }
  }
  if (offset !== bytes) throw new Error(`encoded ${offset} bytes where ${bytes} were counted`);
  return target.subarray(0, bytes);
}

class FileJournal implements JournalFile {
  readonly path: string;
  readonly regular: boolean;
  #handle: FileHandle;
  #written: number;
  #synced: number;
  /** Queued lines and raw chunks, in order. */
  #queued: Part[] = [];
  #queuedBytes = 0;
  #batch: Deferred = deferred();
  #pumping: Promise<void> = Promise.resolve();
  #running = false;
  #scheduled = false;
  #failure: OutputError | undefined;
  #closing: Promise<void> | undefined;
  /** Reused by every slice that fits: the pump builds the next slice only once a write is done. */
  #scratch: Buffer | undefined;

  readonly #limits: WriteLimits;

  constructor(
    path: string,
    handle: FileHandle,
    regular: boolean,
    size: number,
    limits: WriteLimits,
  ) {
    this.path = path;
    this.#handle = handle;
    this.regular = regular;
    this.#written = size;
    this.#synced = size;
    this.#limits = limits;
  }

  get endOffset(): number {
    return this.#written + this.#queuedBytes;
  }
  get writtenBytes(): number {
    return this.#written;
  }
  get syncedBytes(): number {
    return this.#synced;
  }
  get queuedBytes(): number {
    return this.#queuedBytes;
  }
  get failure(): OutputError | undefined {
    return this.#failure;
  }

  append(line: LineText): AppendTicket {
    return this.#enqueue({ data: line, bytes: lineBytes(line) });
  }

  appendBytes(bytes: Uint8Array): AppendTicket {
    return this.#enqueue({ data: bytes, bytes: bytes.byteLength });
  }

  #enqueue(part: Part): AppendTicket {
    const { bytes } = part;
    const offset = this.endOffset;
    if (this.#failure !== undefined) {
      return { offset, bytes, written: rejected(this.#failure) };
    }
    if (this.#closing !== undefined) {
      return {
        offset,
        bytes,
        written: rejected(
          new OutputError('VOLLEY_ERR_OUTPUT_CLOSED', this.path, 'write after close'),
        ),
      };
    }
    this.#queued.push(part);
    this.#queuedBytes += bytes;
    const written = this.#batch.promise;
    if (this.#queuedBytes >= MAX_BATCH_BYTES) this.#kick();
    else this.#schedule();
    return { offset, bytes, written };
  }

  async flush(): Promise<void> {
    this.#throwIfFailed();
    if (this.#queuedBytes > 0) {
      const { promise } = this.#batch;
      this.#kick();
      await promise;
    }
    await this.#pumping;
    this.#throwIfFailed();
  }

  async sync(): Promise<void> {
    await this.flush();
    await this.#pumping;
    this.#throwIfFailed();
    if (!this.regular || this.#synced === this.#written) return;
    const target = this.#written;
    try {
      await this.#handle.datasync();
    } catch (error) {
      throw this.#fail(error);
    }
    this.#synced = Math.max(this.#synced, target);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        if (this.#failure === undefined) {
          await this.#kickAndWait();
          await this.sync();
        }
      } finally {
        await this.#handle.close().catch(() => undefined);
      }
      this.#throwIfFailed();
    })();
    return this.#closing;
  }

  /** A method, not an inline check: the compiler cannot see the field change across an await. */
  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // setImmediate, not a microtask: every result settled in this turn joins one batch.
    setImmediate(() => {
      this.#scheduled = false;
      this.#kick();
    });
  }

  #kick(): void {
    // A synchronous flag, not `.finally`: that would clear it a microtask late, and a flush
    // arriving in between would wait for a pump that is no longer running.
    if (this.#running) return;
    this.#running = true;
    this.#pumping = this.#pump();
  }

  async #kickAndWait(): Promise<void> {
    while (this.#queuedBytes > 0 && this.#failure === undefined) {
      this.#kick();
      await this.#pumping;
    }
    await this.#pumping;
  }

  async #pump(): Promise<void> {
    try {
      while (this.#queuedBytes > 0 && this.#failure === undefined) {
        const parts = this.#queued;
        const batch = this.#batch;
        this.#queued = [];
        this.#queuedBytes = 0;
        this.#batch = deferred();
        const start = this.#written;
        try {
          this.#written = await this.#writeParts(parts, start);
          if (this.regular && this.#written - this.#synced >= this.#limits.maxUnsyncedBytes) {
            const target = this.#written;
            await this.#handle.datasync();
            this.#synced = Math.max(this.#synced, target);
          }
          batch.resolve();
        } catch (error) {
          const failure = this.#fail(error);
          await this.#cutBackTo(start);
          batch.reject(failure);
          // Lines queued while this write was failing fail with it.
          this.#queued = [];
          this.#queuedBytes = 0;
          this.#batch.reject(failure);
        }
      }
    } finally {
      // Cleared in the pump's own finally, synchronously when the loop ends.
      this.#running = false;
    }
  }

  /**
   * Writes a batch's records in order from `start`, in slices of at most `maxWriteBytes` (a larger
   * record alone), dropping each slice once built so its memory can go. Returns the end offset.
   * Anything that throws here (an OS error, a buffer that cannot be built) fails the batch as a
   * write failure, never the process.
   */
  async #writeParts(parts: Part[], start: number): Promise<number> {
    let position = start;
    let first = 0;
    while (first < parts.length) {
      let end = first;
      let bytes = 0;
      while (end < parts.length) {
        const size = (parts[end] as Part).bytes;
        if (end > first && bytes + size > this.#limits.maxWriteBytes) break;
        bytes += size;
        end++;
      }
      const buffer = encodeParts(parts.slice(first, end), this.#bufferFor(bytes), bytes);
      parts.fill(WRITTEN, first, end);
      await this.#writeAll(buffer, position);
      position += buffer.length;
      first = end;
    }
    return position;
  }

  #bufferFor(bytes: number): Buffer {
    if (bytes > SCRATCH_MAX_BYTES) return Buffer.allocUnsafeSlow(bytes);
    if (this.#scratch === undefined || this.#scratch.length < bytes) {
      this.#scratch = Buffer.allocUnsafeSlow(
        Math.min(SCRATCH_MAX_BYTES, Math.max(bytes, 2 * (this.#scratch?.length ?? 0))),
      );
    }
    return this.#scratch;
  }

  /** Writes the whole buffer, checking every returned length; a write of 0 bytes is an error. */
  async #writeAll(buffer: Buffer, start: number): Promise<void> {
    let done = 0;
    while (done < buffer.length) {
      const position = this.regular ? start + done : null;
      const { bytesWritten } = await this.#handle.write(
        buffer,
        done,
        buffer.length - done,
        position,
      );
      if (bytesWritten <= 0) {
        throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
      }
      this.#limits.onWrite?.(bytesWritten);
      done += bytesWritten;
    }
  }

  /** After a failed write: remove its partial bytes so the file ends on a whole record. */
  async #cutBackTo(size: number): Promise<void> {
    if (!this.regular) return;
    try {
      await this.#handle.truncate(size);
    } catch {
      // The torn tail stays; --resume finds and removes it (it is not followed by a newline).
    }
  }

  #fail(error: unknown): OutputError {
    this.#failure ??=
      error instanceof OutputError
        ? error
        : new OutputError('VOLLEY_ERR_OUTPUT_WRITE', this.path, 'cannot write output', error);
    return this.#failure;
  }
}

function rejected(error: Error): Promise<void> {
  const promise = Promise.reject(error);
  promise.catch(() => undefined);
  return promise;
}

/**
 * A journal over a stream writer (stdout): same interface, no truncation, no resume. Offsets
 * count bytes written through this object.
 */
export function journalOverWriter(writer: JsonlWriter): JournalFile {
  let end = 0;
  let failure: OutputError | undefined;
  const track = (promise: Promise<void>): Promise<void> => {
    const tracked = promise.catch((error: unknown) => {
      failure ??=
        error instanceof OutputError
          ? error
          : new OutputError('VOLLEY_ERR_OUTPUT_WRITE', writer.path, 'cannot write output', error);
      throw failure;
    });
    tracked.catch(() => undefined);
    return tracked;
  };
  return {
    path: writer.path,
    regular: false,
    get endOffset() {
      return end;
    },
    get writtenBytes() {
      return end;
    },
    get syncedBytes() {
      return end;
    },
    queuedBytes: 0,
    get failure() {
      return failure;
    },
    append(line) {
      const bytes = lineBytes(line);
      const offset = end;
      end += bytes;
      const whole = typeof line === 'string' ? line : line.join('');
      return { offset, bytes, written: track(writer.write(whole)) };
    },
    appendBytes() {
      throw new OutputError(
        'VOLLEY_ERR_OUTPUT_NOT_FILE',
        writer.path,
        'binary output needs a regular file',
      );
    },
    flush: () => track(writer.sync()),
    sync: () => track(writer.sync()),
    close: () => track(writer.close()),
  };
}

/** Options of {@link createSyncTimer}. */
export interface SyncTimerOptions {
  files: () => readonly JournalFile[];
  /** Longest time a written record waits for fdatasync. Default 1000 ms. */
  intervalMs?: number;
  /** Called after every completed sync round (to checkpoint the state file). */
  onSync?: () => Promise<void>;
  /** Called when a sync fails (the files' failure is already set). */
  onError?: (error: unknown) => void;
}

/** A periodic fdatasync of every dirty journal file; see {@link createSyncTimer}. */
export interface SyncTimer {
  /** Syncs every file now (and runs `onSync`); concurrent calls share one round. */
  syncNow(): Promise<void>;
  stop(): void;
}

/**
 * Batched fsync with a bounded window: every `intervalMs`, each file with unsynced bytes is
 * fdatasynced, then `onSync` runs. The timer is unref()ed and rounds never overlap.
 *
 * @example
 * const timer = createSyncTimer({ files: () => [results, errors], onSync: () => saveState() });
 */
export function createSyncTimer(options: SyncTimerOptions): SyncTimer {
  let round: Promise<void> | undefined;
  const syncNow = (): Promise<void> => {
    round ??= (async () => {
      try {
        for (const file of options.files()) {
          if (file.failure === undefined) await file.sync();
        }
        await options.onSync?.();
      } finally {
        round = undefined;
      }
    })();
    return round;
  };
  const timer = setInterval(() => {
    syncNow().catch((error: unknown) => options.onError?.(error));
  }, options.intervalMs ?? 1000);
  timer.unref();
  return {
    syncNow,
    stop: () => clearInterval(timer),
  };
}
