/**
 * The files of a run, all derived from `--output` unless given:
 *
 *   results.jsonl                      results (OpenAI Batch output lines)
 *   results.errors.jsonl               one record per failed line           (--errors)
 *   results.retry.jsonl                the failed requests' input lines     (--retry-file)
 *   results.jsonl.volley-state.json    what the run is, for --resume
 *   results.jsonl.volley-lock          one writer per output
 *   results.jsonl.volley-spill         --order input: records waiting for their turn
 *
 * Standard output and character devices (`-o -`, `/dev/null`) cannot be resumed: no state, lock or
 * spill beside them, and failed lines go into the same stream unless `--errors` names a file.
 */

import { stat } from 'node:fs/promises';

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
  if (stream) {
    return {
      output,
      errors: given.errors ?? output,
      retry: given.retryFile,
      state: undefined,
      lock: undefined,
      spill: undefined,
    };
  }
  const stem = output.replace(/\.(jsonl|ndjson|json)$/i, '');
  return {
    output,
    errors: given.errors ?? `${stem}.errors.jsonl`,
    retry: given.retryFile ?? `${stem}.retry.jsonl`,
    state: `${output}.volley-state.json`,
    lock: `${output}.volley-lock`,
    spill: `${output}.volley-spill`,
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
