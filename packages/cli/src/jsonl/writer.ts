/**
 * JSONL output: one record per `write`, owner-only files, never through a symlink, never
 * truncating a file the user did not ask to overwrite.
 *
 * Backpressure is the promise: `write` resolves as soon as the stream accepts the line and waits
 * for 'drain' only when its buffer is full, so a fast producer is slowed to the disk's pace
 * without one round trip per line. Errors are sticky: after the first failure (ENOSPC, EPIPE,
 * EIO) every later `write` and `close` rejects with the same coded error.
 */

import { constants as fsConstants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { lstat, open, realpath, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import type { OutputErrorCode } from '../codes.js';
import { syncDirectory } from '../sync-directory.js';

/**
 * Coded error for output files. `code` is stable; `osCode` is the OS error (`ENOSPC`, `EPIPE`)
 * when there is one. The codes are in the CLI's catalog, codes.ts.
 */
export class OutputError extends Error {
  override readonly name = 'OutputError';
  readonly code: OutputErrorCode;
  readonly path: string;
  readonly osCode: string | undefined;

  constructor(code: OutputErrorCode, path: string, message: string, cause?: unknown) {
    const osCode = errnoCode(cause);
    super(
      `${message}: ${path === '-' ? 'stdout' : JSON.stringify(path)}${osCode === undefined ? '' : ` (${osCode})`}`,
      cause === undefined ? undefined : { cause },
    );
    this.code = code;
    this.path = path;
    this.osCode = osCode;
  }
}

/** An open JSONL output; see {@link openJsonlWriter}. */
export interface JsonlWriter {
  /**
   * Appends `line + '\n'` as one write. Resolves when the stream has accepted it (waiting for
   * 'drain' if its buffer is full); rejects with a coded {@link OutputError}.
   */
  write(line: string): Promise<void>;
  /** Waits until every accepted line is handed to the OS, then fsyncs (files only). */
  sync(): Promise<void>;
  /** Flushes, fsyncs and closes. Idempotent: every call returns the same promise. */
  close(): Promise<void>;
  readonly path: string;
  /** Lines accepted by `write`; all of them are on disk once `close()` has resolved. */
  readonly linesWritten: number;
}

/** Options of {@link openJsonlWriter}. */
export interface OpenJsonlWriterOptions {
  /** Truncate an existing non-empty file. */
  overwrite?: boolean;
  /** Append to an existing file (resume). Exclusive with `overwrite`. */
  append?: boolean;
  /** The stream `'-'` writes to. Default `process.stdout`; tests inject their own. */
  stdout?: Writable;
}

/**
 * Opens a JSONL output. `'-'` is stdout (never closed by `close`). A file is created with mode
 * 0600, opened with O_NOFOLLOW (a symlink at the path is refused, so a planted link cannot
 * redirect results), and an existing non-empty regular file is refused unless `overwrite`
 * (truncate) or `append` (resume) is set. Character devices (`/dev/null`) are allowed.
 *
 * @example
 * await assertDistinctPaths(inputPath, [{ path: outPath, flag: '-o/--output' }]);
 * const out = await openJsonlWriter(outPath, { overwrite: flags.overwrite });
 * await out.write(JSON.stringify(record));
 * await out.close();
 */
export async function openJsonlWriter(
  path: string,
  options: OpenJsonlWriterOptions = {},
): Promise<JsonlWriter> {
  if (options.overwrite === true && options.append === true) {
    throw new OutputError('VOLLEY_ERR_OUTPUT_OPTIONS', path, 'overwrite and append are exclusive');
  }
  if (path === '-') {
    return createWriter(path, options.stdout ?? process.stdout, undefined);
  }
  const { handle, regular } = await openOutputFile(path, options);
  // autoClose off: close() owns the descriptor, so it can fsync between 'finish' and close.
  const stream = handle.createWriteStream({ autoClose: false, encoding: 'utf8' });
  return createWriter(path, stream, { handle, regular });
}

/**
 * Opens an output file by the rules of {@link openJsonlWriter} (0600, O_NOFOLLOW, no silent
 * truncation, character devices allowed) and returns the raw handle; `regular` is false for
 * character devices. The journal writes through it.
 */
export async function openOutputFile(
  path: string,
  options: OpenJsonlWriterOptions,
): Promise<{ handle: FileHandle; regular: boolean }> {
  const { O_WRONLY, O_CREAT, O_EXCL, O_APPEND, O_NOFOLLOW, O_NONBLOCK } = fsConstants;
  const append = options.append === true ? O_APPEND : 0;
  let handle: FileHandle;
  let created = true;
  try {
    // Try to create first: then we know the file is new and ours, and its mode is 0600.
    handle = await open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | append, 0o600);
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw openError(path, err);
    created = false;
    try {
      // O_NONBLOCK: opening a FIFO with no reader fails (ENXIO) instead of hanging; the fstat
      // below refuses FIFOs anyway. It does not affect regular files.
      handle = await open(path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | append);
    } catch (err2) {
      throw openError(path, err2);
    }
  }
  try {
    const st = await handle.stat();
    if (st.isCharacterDevice()) return { handle, regular: false };
    if (!st.isFile()) {
      throw new OutputError('VOLLEY_ERR_OUTPUT_NOT_FILE', path, 'output is not a regular file');
    }
    if (!created && st.size > 0 && options.append !== true) {
      if (options.overwrite !== true) {
        throw new OutputError(
          'VOLLEY_ERR_OUTPUT_EXISTS',
          path,
          'output exists and is not empty; pass --overwrite to replace it or --resume to continue',
        );
      }
      await handle.truncate(0);
    }
    // A file we replace gets the same owner-only mode as one we create; appending to an existing
    // file (resume) keeps the mode its owner chose.
    if (!created && options.append !== true) await handle.chmod(0o600);
    if (created) await syncDirectory(path);
    return { handle, regular: true };
  } catch (err) {
    await handle.close().catch(() => undefined);
    if (err instanceof OutputError) throw err;
    throw openError(path, err);
  }
}

/**
 * The coded error for an output that cannot be opened: every open of an output (a fresh run's,
 * a resume's repair) goes through it, so one cause gives one code.
 */
export function openError(path: string, err: unknown): OutputError {
  const code = errnoCode(err);
  // O_NOFOLLOW on a symlink fails with ELOOP (Linux) or EMLINK (FreeBSD).
  if (code === 'ELOOP' || code === 'EMLINK') return symlinkError(path, err);
  if (code === 'EISDIR' || code === 'ENXIO') {
    return new OutputError('VOLLEY_ERR_OUTPUT_NOT_FILE', path, 'output is not a regular file', err);
  }
  return new OutputError('VOLLEY_ERR_OUTPUT_OPEN', path, 'cannot open output', err);
}

function symlinkError(path: string, cause?: unknown): OutputError {
  return new OutputError(
    'VOLLEY_ERR_OUTPUT_SYMLINK',
    path,
    'output path is a symbolic link',
    cause,
  );
}

function createWriter(
  path: string,
  stream: Writable,
  file: { handle: FileHandle; regular: boolean } | undefined,
): JsonlWriter {
  let failure: OutputError | undefined;
  let closing: Promise<void> | undefined;
  let linesWritten = 0;
  // Writes whose callback has not run yet; `idle` waiters resume when it reaches 0.
  let pending = 0;
  let idleWaiters: Array<() => void> = [];
  let drain: Promise<void> | undefined;

  const fail = (err: unknown): OutputError => {
    failure ??=
      err instanceof OutputError
        ? err
        : new OutputError('VOLLEY_ERR_OUTPUT_WRITE', path, 'cannot write output', err);
    return failure;
  };
  const wakeIdle = (): void => {
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const wake of waiters) wake();
  };
  const onError = (err: Error): void => {
    fail(err);
    wakeIdle();
  };
  stream.on('error', onError);

  const onWritten = (err?: Error | null): void => {
    pending--;
    if (err) fail(err);
    if (pending === 0 || failure !== undefined) wakeIdle();
  };

  const waitDrain = (): Promise<void> => {
    // One shared promise: many concurrent writers wait on the same 'drain'.
    drain ??= new Promise<void>((resolveDrain, rejectDrain) => {
      const settle = (): void => {
        stream.off('drain', onDrain);
        stream.off('error', onDrainError);
        stream.off('close', onDrainError);
        drain = undefined;
      };
      const onDrain = (): void => {
        settle();
        resolveDrain();
      };
      const onDrainError = (err?: unknown): void => {
        settle();
        rejectDrain(fail(err ?? new Error('stream closed before drain')));
      };
      stream.on('drain', onDrain);
      stream.on('error', onDrainError);
      stream.on('close', onDrainError);
    });
    return drain;
  };

  const waitIdle = (): Promise<void> =>
    pending === 0 || failure !== undefined
      ? Promise.resolve()
      : new Promise<void>((wake) => idleWaiters.push(wake));

  const doClose = async (): Promise<void> => {
    try {
      if (file === undefined) {
        // stdout is shared with the rest of the process: flush our lines, never end it.
        await waitIdle();
      } else if (failure === undefined) {
        await new Promise<void>((done) => {
          stream.end(() => done());
          // end()'s callback does not run if the stream errors first.
          stream.once('error', () => done());
          stream.once('close', () => done());
        });
        if (failure === undefined && file.regular) {
          try {
            await file.handle.sync();
          } catch (err) {
            fail(err);
          }
        }
      }
    } finally {
      stream.off('error', onError);
      if (file !== undefined) {
        // The descriptor is ours (autoClose off); destroy() only releases the stream.
        stream.destroy();
        try {
          await file.handle.close();
        } catch (err) {
          fail(err);
        }
      }
    }
    if (failure !== undefined) throw failure;
  };

  return {
    path,
    get linesWritten() {
      return linesWritten;
    },
    write(line) {
      if (closing !== undefined) {
        return Promise.reject(
          new OutputError('VOLLEY_ERR_OUTPUT_CLOSED', path, 'write after close'),
        );
      }
      if (failure !== undefined) return Promise.reject(failure);
      if (line.includes('\n')) {
        return Promise.reject(
          new OutputError(
            'VOLLEY_ERR_OUTPUT_INVALID_LINE',
            path,
            'a JSONL record cannot contain a newline',
          ),
        );
      }
      pending++;
      // One write call per record: the stream never interleaves it with another record.
      const accepted = stream.write(`${line}\n`, onWritten);
      linesWritten++;
      return accepted ? Promise.resolve() : waitDrain();
    },
    async sync() {
      await waitIdle();
      if (failure !== undefined) throw failure;
      if (file?.regular === true && closing === undefined) {
        try {
          await file.handle.sync();
        } catch (err) {
          throw fail(err);
        }
      }
    },
    close() {
      closing ??= doClose();
      return closing;
    },
  };
}

