import { spawnSync } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { acquireRunLock } from '../src/run/lock.js';
import { useTempDir } from './helpers/temp-files.js';

const tempDir = useTempDir();

describe('acquireRunLock', () => {
  it('lets one holder in, refuses a second while it lives, and releases', async () => {
    const path = join(await tempDir(), 'out.jsonl.volley-lock');
    const lock = await acquireRunLock(path, () => undefined);
    expect(JSON.parse(await readFile(path, 'utf8'))).toMatchObject({ pid: process.pid });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    await expect(acquireRunLock(path, () => undefined)).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_LOCKED',
      exitCode: 2,
    });
    await lock.release();
    await expect(stat(path)).rejects.toMatchObject({ code: 'ENOENT' });
    await (await acquireRunLock(path, () => undefined)).release();
  });

  it('breaks the lock of a process that no longer exists, and says so', async () => {
    const path = join(await tempDir(), 'lock');
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    });
    const pid = Number(dead.stdout);
    await writeFile(
      path,
      JSON.stringify({ pid, host: hostname(), procStart: '1', startedAt: 'earlier' }),
    );
    const notices: string[] = [];
    const lock = await acquireRunLock(path, (message) => notices.push(message));
    expect(notices.join()).toContain(`stale lock of pid ${pid}`);
    await lock.release();
  });

  it('treats a live pid with another start time as a recycled pid (stale)', async () => {
    const path = join(await tempDir(), 'lock');
    await writeFile(
      path,
      JSON.stringify({ pid: process.pid, host: hostname(), procStart: 'not-now', startedAt: 'x' }),
    );
    const lock = await acquireRunLock(path, () => undefined);
    await lock.release();
  });

  it('never breaks a lock held from another host', async () => {
    const path = join(await tempDir(), 'lock');
    await writeFile(
      path,
      JSON.stringify({ pid: 1, host: 'elsewhere', procStart: null, startedAt: 'x' }),
    );
    await expect(acquireRunLock(path, () => undefined)).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_LOCKED',
    });
  });

  it('treats a fresh empty lock as held: its owner is about to write it', async () => {
    const path = join(await tempDir(), 'lock');
    await writeFile(path, '');
    await expect(acquireRunLock(path, () => undefined)).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_LOCKED',
    });
  });
});
