/**
 * A full disk: no torn record, a clear error, exit 4, and `--resume` finishes once there is
 * space. The disk is a 256 KiB tmpfs in a private mount namespace (`unshare -rm`, no root needed
 * where unprivileged user namespaces are allowed), grown with a remount between the two runs;
 * and `/dev/full`, where every write fails with ENOSPC.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
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

/**
 * Every file the command opens is closed on the failing paths too. Node 24 printed `Closing file
 * descriptor N on garbage collection` (DEP0137) around these tests; the process would exit with
 * it open otherwise. Each command here runs with a preload that forces two garbage collections
 * once its loop is empty (so a handle left to the collector warns, and --trace-warnings says
 * where), then at exit lists the descriptors still open on the disk under test.
 */
const FD_CHECK = `
import { readdirSync, readlinkSync } from 'node:fs';
const watched = process.env.VOLLEY_TEST_WATCHED_DIR;
let collected = false;
process.on('beforeExit', () => {
  if (collected) return;
  collected = true;
  globalThis.gc();
  setTimeout(() => globalThis.gc(), 20);
});
process.on('exit', () => {
  const open = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    let target;
    try { target = readlinkSync('/proc/self/fd/' + fd); } catch { continue; }
    if (target === '/dev/full' || target.startsWith(watched)) open.push(target);
  }
  process.stderr.write('open at exit: ' + JSON.stringify(open) + '\\n');
});
`;

function expectAllClosed(stderr: string): void {
  expect(stderr).toContain('open at exit: []');
  expect(stderr).not.toMatch(/on garbage collection|DEP0137/);
}

describe('volley on a full disk closes every file it opened', () => {
  it.skipIf(!existsSync('/dev/full') || process.platform !== 'linux')(
    'run --order input to /dev/full (its spill in a temp folder)',
    async () => {
      await using dir = await tempDir();
      await writeBatch(dir.file('in.jsonl'), 200);
      await writeFile(dir.file('fd-check.mjs'), FD_CHECK);
      const result = await new Promise<{ code: number | null; stderr: string }>(
        (resolve, reject) => {
          const child = spawn(
            process.execPath,
            [
              '--expose-gc',
              '--trace-warnings',
              '--import',
              dir.file('fd-check.mjs'),
              CLI,
              'run',
              dir.file('in.jsonl'),
              '-o',
              '/dev/full',
              '--order',
              'input',
              '--base-url',
              sim.url,
              '--progress',
              'none',
            ],
            {
              // The spill goes to a temp folder: under the one watched.
              env: {
                PATH: process.env.PATH ?? '',
                TMPDIR: dir.path,
                VOLLEY_TEST_WATCHED_DIR: dir.path,
              },
              stdio: ['ignore', 'ignore', 'pipe'],
            },
          );
          let stderr = '';
          child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
          child.on('error', reject);
          child.on('close', (code) => resolve({ code, stderr }));
        },
      );
      expect(result.code).toBe(4);
      expectAllClosed(result.stderr);
    },
  );

  it.skipIf(!canUnshare)(
    'run in both orders and embed, each filling a 256 KiB disk',
    async () => {
      await using dir = await tempDir();
      await writeBatch(dir.file('in.jsonl'), 2000);
      const texts = Array.from({ length: 3000 }, (_, i) =>
        JSON.stringify({ id: `t${i}`, text: `passage number ${i} about otters` }),
      );
      await writeFile(dir.file('texts.jsonl'), `${texts.join('\n')}\n`);
      await writeFile(dir.file('fd-check.mjs'), FD_CHECK);
      const cases = {
        completion: `run "${dir.file('in.jsonl')}" -o out.jsonl --base-url ${sim.url}`,
        input: `run "${dir.file('in.jsonl')}" -o out.jsonl --order input --base-url ${sim.url}`,
        embed: `embed "${dir.file('texts.jsonl')}" -o vectors.npy --base-url ${sim.url} --model volley-sim-embed-1`,
      };
      const script = ['set -u'];
      for (const [tag, args] of Object.entries(cases)) {
        const mnt = dir.file(`mnt-${tag}`);
        await mkdir(mnt);
        script.push(
          `mount -t tmpfs -o size=256k tmpfs "${mnt}"`,
          `cd "${mnt}" && VOLLEY_TEST_WATCHED_DIR="${mnt}" "${process.execPath}" --expose-gc --trace-warnings --import "${dir.file('fd-check.mjs')}" "${CLI}" ${args} --progress none 2> "${dir.file(`${tag}.stderr`)}"; echo "${tag}=$?"`,
        );
      }
      const { code, output } = await inNamespace(script.join('\n'));
      expect(code).toBe(0);
      for (const tag of Object.keys(cases)) {
        expect(output).toContain(`${tag}=4`);
        expectAllClosed(await readFile(dir.file(`${tag}.stderr`), 'utf8'));
      }
    },
    60_000,
  );
});