/** An output path and the flag it comes from, for the messages of {@link assertDistinctPaths}. */
export interface NamedOutput {
  path: string;
  /** The flag that names it, e.g. `-o/--output`. */
  flag: string;
  /** What it is when the flag's path only implies it, e.g. `its state file`. */
  derived?: string;
}

/**
 * The checks every output path passes before anything is read or written, fresh run or resume:
 *
 *   - no output is the input file, and no two outputs are the same file (resolved real paths and
 *     device + inode, so `./r.jsonl` and `r.jsonl`, a symlinked directory or a hard link all
 *     count as the same) ─► VOLLEY_ERR_OUTPUT_SAME_AS_INPUT / VOLLEY_ERR_OUTPUT_CONFLICT
 *   - no output path is itself a symbolic link ─► VOLLEY_ERR_OUTPUT_SYMLINK, as when it is opened
 *
 * `'-'` is skipped for the input; two `'-'` outputs conflict, so a stream shared on purpose
 * (errors into the results stream) is listed once. Outputs that do not exist yet are compared
 * by their resolved directory.
 *
 * @example
 * await assertDistinctPaths('batch.jsonl', [
 *   { path: 'results.jsonl', flag: '-o/--output' },
 *   { path: 'results.jsonl.volley-state.json', flag: '-o/--output', derived: 'its state file' },
 * ]);
 */
