/**
 * CPU-profiles one contender in one scenario and prints where its time goes, so the owner of a hot
 * path gets function-level numbers rather than a req/s figure. The profile covers the measured
 * window only (warm-up and module loading excluded) and the main thread only.
 *
 *   node --import tsx throughput/profile.ts --contender volley-async --scenario 0ms-c256 [--count 40000] [--top 30]
 *
 * Writes results/profiles/<contender>-<scenario>-<date>.cpuprofile (open it in Chrome DevTools or
 * speedscope) and prints the top self-time functions, overall and within packages/* /dist.
 */
import { once } from 'node:events';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PROFILE_ENV, WINDOW_END, WINDOW_START } from './harness.js';
import { spawnContender, startSim } from './processes.js';
import { buildScenarios, CONTENDERS } from './scenarios.js';

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
  },
});

const contender = flags.contender;
if (!(CONTENDERS as readonly string[]).includes(contender))
  throw new Error(`unknown contender ${contender}`);
const scenario = buildScenarios({ quick: false }).find(
  (candidate) => candidate.id === flags.scenario,
);
if (scenario === undefined) throw new Error(`unknown scenario ${flags.scenario}`);
// Twice the matrix's count: more samples, same steady state.
const count = flags.count === undefined ? scenario.count * 2 : Number(flags.count);
const top = Number(flags.top);

const profilesDir = join(BENCH_DIR, 'results', 'profiles');
mkdirSync(profilesDir, { recursive: true });
const stamp = new Date().toISOString().slice(0, 19).replace(/:/g, '');
const profilePath = join(profilesDir, `${contender}-${scenario.id}-${stamp}Z.cpuprofile`);

const sim = await startSim(join(REPO_DIR, 'packages/cli/bin/volley.js'), scenario.latencyMs);
const child = spawnContender(contender, sim.url, scenario, count, {
  ...process.env,
  [PROFILE_ENV]: profilePath,
});
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

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const profile = JSON.parse(readFileSync(profilePath, 'utf8')) as CpuProfile;
const frames = new Map<number, CallFrame>(profile.nodes.map((node) => [node.id, node.callFrame]));

function location(frame: CallFrame): string {
  if (frame.url === '') return '(native)';
  const path = frame.url.startsWith('file://') ? fileURLToPath(frame.url) : frame.url;
  const shown = path.startsWith(REPO_DIR) ? relative(REPO_DIR, path) : path;
  // pnpm store paths are long and say little beyond the package name.
  return `${shown.replace(/^.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, '')}:${frame.lineNumber + 1}`;
}

// Sample i lasts until sample i+1 (DevTools' convention): weight it by the next time delta.
const selfMicros = new Map<string, number>();
let totalMicros = 0;
let idleMicros = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const frame = frames.get(profile.samples[i] ?? -1);
  const micros = profile.timeDeltas[i + 1] ?? 0;
  if (frame === undefined) continue;
  totalMicros += micros;
  if (frame.functionName === '(idle)') idleMicros += micros;
  const key = `${frame.functionName || '(anonymous)'}\t${location(frame)}`;
  selfMicros.set(key, (selfMicros.get(key) ?? 0) + micros);
}

// Idle is the loop waiting on the network: not a cost, so it is left out of the rankings.
const ranked = [...selfMicros.entries()]
  .filter(([key]) => !key.startsWith('(idle)\t'))
  .sort((a, b) => b[1] - a[1]);
const busyMicros = totalMicros - idleMicros;
function table(title: string, rows: Array<[string, number]>, byFile = false): void {
  const head = byFile
    ? '| self % of busy | self ms | file |\n|---:|---:|---|'
    : '| self % of busy | self ms | function | location |\n|---:|---:|---|---|';
  process.stdout.write(`\n${title}\n\n${head}\n`);
  for (const [key, micros] of rows.slice(0, top)) {
    const [name, where] = key.split('\t');
    const cells = byFile ? name : `${name} | ${where}`;
    process.stdout.write(
      `| ${((micros / busyMicros) * 100).toFixed(1)} | ${(micros / 1000).toFixed(0)} | ${cells} |\n`,
    );
  }
}

process.stdout.write(
  `\nprofile: ${relative(process.cwd(), profilePath)}\nsampled ${(totalMicros / 1000).toFixed(0)} ms on the main thread, ${(idleMicros / 1000).toFixed(0)} ms idle (${((idleMicros / totalMicros) * 100).toFixed(1)}%); percentages are of the busy time.\n`,
);
table(`Top ${top} self-time functions (all code)`, ranked);
table(
  `Top ${top} self-time functions in packages/*/dist`,
  ranked.filter(([key]) => /\tpackages\/[^/]+\/dist\//.test(key)),
);
const byFile = new Map<string, number>();
for (const [key, micros] of ranked) {
  const where = key.split('\t')[1] ?? '';
  const file = where.replace(/:\d+$/, '');
  const group = /^packages\/[^/]+\/dist\//.test(file)
    ? file
    : file.startsWith('node:')
      ? 'node: internals'
      : file.includes('undici/')
        ? 'undici (npm)'
        : file === '(native)'
          ? '(native: GC, writev, microtasks, program...)'
          : file;
  byFile.set(group, (byFile.get(group) ?? 0) + micros);
}
table(
  'Self time by file',
  [...byFile.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([file, micros]) => [`${file}\t`, micros] as [string, number]),
  true,
);
