/**
 * The files of a run, all derived from `--output` unless given:
 *
 *   results.jsonl                      results (OpenAI Batch output lines)
 *   results.errors.jsonl               one record per failed line           (--errors)
 *   results.retry.jsonl                the failed requests' input lines     (--retry-file)
 *   results.jsonl.volley-state.json    what the run is, for --resume
 *   results.jsonl.volley-lock          one writer per output
 *   results.jsonl.volley-spill         --order input: records waiting for their turn
 *   results.errors.jsonl.volley-tmp    --resume: the errors file being rewritten
 *
 * No two of them (nor the input) may be the same file, however spelled: see `written`.
 * Standard output and character devices (`-o -`, `/dev/null`) cannot be resumed: no state, lock or
 * spill beside them, and failed lines go into the same stream unless `--errors` names a file.
 */

import { stat } from 'node:fs/promises';
import type { NamedOutput } from '../jsonl/writer.js';
import { compactionTempPath } from './resume.js';

/** Where a run reads and writes. */
export interface RunPaths {
  output: string;
  /** Equal to `output` when errors go into the results stream. */
  errors: string;
  retry: string | undefined;
  /** Undefined when the output cannot be resumed (stdout, devices). */
  state: string | undefined;
  lock: string | undefined;
  /** Undefined for stdout and devices: a temporary file is used there. */
  spill: string | undefined;
  /**
   * Every file the run may write, named by the flag it comes from: `assertDistinctPaths` checks
   * them all, against each other and the input, before anything is read or written.
   */
  written: readonly NamedOutput[];
}

/**
 * Derives the paths of a run. `resumable` is false for `-` and for an existing non-regular file.
 *
 * @example
 * await runPaths('out/results.jsonl', {}) // errors: 'out/results.errors.jsonl', ...
 */
export async function runPaths(
  output: string,
  given: { errors?: string | undefined; retryFile?: string | undefined },
): Promise<RunPaths> {
  const stream = output === '-' || (await isDevice(output));
  // A path no flag named is derived from --output, and messages say so.
  const outputFlag = '-o/--output';
  const errorsFlag = given.errors === undefined ? outputFlag : '-e/--errors';
  const retryFlag = given.retryFile === undefined ? outputFlag : '--retry-file';
  const derived = (flag: string, what: string) => (flag === outputFlag ? { derived: what } : {});
  if (stream) {
    const errors = given.errors ?? output;
    // Failed lines going into the results stream is the design, not a collision.
    const errorsApart = errors !== output;
    return {
      output,
      errors,
      retry: given.retryFile,
      state: undefined,
      lock: undefined,
      spill: undefined,
      written: [
        { path: output, flag: outputFlag },
        ...(errorsApart ? [{ path: errors, flag: errorsFlag }] : []),
        ...(given.retryFile === undefined ? [] : [{ path: given.retryFile, flag: retryFlag }]),
      ],
    };
  }
  const stem = output.replace(/\.(jsonl|ndjson|json)$/i, '');
  const errors = given.errors ?? `${stem}.errors.jsonl`;
  const retry = given.retryFile ?? `${stem}.retry.jsonl`;
  const state = `${output}.volley-state.json`;
  const lock = `${output}.volley-lock`;
  const spill = `${output}.volley-spill`;
  return {
    output,
    errors,
    retry,
    state,
    lock,
    spill,
    written: [
      { path: output, flag: outputFlag },
      { path: errors, flag: errorsFlag, ...derived(errorsFlag, 'its errors file') },
      { path: retry, flag: retryFlag, ...derived(retryFlag, 'its retry file') },
      { path: state, flag: outputFlag, derived: 'its state file' },
      { path: lock, flag: outputFlag, derived: 'its lock file' },
      { path: spill, flag: outputFlag, derived: 'its spill file' },
      {
        path: compactionTempPath(errors),
        flag: errorsFlag,
        derived: 'the temporary copy of its errors file',
      },
    ],
  };
}

async function isDevice(path: string): Promise<boolean> {
  try {
    const st = await stat(path);
    return st.isCharacterDevice() || st.isBlockDevice();
  } catch {
    return false;
  }
}
