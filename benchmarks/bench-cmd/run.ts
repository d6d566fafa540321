/**
 * Is `volley bench` the bottleneck? Two measurements against a zero-latency `volley sim` in its
 * own process, each contender in a process of its own:
 *
 *   1. Closed loop, same request, same concurrency: `volley bench` (non-streaming, every response
 *      parsed) against autocannon (fixed bytes, nothing parsed), alternated A B / B A per
 *      repetition so drift of the shared machine hits both alike. Ratio per repetition.
 *   2. Open loop at a fixed rate (default 5,000 req/s, constant arrivals, 10 s): the rate
 *      delivered (sends over the send span, and completions over the run) against the plan, with
 *      the schedule-lag p99 and the client-health verdict.
 *
 * Usage (from benchmarks/, packages built):
 *   node --import tsx bench-cmd/run.ts [--reps 3] [--count 20000] [--concurrency 64]
 *        [--rate 5000] [--duration-ms 10000] [--threads 1] [--out results/bench-cmd-<date>.json]
 * Markdown goes to stdout, progress to stderr, the JSON (with machine, Node and git revision) to
 * the --out file.
 */

import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnContender, startSim } from '../throughput/processes.js';
import { CHAT_REQUEST } from '../throughput/workload.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const CLI = join(ROOT, 'packages/cli/bin/volley.js');

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i === -1) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!(value > 0)) throw new Error(`--${name} must be a positive number`);
  return value;
}

const reps = flag('reps', 3);
const count = flag('count', 20_000);
const concurrency = flag('concurrency', 64);
const rate = flag('rate', 5000);
const durationMs = flag('duration-ms', 10_000);
const threads = flag('threads', 1);
const outIndex = process.argv.indexOf('--out');
const out =
  outIndex === -1
    ? join(HERE, '..', 'results', `bench-cmd-${new Date().toISOString().slice(0, 10)}.json`)
    : resolve(process.argv[outIndex + 1] as string);

/** Runs a child to its end; resolves with its stdout. */
function run(command: string, args: string[], cwd?: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr
      .setEncoding('utf8')
      .on('data', (c: string) => (stderr = (stderr + c).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolvePromise(stdout)
        : reject(new Error(`${command} exited ${code}: ${stderr}`)),
    );
  });
}

interface BenchJson {
  request_throughput: number;
  completed: number;
  failed: number;
  duration: number;
  metrics: { schedule_lag_ms: { percentiles: Record<string, number | null> } };
  client_health: {
    client_limited: boolean;
    reasons: string[];
    process_cpu_cores: number;
    offered_rate: number | null;
    achieved_send_rate: number | null;
    late_fraction: number;
    dropped_sends: number;
    schedule_lag_p99_ms: number | null;
  };
}

async function benchRun(url: string, dataset: string, args: string[]): Promise<BenchJson> {
  const stdout = await run(process.execPath, [
    CLI,
    'bench',
    '--base-url',
    url,
    '--dataset-name',
    'batch',
    '--dataset-path',
    dataset,
    '--no-streaming',
    '--threads',
    String(threads),
    '--progress',
    'none',
    '--json',
    ...args,
  ]);
  return JSON.parse(stdout) as BenchJson;
}

