/**
 * The state file's writer for one batch command: saves are serialized (a checkpoint from the
 * sync timer and the final save never race), each stamps the status and the time, and a failing
 * save warns once. The previous state stays valid when one fails: resuming reads the records,
 * not these counts, so a failed save is a warning, never the end of the run.
 */

import type { RunState, RunStatus } from '../run/state.js';
import { writeRunState } from '../run/state.js';

/** See {@link createStateWriter}. */
export interface StateWriter {
  /** Refreshes and writes the state with `status`; resolves once written (or warned about). */
  save(status: RunStatus): Promise<void>;
}

/**
 * Creates the writer of `state` at `path`; `refresh` copies the command's counters into it just
 * before each write. Without a path (`-o -`), saves do nothing.
 *
 * @example
 * const writer = createStateWriter(paths.state, state, (s) => (s.counts = counts()), log);
 * await writer.save('running');
 */
export function createStateWriter(
  path: string | undefined,
  state: RunState | undefined,
  refresh: (state: RunState) => void,
  log: (message: string) => void,
): StateWriter {
  let writes = Promise.resolve();
  let warned = false;
  return {
    save(status) {
      if (path === undefined || state === undefined) return Promise.resolve();
      writes = writes.then(async () => {
        state.status = status;
        state.updatedAt = new Date().toISOString();
        refresh(state);
        try {
          await writeRunState(path, state);
        } catch (error) {
          if (!warned) {
            warned = true;
            log(`cannot update the state file: ${(error as Error).message}`);
          }
        }
      });
      return writes;
    },
  };
}
