/**
 * The one directory fsync of the CLI: a new file (writer.ts) or a rename (state.ts, resume.ts)
 * is durable only once its directory entry is.
 */

import { constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/** Makes the directory entry of `path` durable; best effort (some filesystems refuse). */
export async function syncDirectory(path: string): Promise<void> {
  try {
    const dir = await open(dirname(resolve(path)), fsConstants.O_RDONLY);
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch {
    // Directory fsync is unsupported on some filesystems; the file itself is still fsynced.
  }
}
