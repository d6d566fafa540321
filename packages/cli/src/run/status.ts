/**
 * How a batch command ends: its status (kept in the state file) and its exit code, from what
 * happened, in one order of precedence shared by `volley run` and `volley embed`.
 */

import { ExitCode } from '../exit-codes.js';
import type { StopSignal } from './signals.js';
import type { RunStatus } from './state.js';

/** What happened during a pass, as far as its ending is concerned. */
export interface PassEvents {
  /** stdout or stderr was closed by its reader (EPIPE) with lines left pending. */
  outputClosed: boolean;
  /** An output file could not be written. */
  writeFailed: boolean;
  /** The first stop signal received. */
  interrupted: StopSignal | undefined;
  /** `--strict` met a bad line. */
  strictStop: boolean;
  /** Lines left pending: endpoints stopped (auth, quota), or the input changed under the run. */
  stopped: boolean;
  /** Failed and bad lines, an earlier run's included: the exit code describes the whole batch. */
  failures: number;
}

/**
 * A closed stdout or stderr (the cause of any failed write to it) outranks a write failure, which
 * outranks a signal, which outranks a strict stop, then a stop, then failures.
 *
 * @example
 * runEnding({ outputClosed: false, writeFailed: false, interrupted: undefined, strictStop: false, stopped: false, failures: 2 })
 * // { status: 'finished-with-errors', exitCode: 1 }
 */
export function runEnding(events: PassEvents): { status: RunStatus; exitCode: number } {
  // Resumable like an interrupt, but no signal to echo in the exit code: 141 would read as a
  // crash. Exit 3, status stopped.
  if (events.outputClosed) return { status: 'stopped', exitCode: ExitCode.STOPPED };
  if (events.writeFailed) return { status: 'write-failed', exitCode: ExitCode.WRITE_FAILED };
  if (events.interrupted !== undefined) {
    return {
      status: 'interrupted',
      exitCode: events.interrupted === 'SIGINT' ? ExitCode.INTERRUPTED : ExitCode.TERMINATED,
    };
  }
  if (events.strictStop) return { status: 'stopped', exitCode: ExitCode.USAGE };
  if (events.stopped) return { status: 'stopped', exitCode: ExitCode.STOPPED };
  if (events.failures > 0)
    return { status: 'finished-with-errors', exitCode: ExitCode.SOME_FAILED };
  return { status: 'finished', exitCode: ExitCode.OK };
}
