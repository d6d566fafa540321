/**
 * Whether a batch command starts afresh, resumes, or refuses: the rule shared by `volley run`
 * and `volley embed`, so that existing results are never silently replaced or mixed.
 */

import { stat } from 'node:fs/promises';
import { CliError, ExitCode } from '../exit-codes.js';
import type { RunState } from './state.js';

/** What the user asked for and what is on disk. */
export interface StartQuestion {
  resume: boolean;
  overwrite: boolean;
  /** The state file's path and what it holds (undefined when absent). */
  statePath: string;
  prior: RunState | undefined;
  /** Output files that exist and are not empty. */
  existing: string[];
}

/**
 * True to resume, false to start afresh; throws a usage error (exit 2) when outputs exist and
 * neither `--resume` nor `--overwrite` was given, or `--resume` finds outputs without a state
 * file (not written by Volley).
 */
export function shouldResume(question: StartQuestion): boolean {
  const { prior, existing, statePath } = question;
  if (question.resume) {
    if (prior !== undefined) return true;
    if (existing.length > 0) {
      throw new CliError(
        `cannot resume: ${existing.join(', ')} exist${existing.length === 1 ? 's' : ''} but ${statePath} does not (not written by a Volley run?); start over with --overwrite`,
        ExitCode.USAGE,
        'VOLLEY_ERR_RESUME_NO_STATE',
      );
    }
    return false;
  }
  if (!question.overwrite && (prior !== undefined || existing.length > 0)) {
    const found = [...existing, ...(prior === undefined ? [] : [statePath])];
    throw new CliError(
      `${found.join(', ')} already exist${found.length === 1 ? 's' : ''}: pass --resume to continue that run, or --overwrite to start over`,
      ExitCode.USAGE,
      'VOLLEY_ERR_OUTPUT_EXISTS',
    );
  }
  return false;
}

/**
 * Whether a run being resumed has recorded nothing yet (no record counted, its output files
 * empty). A changed configuration then mixes nothing: a run stopped at once by a wrong
 * `--base-url` resumes with the right one.
 */
export function recordedNothing(prior: RunState, existing: string[]): boolean {
  const { succeeded, failed, invalid } = prior.counts;
  return succeeded + failed + invalid === 0 && existing.length === 0;
}

/** The paths among these that are non-empty regular files. */
export async function nonEmptyFiles(paths: Array<string | undefined>): Promise<string[]> {
  const found: string[] = [];
  for (const path of new Set(paths)) {
    if (path === undefined || path === '-') continue;
    try {
      const st = await stat(path);
      if (st.isFile() && st.size > 0) found.push(path);
    } catch {
      // Absent.
    }
  }
  return found;
}