export async function assertDistinctPaths(
  inputPath: string,
  outputs: readonly NamedOutput[],
): Promise<void> {
  const input = inputPath === '-' ? undefined : await identify(inputPath);
  const seen: Array<{ output: NamedOutput; id: FileIdentity }> = [];
  for (const output of outputs) {
    const id = await identify(output.path);
    if (input !== undefined && sameFile(input, id)) {
      throw new OutputError(
        'VOLLEY_ERR_OUTPUT_SAME_AS_INPUT',
        output.path,
        `${describeOutput(output, false)} names the input file ${JSON.stringify(inputPath)}`,
      );
    }
    const other = seen.find((s) => sameFile(s.id, id));
    if (other !== undefined) {
      throw new OutputError(
        'VOLLEY_ERR_OUTPUT_CONFLICT',
        output.path,
        `${describeOutput(output, false)} names the same file as ${describeOutput(other.output, true)}`,
      );
    }
    seen.push({ output, id });
  }
  // After the comparison: a link to another output is reported as the conflict it is.
  for (const { output, id } of seen) {
    if (id.link === true) throw symlinkError(output.path);
  }
}

/** `--retry-file`, `-o/--output (its state file)`; with the path when `withPath` (the error adds it). */
function describeOutput(output: NamedOutput, withPath: boolean): string {
  const path = withPath ? ` ${output.path === '-' ? 'stdout' : JSON.stringify(output.path)}` : '';
  return output.derived === undefined
    ? `${output.flag}${path}`
    : `${output.flag} (${output.derived}${path})`;
}

interface FileIdentity {
  real: string;
  dev?: number;
  ino?: number;
  /** The path itself is a symbolic link (its directories may be reached through links). */
  link?: boolean;
}

async function identify(path: string): Promise<FileIdentity> {
  if (path === '-') return { real: '-' };
  let link = false;
  try {
    link = (await lstat(path)).isSymbolicLink();
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw openError(path, err);
  }
  try {
    const real = await realpath(path);
    const st = await stat(real);
    return { real, dev: st.dev, ino: st.ino, link };
  } catch (err) {
    // A dangling or looping link is still a link: refused as one below.
    if (!link && errnoCode(err) !== 'ENOENT') throw openError(path, err);
  }
  // Not there yet: resolve the directory (it may itself be reached through a symlink).
  const absolute = resolve(path);
  try {
    return { real: resolve(await realpath(dirname(absolute)), basename(absolute)), link };
  } catch {
    return { real: absolute, link };
  }
}

function sameFile(a: FileIdentity, b: FileIdentity): boolean {
  if (a.real === b.real) return true;
  return a.dev !== undefined && a.dev === b.dev && a.ino === b.ino;
}

function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const { code } = err as { code: unknown };
    if (typeof code === 'string') return code;
  }
  return undefined;
}
