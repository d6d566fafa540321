/**
 * Where `volley embed` writes vectors, in one of three layouts, and how a resume reads them back.
 *
 *   jsonl   results.jsonl      {"id":"doc-1","embedding":[0.0123,...]} per line
 *   npy     vectors.npy        NumPy float32 matrix, row i = the i-th id of vectors.ids.jsonl
 *           vectors.ids.jsonl  one JSON string (an id) per line
 *   f32     vectors.f32        raw little-endian float32 rows, no header; same ids file
 *
 * Every layout is append-only, written through the journal (journal.ts): rows are appended in the
 * order vectors arrive, and a binary row and its id are queued together, so row i always belongs
 * to id line i. A kill can leave one file a little ahead of the other; a resume keeps the rows
 * both files hold whole ({@link loadVectorOutput}) and cuts the rest. The `.npy` header's row
 * count is rewritten in place at every checkpoint, so the file loads as a consistent prefix even
 * while a run is going on or after it was killed.
 */

import { constants as fsConstants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { open, stat } from 'node:fs/promises';
import { endianness } from 'node:os';
import { CliError, ExitCode } from '../exit-codes.js';
import type { JournalFile } from '../jsonl/journal.js';
import { journalOverWriter, openJournalFile } from '../jsonl/journal.js';
import { openError, openJsonlWriter } from '../jsonl/writer.js';
import type { FinishedSet } from '../run/finished-set.js';
import { RecordKind } from '../run/finished-set.js';
import { scanRecords, truncateFile } from '../run/output-scan.js';
import { NPY_HEADER_BYTES, npyHeader, parseNpyHeader } from './npy.js';

/** An output layout; see the module comment. */
export type VectorFormat = 'jsonl' | 'npy' | 'f32';

/** Bytes per vector element. */
const FLOAT_BYTES = 4;

/**
 * The tag stored for a success in the {@link FinishedSet}: vector records carry no request
 * hash, so a resume recognises finished ids, not finished texts.
 */
const SUCCESS_TAG = `batch_req_${'0'.repeat(24)}`;

/** The layout a path implies when `--format` is not given. */
export function vectorFormatOf(path: string): VectorFormat {
  if (/\.npy$/i.test(path)) return 'npy';
  if (/\.(f32|bin|raw)$/i.test(path)) return 'f32';
  return 'jsonl';
}

/** Paths of an embed run: the output, its ids file (binary layouts) and its errors file. */
export interface VectorPaths {
  output: string;
  ids: string | undefined;
  errors: string;
}

/** Default paths: `vectors.npy` → `vectors.ids.jsonl` and `vectors.errors.jsonl`. */
export function vectorPaths(
  output: string,
  format: VectorFormat,
  given: { ids?: string | undefined; errors?: string | undefined },
): VectorPaths {
  const stem = output.replace(/\.(jsonl|ndjson|json|npy|f32|bin|raw)$/i, '');
  return {
    output,
    ids: format === 'jsonl' ? undefined : (given.ids ?? `${stem}.ids.jsonl`),
    errors: given.errors ?? (output === '-' ? '-' : `${stem}.errors.jsonl`),
  };
}

/** Where the outputs stand, read back by {@link loadVectorOutput}. */
export interface VectorOutputState {
  /** Vectors kept from earlier runs. */
  rows: number;
  /** Known once a vector was written (or given by `--dimensions`). */
  dimensions: number | undefined;
  /** Bytes cut off torn or unmatched tails. */
  repairedBytes: number;
}

/**
 * Reads what earlier runs wrote into `finished` (every id with a vector), repairing torn tails:
 * for binary layouts only rows present in both the vectors file and the ids file are kept.
 * `dimensions` is what the state file recorded (raw f32 files have no header to hold it).
 */
export async function loadVectorOutput(
  paths: VectorPaths,
  format: VectorFormat,
  dimensions: number | undefined,
  finished: FinishedSet,
): Promise<VectorOutputState> {
  if (format === 'jsonl') {
    const scan = await scanRecords(
      paths.output,
      (line) => {
        const id = jsonlRecordId(line);
        if (id === undefined) return false;
        finished.add(id, SUCCESS_TAG, RecordKind.SUCCESS);
        return true;
      },
      { repair: true },
    );
    return { rows: scan.records, dimensions, repairedBytes: scan.repairedBytes };
  }
  const idsPath = paths.ids as string;
  const dataStart = format === 'npy' ? NPY_HEADER_BYTES : 0;
  const size = await sizeOf(paths.output);
  let dims = dimensions;
  if (format === 'npy' && size >= NPY_HEADER_BYTES) {
    let handle: FileHandle;
    try {
      handle = await open(paths.output, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    } catch (error) {
      throw openError(paths.output, error);
    }
    try {
      const head = Buffer.alloc(NPY_HEADER_BYTES);
      await handle.read(head, 0, NPY_HEADER_BYTES, 0);
      const parsed = parseNpyHeader(head);
      if (parsed === undefined) {
        throw new CliError(
          `${paths.output}: not a .npy file written by Volley; restore it or start over with --overwrite`,
          ExitCode.USAGE,
          'VOLLEY_ERR_RESUME_CORRUPT',
        );
      }
      dims = parsed.dimensions;
    } finally {
      await handle.close();
    }
  }
  const rowBytes = (dims ?? 0) * FLOAT_BYTES;
  const rowsInFile = rowBytes === 0 ? 0 : Math.floor(Math.max(0, size - dataStart) / rowBytes);
  let idLines = 0;
  let cutIdsAt: number | undefined;
  const scan = await scanRecords(
    idsPath,
    (line, offset) => {
      const id = idLine(line);
      if (id === undefined) return false;
      if (idLines < rowsInFile) finished.add(id, SUCCESS_TAG, RecordKind.SUCCESS);
      else cutIdsAt ??= offset; // an id whose row was never written: sent again
      idLines++;
      return true;
    },
    { repair: true },
  );
  const rows = Math.min(rowsInFile, idLines);
  let repairedBytes = scan.repairedBytes;
  if (cutIdsAt !== undefined) repairedBytes += await truncateTo(idsPath, scan.size, cutIdsAt);
  // A header cut short is rewritten whole when the sink opens.
  const keepBytes = size < dataStart ? 0 : dataStart + rows * rowBytes;
  repairedBytes += await truncateTo(paths.output, size, keepBytes);
  return { rows, dimensions: dims, repairedBytes };
}

/** An open output; see {@link openVectorSink}. */
export interface VectorSink {
  readonly format: VectorFormat;
  /** Set by `--dimensions`, by the file being resumed, or by the first vector. */
  readonly dimensions: number | undefined;
  /** Vectors in the output, earlier runs' included (queued ones too). */
  readonly rows: number;
  /** The journal files, for the sync timer and the state file. */
  readonly files: readonly JournalFile[];
  /** Bytes queued and not yet written, for backpressure. */
  readonly queuedBytes: number;
  /** Why this vector cannot join the output (wrong length, or not finite for JSON), if so. */
  problemWith(vector: Float32Array): string | undefined;
  /** Appends a vector (check {@link problemWith} first); resolves once it is in the OS. */
  write(id: string, vector: Float32Array): Promise<void>;
  /** Rewrites the `.npy` header for the rows written so far (called after each sync). */
  checkpoint(): Promise<void>;
  /** Flushes, syncs, writes the final header, closes. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link openVectorSink}. */
export interface OpenVectorSinkOptions {
  paths: VectorPaths;
  format: VectorFormat;
  /** From `--dimensions` or the resumed output. */
  dimensions: number | undefined;
  /** Rows already in the output (resume: append after them). */
  rows: number;
  resuming: boolean;
  overwrite: boolean;
}

/**
 * Opens the output files by the journal's rules (0600, never through a symlink, never truncating
 * without `overwrite`).
 *
 * @example
 * const sink = await openVectorSink({ paths, format: 'npy', dimensions: undefined, rows: 0, resuming: false, overwrite: false });
 * if (sink.problemWith(vector) === undefined) await sink.write('doc-1', vector);
 * await sink.close();
 */
export async function openVectorSink(options: OpenVectorSinkOptions): Promise<VectorSink> {
  const mode = options.resuming ? { append: true } : { overwrite: options.overwrite };
  if (options.format === 'jsonl') {
    const { output } = options.paths;
    const file =
      output === '-'
        ? journalOverWriter(await openJsonlWriter('-'))
        : await openJournalFile(output, mode);
    return new JsonlSink(file, options.dimensions, options.rows);
  }
  if (endianness() !== 'LE') {
    throw new CliError(
      'binary vector output is little-endian float32; this machine is big-endian: write JSONL',
      ExitCode.USAGE,
      'VOLLEY_ERR_USAGE',
    );
  }
  const vectors = await openJournalFile(options.paths.output, mode);
  let ids: JournalFile;
  try {
    ids = await openJournalFile(options.paths.ids as string, mode);
  } catch (error) {
    await vectors.close().catch(() => undefined);
    throw error;
  }
  // The header is rewritten in place; the journal's descriptor may be in append mode.
  const header =
    options.format === 'npy' && vectors.regular
      ? await open(options.paths.output, fsConstants.O_WRONLY | fsConstants.O_NOFOLLOW)
      : undefined;
  return new BinarySink(options.format, vectors, ids, header, options.dimensions, options.rows);
}

abstract class BaseSink {
  protected dims: number | undefined;
  protected count: number;

  constructor(dimensions: number | undefined, rows: number) {
    this.dims = dimensions;
    this.count = rows;
  }

  get dimensions(): number | undefined {
    return this.dims;
  }
  get rows(): number {
    return this.count;
  }

  problemWith(vector: Float32Array): string | undefined {
    if (this.dims !== undefined && vector.length !== this.dims) {
      return `the server returned ${vector.length} dimensions; this output holds ${this.dims}`;
    }
    if (vector.length === 0) return 'the server returned an empty vector';
    return undefined;
  }
}

class JsonlSink extends BaseSink implements VectorSink {
  readonly format = 'jsonl' as const;
  readonly files: readonly JournalFile[];
  readonly #file: JournalFile;

  constructor(file: JournalFile, dimensions: number | undefined, rows: number) {
    super(dimensions, rows);
    this.#file = file;
    this.files = [file];
  }

  get queuedBytes(): number {
    return this.#file.queuedBytes;
  }

  override problemWith(vector: Float32Array): string | undefined {
    const problem = super.problemWith(vector);
    if (problem !== undefined) return problem;
    for (const value of vector) {
      if (!Number.isFinite(value)) return 'the vector holds NaN or Infinity, which JSON cannot';
    }
    return undefined;
  }

  write(id: string, vector: Float32Array): Promise<void> {
    this.dims ??= vector.length;
    this.count++;
    // Float32Array#join prints each float32 widened to a double: parsing it back and rounding
    // to float32 gives the exact value the server sent.
    return this.#file.append(`{"id":${JSON.stringify(id)},"embedding":[${vector.join(',')}]}`)
      .written;
  }

  checkpoint(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return this.#file.close();
  }
}

class BinarySink extends BaseSink implements VectorSink {
  readonly format: VectorFormat;
  readonly files: readonly JournalFile[];
  readonly #vectors: JournalFile;
  readonly #ids: JournalFile;
  readonly #header: FileHandle | undefined;
  #closing: Promise<void> | undefined;

  constructor(
    format: VectorFormat,
    vectors: JournalFile,
    ids: JournalFile,
    header: FileHandle | undefined,
    dimensions: number | undefined,
    rows: number,
  ) {
    super(dimensions, rows);
    this.format = format;
    this.#vectors = vectors;
    this.#ids = ids;
    this.#header = header;
    this.files = [vectors, ids];
    // A fresh .npy (or one cut back to less than its header) starts with its header.
    if (format === 'npy' && vectors.endOffset < NPY_HEADER_BYTES && dimensions !== undefined) {
      vectors.appendBytes(npyHeader(rows, dimensions));
    }
  }

  get queuedBytes(): number {
    return this.#vectors.queuedBytes + this.#ids.queuedBytes;
  }

  write(id: string, vector: Float32Array): Promise<void> {
    if (this.dims === undefined) {
      this.dims = vector.length;
      if (this.format === 'npy') this.#vectors.appendBytes(npyHeader(0, this.dims));
    }
    this.count++;
    const row = this.#vectors.appendBytes(
      new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength),
    );
    const entry = this.#ids.append(JSON.stringify(id));
    return Promise.all([row.written, entry.written]).then(() => undefined);
  }

  async checkpoint(): Promise<void> {
    if (this.#header === undefined || this.dims === undefined) return;
    const written = this.#vectors.writtenBytes - NPY_HEADER_BYTES;
    if (written < 0) return;
    const rows = Math.floor(written / (this.dims * FLOAT_BYTES));
    await this.#header.write(npyHeader(rows, this.dims), 0, NPY_HEADER_BYTES, 0);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        const results = await Promise.allSettled([this.#vectors.close(), this.#ids.close()]);
        const failed = results.find((r) => r.status === 'rejected');
        if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
        if (this.format === 'npy' && this.dims === undefined && this.#header !== undefined) {
          // Nothing was embedded: still a loadable (empty) matrix.
          this.dims = 0;
          await this.#header.write(npyHeader(0, 0), 0, NPY_HEADER_BYTES, 0);
        }
        await this.checkpoint();
        await this.#header?.datasync();
      } finally {
        await this.#header?.close().catch(() => undefined);
      }
    })();
    return this.#closing;
  }
}

/** The id of a JSONL vector record, read from its head without parsing the floats. */
function jsonlRecordId(line: Buffer): string | undefined {
  if (line.length < 20 || line[line.length - 1] !== 0x7d) return undefined; // ends with }
  const head = /^\{"id":("(?:[^"\\]|\\.)*"),"embedding":\[/.exec(
    line.toString('utf8', 0, Math.min(line.length, 4096)),
  );
  if (head === null) return undefined;
  try {
    return JSON.parse(head[1] as string) as string;
  } catch {
    return undefined;
  }
}

function idLine(line: Buffer): string | undefined {
  try {
    const id: unknown = JSON.parse(line.toString('utf8'));
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return 0;
    throw error;
  }
}

/** Cuts `path` (of `size` bytes) to `keep` bytes; returns the bytes removed. */
async function truncateTo(path: string, size: number, keep: number): Promise<number> {
  if (keep >= size) return 0;
  await truncateFile(path, keep);
  return size - keep;
}