async function autocannonRun(
  url: string,
): Promise<{ reqPerSec: number; completed: number; errors: number; cpuMsPer1k: number }> {
  const child = spawnContender('autocannon', url, { concurrency, warmup: 2000 }, count);
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.resume();
  await new Promise<void>((r, j) =>
    child.on('close', (code) => (code === 0 ? r() : j(new Error(`autocannon exited ${code}`)))),
  );
  const line = stdout.trim().split('\n').pop() as string;
  return JSON.parse(line) as {
    reqPerSec: number;
    completed: number;
    errors: number;
    cpuMsPer1k: number;
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

const dir = await mkdtemp(join(tmpdir(), 'volley-bench-cmd-'));
const dataset = join(dir, 'chat.jsonl');
// The same body autocannon replays, as a one-line Batch file (bench cycles it).
await writeFile(
  dataset,
  `${JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/chat/completions', body: CHAT_REQUEST })}\n`,
);
const sim = await startSim(CLI, 0);
process.stderr.write(`sim at ${sim.url}\n`);
const closed: Array<{
  rep: number;
  autocannon: number;
  bench: number;
  ratio: number;
  autocannonCpuMsPer1k: number;
  benchCpuMsPer1k: number;
  benchClientLimited: boolean;
}> = [];
const open: Array<{
  rep: number;
  offered: number | null;
  achievedSend: number | null;
  completionRate: number;
  lagP99: number | null;
  lateFraction: number;
  dropped: number;
  clientLimited: boolean;
  reasons: string[];
}> = [];
try {
  for (let rep = 0; rep < reps; rep++) {
    const order = rep % 2 === 0 ? ['autocannon', 'bench'] : ['bench', 'autocannon'];
    let a = { reqPerSec: 0, cpuMsPer1k: 0 };
    let b: BenchJson | undefined;
    for (const who of order) {
      process.stderr.write(`rep ${rep + 1}: ${who} closed loop c=${concurrency} n=${count}\n`);
      if (who === 'autocannon') a = await autocannonRun(sim.url);
      else
        b = await benchRun(sim.url, dataset, [
          '--max-concurrency',
          String(concurrency),
          '--num-prompts',
          String(count),
          '--num-warmups',
          '2000',
        ]);
    }
    const bench = b as BenchJson;
    closed.push({
      rep: rep + 1,
      autocannon: Math.round(a.reqPerSec),
      bench: Math.round(bench.request_throughput),
      ratio: Math.round((bench.request_throughput / a.reqPerSec) * 1000) / 1000,
      autocannonCpuMsPer1k: Math.round(a.cpuMsPer1k),
      // Process CPU (all threads) over the run, per 1,000 completed requests.
      benchCpuMsPer1k: Math.round(
        (bench.client_health.process_cpu_cores * bench.duration * 1e6) / bench.completed,
      ),
      benchClientLimited: bench.client_health.client_limited,
    });
    process.stderr.write(`rep ${rep + 1}: open loop ${rate} req/s for ${durationMs} ms\n`);
    const o = await benchRun(sim.url, dataset, [
      '--request-rate',
      String(rate),
      '--arrival',
      'constant',
      '--duration-ms',
      String(durationMs),
    ]);
    const h = o.client_health;
    open.push({
      rep: rep + 1,
      offered: h.offered_rate,
      achievedSend: h.achieved_send_rate,
      completionRate: o.request_throughput,
      lagP99: h.schedule_lag_p99_ms,
      lateFraction: h.late_fraction,
      dropped: h.dropped_sends,
      clientLimited: h.client_limited,
      reasons: h.reasons,
    });
  }
} finally {
  await sim.stop();
}

let revision = 'unknown';
try {
  revision = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
    cwd: ROOT,
    encoding: 'utf8',
  }).trim();
} catch {
  // Not a git checkout: the revision stays unknown.
}
const summary = {
  date: new Date().toISOString(),
  revision,
  node: process.version,
  machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown' },
  settings: { reps, count, concurrency, rate, durationMs, threads },
  closedLoop: { runs: closed, medianRatio: median(closed.map((c) => c.ratio)) },
  openLoop: {
    runs: open,
    medianAchievedSendRate: median(open.map((o) => o.achievedSend ?? 0)),
    medianCompletionRate: median(open.map((o) => o.completionRate)),
    medianLagP99Ms: median(open.map((o) => o.lagP99 ?? Number.NaN)),
  },
};
await writeFile(out, `${JSON.stringify(summary, null, 2)}\n`);

const lines = [
  `# volley bench vs autocannon (${summary.date}, ${revision}, node ${process.version}, ${summary.machine.cpus}× ${summary.machine.model})`,
  '',
  `Closed loop, concurrency ${concurrency}, ${count} requests, zero-latency simulator in its own process, bench threads ${threads}:`,
  '',
  '| rep | autocannon req/s | volley bench req/s | bench / autocannon | autocannon CPU ms/1k | bench CPU ms/1k | bench client-limited |',
  '| --- | ---: | ---: | ---: | ---: | ---: | --- |',
  ...closed.map(
    (c) =>
      `| ${c.rep} | ${c.autocannon} | ${c.bench} | ${c.ratio} | ${c.autocannonCpuMsPer1k} | ${c.benchCpuMsPer1k} | ${c.benchClientLimited} |`,
  ),
  `| median | | | ${summary.closedLoop.medianRatio} | | | |`,
  '',
  `Open loop, constant arrivals at ${rate} req/s for ${durationMs} ms:`,
  '',
  '| rep | planned req/s | sent req/s | completed req/s | schedule lag p99 ms | late > 10 ms | dropped | client-limited |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ...open.map(
    (o) =>
      `| ${o.rep} | ${o.offered} | ${o.achievedSend} | ${o.completionRate} | ${o.lagP99} | ${(o.lateFraction * 100).toFixed(2)}% | ${o.dropped} | ${o.clientLimited}${o.clientLimited ? ` (${o.reasons.join('; ')})` : ''} |`,
  ),
  '',
  `JSON: ${out}`,
];
process.stdout.write(`${lines.join('\n')}\n`);
