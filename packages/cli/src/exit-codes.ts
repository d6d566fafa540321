import { isVolleyError, scrubSecrets } from '@volley/core';
import type { CliErrorCode } from './codes.js';
import { InputReadError } from './jsonl/reader.js';
import { OutputError } from './jsonl/writer.js';

/** Exit codes, as documented in the README and shared by every command. */
export const ExitCode = {
  /** Every line succeeded. */
  OK: 0,
  /** The run finished, but some lines failed (see the errors file). */
  SOME_FAILED: 1,
  /** Usage or input error, a refused resume, or the output is locked: nothing was sent. */
  USAGE: 2,
  /**
   * Stopped: auth, quota, every endpoint down, the first lines all failing with the same permanent
   * error (`--stop-after-same-error`), or stdout/stderr closed by its reader (EPIPE). The rest is
   * pending; resumable.
   */
  STOPPED: 3,
  /**
   * An output file could not be written (disk full, I/O error). Every record already written is
   * whole; the lines in flight stay pending, and `--resume` finishes them once space exists.
   */
  WRITE_FAILED: 4,
  /** SIGINT: drained and stopped; resumable. */
  INTERRUPTED: 130,
  /** SIGTERM: drained and stopped; resumable. */
  TERMINATED: 143,
} as const;

/** An error that ends a command with a given exit code and a one-line message. */
export class CliError extends Error {
  readonly exitCode: number;
  /** A stable `VOLLEY_*` code for scripts (`--json` prints it), from the catalog in codes.ts. */
  readonly code: CliErrorCode | undefined;
  constructor(message: string, exitCode: number, code?: CliErrorCode) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
    this.code = code;
  }
}

/** OS errors that mean the output cannot be written, not that the command was wrong. */
const WRITE_FAILURES = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EFBIG', 'EROFS']);

/**
 * The exit code for an error that ended a command: its own for a {@link CliError}, 4 for a
 * failed write, 2 for other output and input problems and invalid options, 1 otherwise.
 */
export function exitCodeFor(error: unknown): number {
  if (error instanceof CliError) return error.exitCode;
  if (error instanceof OutputError) {
    return error.code === 'VOLLEY_ERR_OUTPUT_WRITE' ? ExitCode.WRITE_FAILED : ExitCode.USAGE;
  }
  const osCode = (error as { code?: unknown } | null)?.code;
  if (typeof osCode === 'string' && WRITE_FAILURES.has(osCode)) return ExitCode.WRITE_FAILED;
  if (error instanceof InputReadError) return ExitCode.USAGE;
  if (isVolleyError(error) && error.code === 'VOLLEY_ERR_INVALID_OPTIONS') return ExitCode.USAGE;
  // `--cluster` whose Redis cannot be reached at start: a configuration to fix; nothing was sent.
  if (isVolleyError(error) && error.code === 'VOLLEY_ERR_CLUSTER_UNAVAILABLE')
    return ExitCode.USAGE;
  return ExitCode.SOME_FAILED;
}

/**
 * `--json`: a command that ended with a coded error prints it as a JSON object on stdout, so
 * scripts get the stable code; the message also goes to stderr from main.ts.
 */
export function printJsonError(error: unknown): void {
  const code = (error as { code?: unknown } | null)?.code;
  if (!(error instanceof Error) || typeof code !== 'string') return;
  process.stdout.write(
    `${JSON.stringify({ version: 1, status: 'error', exitCode: exitCodeFor(error), code, message: scrubSecrets(error.message) })}\n`,
  );
}
