/**
 * CPU-profiles one whole client process of the CLI benchmark (start-up included; `volley run` by
 * default) against the nginx reference server and prints the top self-time functions of every
 * thread: `node --cpu-prof` writes one profile for the main thread and one per worker thread.
 *
 *   node --import tsx cli-run/profile.ts [--contender volley-async|volley-threads|lean-undici|openai-sdk]
 *        [--lines 100000] [--concurrency 256] [--top 25]
 *
 * Profiles go to results/profiles/cli-run-<contender>-<date>/ (gitignored; open them in Chrome
 * DevTools or speedscope).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { summarizeProfile } from '../shared/cpu-profile.js';
import { optionalInt } from '../shared/matrix.js';
import { startNginx } from '../shared/nginx.js';
import { SIM_CHAT_COMPLETION_JSON } from '../throughput/workload.js';
import { checkBatchOutput, writeBatchInput } from './batch-file.js';
import { buildClients, clientArgs, REPO_DIR } from './clients.js';

const { values: flags } = parseArgs({
  options: {
    contender: { type: 'string', default: 'volley-async' },
    lines: { type: 'string' },
    concurrency: { type: 'string' },
    top: { type: 'string' },
  },
});
const lines = optionalInt('lines', flags.lines) ?? 100_000;
const concurrency = optionalInt('concurrency', flags.concurrency) ?? 256;
const top = optionalInt('top', flags.top) ?? 25;

const stamp = new Date().toISOString().slice(0, 19).replace(/:/g, '');
const profileDir = join(
  REPO_DIR,
  'benchmarks',
  'results',
  'profiles',
  `cli-run-${flags.contender}-${stamp}Z`,
);
mkdirSync(profileDir, { recursive: true });
const workDir = await mkdtemp(join(tmpdir(), 'volley-bench-cli-profile-'));
const input = join(workDir, 'in.jsonl');
const output = join(workDir, 'out.jsonl');
buildClients();
await writeBatchInput(input, lines);
const server = await startNginx(SIM_CHAT_COMPLETION_JSON);
try {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [
      '--cpu-prof',
      '--cpu-prof-dir',
      profileDir,
      // 500 µs: twice V8's default rate; a ~5 s run still gives ~10k samples per thread.
      '--cpu-prof-interval',
      '500',
      ...clientArgs(flags.contender, { input, output, url: server.url, concurrency }),
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const [code] = (await once(child, 'exit')) as [number | null];
  const wallMs = performance.now() - started;
  if (code !== 0) throw new Error(`${flags.contender} exited with ${String(code)}`);
  const check = await checkBatchOutput(output, lines);
  process.stdout.write(
    `${flags.contender}: ${lines} lines in ${(wallMs / 1000).toFixed(2)} s (profiler on), ${check.ok} good records\n`,
  );
  // CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile: thread 0 is the main thread.
  const files = readdirSync(profileDir)
    .filter((name) => name.endsWith('.cpuprofile'))
    .sort((a, b) => Number(a.split('.')[4]) - Number(b.split('.')[4]));
  for (const file of files) {
    const thread = Number(file.split('.')[4]);
    process.stdout.write(`\n## ${thread === 0 ? 'Main thread' : `Worker thread ${thread}`}\n`);
    process.stdout.write(summarizeProfile(join(profileDir, file), { repoDir: REPO_DIR, top }));
  }
} finally {
  await server.stop();
  await rm(workDir, { recursive: true, force: true });
}
