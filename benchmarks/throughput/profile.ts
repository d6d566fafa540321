/**
 * CPU-profiles one contender in one scenario and prints where its time goes, so the owner of a hot
 * path gets function-level numbers rather than a req/s figure. The profile covers the measured
 * window only (warm-up and module loading excluded) and the main thread only.
 *
 *   node --import tsx throughput/profile.ts --contender volley-async --scenario 0ms-c256 [--count 40000] [--top 30] [--server nginx] [--workload long-stream] [--heap [--promoted]]
 *
 * Writes results/profiles/<contender>-<scenario>-<date>.cpuprofile (open it in Chrome DevTools or
 * speedscope) and prints the top self-time functions, overall and within packages/* /dist. With
 * --heap it samples allocations instead (collected garbage included) and prints the functions that
 * allocated the most bytes, per request: the garbage behind a contender's GC time. With --heap
 * --promoted, only what no young-generation collection freed: objects kept alive past two
 * scavenges are copied twice and then left for the slow old-generation collector.
 */
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { summarizeHeapProfile, summarizeProfile } from '../shared/cpu-profile.js';
import { startNginx } from '../shared/nginx.js';
import {
  HEAP_PROFILE_ENV,
  HEAP_PROMOTED_ENV,
  PROFILE_ENV,
  WINDOW_END,
  WINDOW_START,
} from './harness.js';
import { spawnContender, startSim } from './processes.js';
import { buildScenarios, CONTENDERS } from './scenarios.js';
import { nginxAnswer, parseWorkload, serverFor } from './workload.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const BENCH_DIR = dirname(HERE);
const REPO_DIR = dirname(BENCH_DIR);

const { values: flags } = parseArgs({
  // `pnpm run bench -- --quick` passes the `--` through; it is not an end-of-options marker here.
  args: process.argv.slice(2).filter((arg) => arg !== '--'),
  options: {
    contender: { type: 'string', default: 'volley-async' },
    scenario: { type: 'string', default: '0ms-c256' },
    count: { type: 'string' },
    top: { type: 'string', default: '30' },
    // nginx answers at a fraction of the simulator's CPU, so the client's own cost shows.
    server: { type: 'string' },
    // Where the bytes are allocated instead of where the time goes.
    heap: { type: 'boolean', default: false },
    // With --heap: only the allocations that outlived young-generation GC (the costly ones).
    promoted: { type: 'boolean', default: false },
    workload: { type: 'string', default: 'short-chat' },
  },
});

const contender = flags.contender;
if (!(CONTENDERS as readonly string[]).includes(contender))
  throw new Error(`unknown contender ${contender}`);
const workload = parseWorkload(flags.workload);
const scenario = buildScenarios({ quick: false, workload }).find(
  (candidate) => candidate.id === flags.scenario,
);
if (scenario === undefined) throw new Error(`unknown scenario ${flags.scenario}`);
// Twice the matrix's count: more samples, same steady state.
const count = flags.count === undefined ? scenario.count * 2 : Number(flags.count);
const top = Number(flags.top);
const server = serverFor(workload, flags.server);
if (server === 'nginx' && scenario.latencyMs !== 0)
  throw new Error('nginx answers at once: profile a 0 ms scenario against it');

const profilesDir = join(BENCH_DIR, 'results', 'profiles');
mkdirSync(profilesDir, { recursive: true });
const stamp = new Date().toISOString().slice(0, 19).replace(/:/g, '');
const profilePath = join(
  profilesDir,
  `${contender}-${scenario.id}-${stamp}Z.${flags.heap ? 'heapprofile' : 'cpuprofile'}`,
);

const sim =
  server === 'nginx'
    ? await startNginx(nginxAnswer(workload))
    : await startSim(join(REPO_DIR, 'packages/cli/bin/volley.js'), scenario.latencyMs);
const child = spawnContender(
  contender,
  sim.url,
  scenario,
  count,
  {
    ...process.env,
    [flags.heap ? HEAP_PROFILE_ENV : PROFILE_ENV]: profilePath,
    ...(flags.heap && flags.promoted ? { [HEAP_PROMOTED_ENV]: '1' } : {}),
  },
  workload,
);
// Pass the contender's diagnostics through, minus the window markers meant for the matrix runner.
createInterface({ input: child.stderr }).on('line', (line) => {
  if (line !== WINDOW_START && line !== WINDOW_END) process.stderr.write(`${line}\n`);
});
let output = '';
child.stdout.setEncoding('utf8');
child.stdout.on('data', (chunk: string) => {
  output += chunk;
});
const [code] = (await once(child, 'close')) as [number | null];
await sim.stop();
if (code !== 0) throw new Error(`${contender} exited with ${String(code)}`);
process.stdout.write(`run: ${output.trim()}\n`);
process.stdout.write(
  flags.heap
    ? summarizeHeapProfile(profilePath, {
        repoDir: REPO_DIR,
        top,
        requests: count,
        promoted: flags.promoted,
      })
    : summarizeProfile(profilePath, { repoDir: REPO_DIR, top }),
);
