/**
 * A close that fails after a pass that wrote (or queued) everything: the outcome becomes
 * `write-failed` as a whole. `volley run` once changed the exit code to 4 but left the pass's
 * own status in the summary (`"status":"finished"` or `stopped` beside exit 4), while `volley
 * embed` changed both; the teardown is now one function (batch/session.ts) for both commands.
 *
 * The failing close is real: standard output is /dev/full, so the record is accepted into the
 * stream and the write behind it fails with ENOSPC, which the final close reports.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import type { Simulator } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, tempDir, writeBatch } from './helpers.js';

let sim: Simulator;

beforeAll(async () => {
  sim = await createSimulator();
});
afterAll(() => sim.close());

/** Runs the CLI with its standard output on `stdoutPath`; resolves with the code and stderr. */
function runWithStdout(
  args: string[],
  stdoutPath: string,
): Promise<{ code: number | null; stderr: string }> {
  const fd = openSync(stdoutPath, 'w');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', fd, 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    closeSync(fd);
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('a failing close', () => {
  it.skipIf(!existsSync('/dev/full'))(
    'reports write-failed in the summary beside exit 4, not the status the pass ended with',
    async () => {
      await using dir = await tempDir();
      await writeBatch(dir.file('in.jsonl'), 1);
      const result = await runWithStdout(
        ['run', dir.file('in.jsonl'), '-o', '-', '--base-url', sim.url, '--progress', 'plain'],
        '/dev/full',
      );
      expect(result.code).toBe(4);
      expect(result.stderr).toMatch(/ENOSPC/);
      expect(result.stderr).toMatch(/once it can be written/); // the close reported it
      expect(result.stderr).toMatch(/^\s*status:\s+write-failed$/m);
    },
  );
});
