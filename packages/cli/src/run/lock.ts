/**
 * One writer per output: a lock file (`<output>.volley-lock`) created with O_EXCL, holding the
 * owner's pid, host and process start time.
 *
 * A lock left by a killed run (kill -9 cannot clean up) is stale when its process is gone. On the
 * same host that is checked with `kill(pid, 0)` and, on Linux, the process start time from
 * `/proc/<pid>/stat`, so a recycled pid is not mistaken for the old owner. A lock from another host
 * (a shared filesystem) is never broken automatically. Node has no flock(2); O_EXCL on a local
 * filesystem is atomic, which is what this needs.
 */

import { constants as fsConstants } from 'node:fs';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { CliError, ExitCode } from '../exit-codes.js';

/** A held lock; see {@link acquireRunLock}. */
export interface RunLock {
  readonly path: string;
  /** Removes the lock if it is still ours. Idempotent; never throws. */
  release(): Promise<void>;
}

interface LockContent {
  pid: number;
  host: string;
  procStart: string | null;
  startedAt: string;
}

/** A lock file this young with no readable content is being written by its owner right now. */
const FRESH_LOCK_MS = 10_000;

/**
 * Takes the lock for an output, breaking a stale one (reported through `notice`). Throws a
 * `VOLLEY_ERR_OUTPUT_LOCKED` {@link CliError} (exit 2) when another live run holds it.
 *
 * @example
 * const lock = await acquireRunLock(`${output}.volley-lock`, (m) => progress.log(m));
 * try { ... } finally { await lock.release(); }
 */
export async function acquireRunLock(
  path: string,
  notice: (message: string) => void,
): Promise<RunLock> {
  const mine: LockContent = {
    pid: process.pid,
    host: hostname(),
    procStart: await processStartTime(process.pid),
    startedAt: new Date().toISOString(),
  };
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fsConstants;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
      try {
        await handle.writeFile(`${JSON.stringify(mine)}\n`);
      } finally {
        await handle.close();
      }
      return lockHandle(path, mine);
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'EEXIST') {
        throw new CliError(
          `cannot create the lock file ${JSON.stringify(path)}: ${(error as Error).message}`,
          ExitCode.USAGE,
          'VOLLEY_ERR_OUTPUT_OPEN',
        );
      }
    }
    const holder = await readLock(path);
    if (holder === 'gone') continue;
    if (holder === 'fresh' || (await isAlive(holder))) {
      const who =
        typeof holder === 'object'
          ? `another run (pid ${holder.pid} on ${holder.host}, since ${holder.startedAt})`
          : 'another run';
      throw new CliError(
        `${who} is writing this output; if no such run exists, remove ${JSON.stringify(path)}`,
        ExitCode.USAGE,
        'VOLLEY_ERR_OUTPUT_LOCKED',
      );
    }
    notice(
      holder === 'unreadable'
        ? `removing an unreadable stale lock ${path}`
        : `removing the stale lock of pid ${holder.pid} (no longer running)`,
    );
    await unlink(path).catch(() => undefined);
  }
  throw new CliError(
    `could not take the lock ${JSON.stringify(path)}`,
    ExitCode.USAGE,
    'VOLLEY_ERR_OUTPUT_LOCKED',
  );
}

function lockHandle(path: string, mine: LockContent): RunLock {
  let released: Promise<void> | undefined;
  return {
    path,
    release() {
      released ??= (async () => {
        const holder = await readLock(path).catch(() => 'gone' as const);
        if (typeof holder === 'object' && holder.pid === mine.pid && holder.host === mine.host) {
          await unlink(path).catch(() => undefined);
        }
      })();
      return released;
    },
  };
}

async function readLock(path: string): Promise<LockContent | 'gone' | 'fresh' | 'unreadable'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return 'gone';
    throw error;
  }
  try {
    const content = JSON.parse(text) as Partial<LockContent>;
    if (typeof content.pid === 'number' && typeof content.host === 'string') {
      return {
        pid: content.pid,
        host: content.host,
        procStart: typeof content.procStart === 'string' ? content.procStart : null,
        startedAt: String(content.startedAt ?? 'unknown'),
      };
    }
  } catch {
    // Fall through: empty or partial.
  }
  // Created but not yet written (the owner is between open and write), or left empty by a crash.
  try {
    const age = Date.now() - (await stat(path)).mtimeMs;
    return age < FRESH_LOCK_MS ? 'fresh' : 'unreadable';
  } catch {
    return 'gone';
  }
}

async function isAlive(holder: LockContent | 'unreadable'): Promise<boolean> {
  if (holder === 'unreadable') return false;
  // Another host's process cannot be checked from here: treat the lock as held.
  if (holder.host !== hostname()) return true;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ESRCH') return false;
  }
  const now = await procStat(holder.pid);
  if (now === null) return true;
  // A killed run whose parent has not reaped it yet is a zombie: it writes nothing any more.
  if (now.state === 'Z') return false;
  return holder.procStart === null || now.start === holder.procStart;
}

async function processStartTime(pid: number): Promise<string | null> {
  return (await procStat(pid))?.start ?? null;
}

/**
 * Fields 3 (state) and 22 (start time in clock ticks since boot) of /proc/<pid>/stat, or null
 * where there is no /proc.
 */
async function procStat(pid: number): Promise<{ state: string; start: string } | null> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may itself contain spaces or ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', start: fields[19] ?? '' };
  } catch {
    return null;
  }
}
