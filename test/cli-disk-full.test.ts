/**
 * A full disk: no torn record, a clear error, exit 4, and `--resume` finishes once there is
 * space. The disk is a 256 KiB tmpfs in a private mount namespace (`unshare -rm`, no root needed
 * where unprivileged user namespaces are allowed), grown with a remount between the two runs;
 * and `/dev/full`, where every write fails with ENOSPC.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import type { Simulator } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkBatchOutput } from './cli-batch-check.js';
import { CLI, runCli, tempDir, writeBatch } from './helpers.js';

const canUnshare =
  process.platform === 'linux' &&
  spawnSync('unshare', ['-rm', 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs /mnt'], {
    stdio: 'ignore',
  }).status === 0;

let sim: Simulator;

beforeAll(async () => {
  sim = await createSimulator();
});
afterAll(() => sim.close());

/** Runs a shell script in a private mount namespace; resolves with its exit status. */
function inNamespace(script: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', ['-rm', 'sh', '-c', script], {
      env: { PATH: process.env.PATH ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('volley run on a full disk', () => {
  it.skipIf(!canUnshare)(
    'stops with exit 4 and whole records only, then resumes once the disk has space',
    async () => {
      await using dir = await tempDir();
      const count = 2000;
      const input = dir.file('in.jsonl');
      await writeBatch(input, count);
      const mnt = dir.file('mnt');
      await mkdir(mnt);
      const out = `${mnt}/out.jsonl`;
      const run = (extra: string, tag: string): string =>
        `"${process.execPath}" "${CLI}" run "${input}" -o "${out}" --base-url ${sim.url} --progress plain --json ${extra} > "${dir.file(`${tag}.stdout`)}" 2> "${dir.file(`${tag}.stderr`)}"; echo "${tag}=$?"; mkdir -p "${dir.path}/${tag}"; cp "${mnt}"/out* "${dir.path}/${tag}/"`;
      // 2,000 results take about 1.2 MB: a 256 KiB disk fills a fifth of the way through.
      const script = [
        'set -u',
        `mount -t tmpfs -o size=256k tmpfs "${mnt}"`,
        run('', 'full'),
        `mount -o remount,size=8m "${mnt}"`,
        run('--resume', 'resumed'),
      ].join('\n');
      const { code, output } = await inNamespace(script);
      expect(code).toBe(0);
      expect(output).toContain('full=4');
      expect(output).toContain('resumed=0');

      const fullStderr = await readFile(dir.file('full.stderr'), 'utf8');
      expect(fullStderr).toMatch(/ENOSPC/);
      expect(fullStderr).toMatch(/--resume/);
      expect(fullStderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
      const full = JSON.parse(await readFile(dir.file('full.stdout'), 'utf8')) as {
        exitCode: number;
        status: string;
        succeeded: number;
        pending: number;
      };
      expect(full).toMatchObject({ exitCode: 4, status: 'write-failed' });
      expect(full.pending).toBe(count - full.succeeded);
      // The full disk left whole records only: the file ends on a newline and every line parses.
      const written = await readFile(dir.file('full/out.jsonl'), 'utf8');
      expect(written.endsWith('\n')).toBe(true);
      const atFull = await checkBatchOutput(count, dir.file('full/out.jsonl'));
      expect(atFull.torn).toBe(0);
      expect(atFull.records).toBe(full.succeeded);
      expect(atFull.records).toBeGreaterThan(0);

      const resumed = JSON.parse(await readFile(dir.file('resumed.stdout'), 'utf8')) as {
        alreadyDone: number;
      };
      expect(resumed.alreadyDone).toBe(full.succeeded);
      expect(
        await checkBatchOutput(
          count,
          dir.file('resumed/out.jsonl'),
          dir.file('resumed/out.errors.jsonl'),
        ),
      ).toMatchObject({ lost: 0, duplicated: 0, torn: 0, mismatched: 0, errors: 0 });
    },
    60_000,
  );

  it.skipIf(!existsSync('/dev/full'))('exits 4 with ENOSPC when writing to /dev/full', async () => {
    await using dir = await tempDir();
    await writeBatch(dir.file('in.jsonl'), 50);
    const result = await runCli([
      'run',
      dir.file('in.jsonl'),
      '-o',
      '/dev/full',
      '--base-url',
      sim.url,
      '--progress',
      'none',
    ]);
    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(/\/dev\/full.*ENOSPC/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
