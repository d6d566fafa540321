/**
 * `workerStats()` in threads mode when nothing else keeps the process alive: the worker control
 * ports are unref'd so an idle runtime lets the process exit, and a stats request once let it exit
 * mid-await (exit code 13, an unsettled top-level await).
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const FIXTURE = join(
  dirname(fileURLToPath(import.meta.url)),
  'fixtures/worker-stats-when-idle.mjs',
);

it('answers workerStats() before letting an otherwise idle process exit', async () => {
  const child = spawn(process.execPath, [FIXTURE], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  expect(code).toBe(0);
  expect(Number(stdout.trim())).toBeGreaterThanOrEqual(1);
});
