/**
 * `--concurrency auto` (issue #13) against the simulator's server model, each server a `volley
 * sim` process and each contender a client process of its own (client.ts):
 *
 *   knee       one server, 48 slots, unbounded queue: auto vs a sweep of fixed concurrencies.
 *              Targets: throughput ≥ 95% of the best fixed, median TTFT ≤ 1.3× that at c = 48,
 *              settled within 30 s.
 *   shedding   48 slots, a waiting queue of 8 then 503: throughput ≥ 95% of the best fixed,
 *              503s < 1% of requests.
 *   rpm        48 slots behind an RPM limit (429 with headers): throughput ≥ 95%, 429s < 1%.
 *   replicas   24 and 64 slots: auto (a limit each) vs one shared fixed 64: batch ≥ 1.2× faster.
 *
 * The engine runs fast (5 ms decode steps, 16 output tokens) so a run takes seconds: the shape
 * (knee, queueing, shedding) is what matters, not the absolute speed. Every ratio is within one
 * run of this script, on one machine. Usage (from benchmarks/, packages built):
 *
 *   node --import tsx adaptive/run.ts [--requests 3000] [--out results/baseline-adaptive-<date>.json]
 *        [--only knee,shedding,rpm,replicas]
 */

import { writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, round } from '../shared/script.js';
import { machineInfo } from '../throughput/proc-stats.js';
import { runJsonScript, startSim } from '../throughput/processes.js';
import type { ClientResult, ClientSpec } from './client.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const CLI = join(ROOT, 'packages/cli/bin/volley.js');

const requests = Number(arg('requests') ?? 1500);
/** Each contender runs this many times, the order reversed every other time; figures are means. */
const reps = Number(arg('reps') ?? 2);
const only = new Set((arg('only') ?? 'knee,shedding,rpm,replicas').split(','));
const out = resolve(
  arg('out') ??
    join(HERE, '..', 'results', `baseline-adaptive-${new Date().toISOString().slice(0, 10)}.json`),
);

/**
 * The server model: a 20 ms decode step growing 0.2 ms per sequence (1.5x slower at 48 than at
 * one, as on a GPU), 12 output tokens: an answer takes a quarter to half a second and a 48-slot
 * server answers about 130 a second, few enough that neither the client nor the simulator runs
 * short of CPU on a shared 2-core machine.
 */
const ENGINE = [
  '--decode-step-ms',
  '20',
  '--decode-step-ms-per-sequence',
  '0.2',
  '--engine-jitter',
  '0.1',
  '--seed',
  '7',
];
const MAX_TOKENS = 12;

function runClient(spec: ClientSpec): Promise<ClientResult> {
  return runJsonScript(join(HERE, 'client.ts'), spec);
}

/** A fresh server (or servers) per run, so no run inherits another's queue. */
async function withSims<T>(argsList: string[][], body: (urls: string[]) => Promise<T>): Promise<T> {
  const sims = await Promise.all(argsList.map((args) => startSim(CLI, 0, 15_000, args)));
  try {
    return await body(sims.map((s) => s.url));
  } finally {
    await Promise.all(sims.map((s) => s.stop()));
  }
}

/**
 * When the limit settled: the last moment it was outside ±20% of where it ended (the median of
 * the run's second half), the latest over the adaptive endpoints.
 */
function settleMs(trace: ClientResult['trace']): number {
  if (trace.length === 0) return Number.NaN;
  let settled = 0;
  for (let e = 1; e < trace[0]!.length; e++) {
    const target = medianLimit(trace, e);
    for (const point of trace) {
      const v = point[e] as number | null;
      if (v !== null && Math.abs(v - target) > 0.2 * target) settled = Math.max(settled, point[0]);
    }
  }
  return settled;
}

/** Where endpoint `e`'s limit sat over the second half of a run. */
function medianLimit(trace: ClientResult['trace'], e: number): number {
  const half = trace
    .slice(Math.floor(trace.length / 2))
    .map((t) => t[e] as number | null)
    .filter((v): v is number => v !== null)
    .sort((a, b) => a - b);
  return half[Math.floor(half.length / 2)] ?? Number.NaN;
}

/** The mean of several runs of one contender, with the limit figures of each run. */
interface Figures {
  throughput: number;
  wallMs: number;
  ttftP50Ms: number;
  ttftP99Ms: number;
  latencyP99Ms: number;
  status503: number;
  status429: number;
  failed: number;
  settleMs: number[];
  medianLimits: number[][];
  runs: number;
}

function mean(runs: ClientResult[]): Figures {
  const avg = (f: (r: ClientResult) => number) =>
    round(runs.reduce((sum, r) => sum + f(r), 0) / runs.length);
  return {
    throughput: avg((r) => r.throughput),
    wallMs: avg((r) => r.wallMs),
    ttftP50Ms: avg((r) => r.ttftMs.p50),
    ttftP99Ms: avg((r) => r.ttftMs.p99),
    latencyP99Ms: avg((r) => r.latencyMs.p99),
    status503: avg((r) => r.status503),
    status429: avg((r) => r.status429),
    failed: avg((r) => r.failed),
    settleMs: runs.map((r) => settleMs(r.trace)),
    medianLimits: runs.map((r) => r.finalLimits.map((_, e) => medianLimit(r.trace, e + 1))),
    runs: runs.length,
  };
}

/**
 * Runs every contender `reps` times, the order reversed every other time so that drift of the
 * shared machine hits all alike, a fresh server for every run; returns each one's mean.
 */
async function contenders(
  simArgs: string[][],
  specs: Array<{ label: string; spec: Omit<ClientSpec, 'baseUrls'> }>,
): Promise<Map<string, Figures & { trace: ClientResult['trace'] }>> {
  const runs = new Map<string, ClientResult[]>(specs.map((c) => [c.label, []]));
  for (let rep = 0; rep < reps; rep++) {
    for (const { label, spec } of rep % 2 === 0 ? specs : [...specs].reverse()) {
      const r = await withSims(simArgs, (baseUrls) => runClient({ baseUrls, ...spec }));
      runs.get(label)!.push(r);
      process.stderr.write(
        `  ${label} #${rep + 1}: ${round(r.throughput)} req/s, TTFT p50 ${round(r.ttftMs.p50)} ms, ` +
          `503 ${r.status503}, 429 ${r.status429}, limits ${JSON.stringify(r.finalLimits)}\n`,
      );
    }
  }
  return new Map(
    [...runs].map(([label, list]) => [
      label,
      // The trace of the first run, thinned: enough to plot how the limit moved.
      { ...mean(list), trace: list[0]!.trace.filter((_, i) => i % 5 === 0) },
    ]),
  );
}

const results: Record<string, unknown> = {};
const verdicts: Array<{
  scenario: string;
  figure: string;
  value: number;
  target: string;
  pass: boolean;
}> = [];
function verdict(
  scenario: string,
  figure: string,
  value: number,
  op: '>=' | '<=' | '<',
  bound: number,
) {
  const pass = op === '>=' ? value >= bound : op === '<=' ? value <= bound : value < bound;
  const target = `${op} ${bound}`;
  verdicts.push({ scenario, figure, value: round(value, 3), target, pass });
  process.stderr.write(
    `${pass ? 'PASS' : 'FAIL'} ${scenario}: ${figure} = ${round(value, 3)} (target ${target})\n`,
  );
}

const base = { requests, maxTokens: MAX_TOKENS };
const fixedSpecs = (list: number[]) =>
  list.map((c) => ({ label: `fixed ${c}`, spec: { ...base, concurrency: c } }));
const autoSpec = { label: 'auto', spec: { ...base, concurrency: 'auto' as const } };

/** The figures every sweep is judged by: auto's throughput against the best fixed setting's. */
function sweepVerdicts(scenario: string, all: Map<string, Figures>, autoLabel = 'auto') {
  const [bestLabel, best] = [...all]
    .filter(([label]) => label.startsWith('fixed'))
    .reduce((a, b) => (b[1].throughput > a[1].throughput ? b : a));
  const auto = all.get(autoLabel)!;
  verdict(
    scenario,
    `${autoLabel}: throughput / best fixed (${bestLabel})`,
    auto.throughput / best.throughput,
    '>=',
    0.95,
  );
  return { auto, bestLabel };
}

if (only.has('knee')) {
  process.stderr.write('knee: 48 slots, unbounded queue\n');
  const all = await contenders(
    [['--engine-slots', '48', ...ENGINE]],
    [
      ...fixedSpecs([16, 32, 48, 56, 64, 96]),
      autoSpec,
      { label: 'auto, no hints', spec: { ...base, concurrency: 'auto', serverHints: false } },
    ],
  );
  const knee = all.get('fixed 48')!;
  for (const label of ['auto', 'auto, no hints']) {
    const { auto } = sweepVerdicts('knee', all, label);
    verdict('knee', `${label}: median TTFT / at c=48`, auto.ttftP50Ms / knee.ttftP50Ms, '<=', 1.3);
    verdict(
      'knee',
      `${label}: settle time, slowest run (s)`,
      Math.max(...auto.settleMs) / 1000,
      '<=',
      30,
    );
  }
  results.knee = Object.fromEntries(all);
}

if (only.has('shedding')) {
  process.stderr.write('shedding: 48 slots, a queue of 8, then 503\n');
  const all = await contenders(
    [['--engine-slots', '48', '--max-waiting', '8', ...ENGINE]],
    [...fixedSpecs([32, 48, 56, 96]), autoSpec],
  );
  const { auto } = sweepVerdicts('shedding', all);
  verdict('shedding', 'auto: 503s / requests', auto.status503 / requests, '<', 0.01);
  results.shedding = Object.fromEntries(all);
}

if (only.has('rpm')) {
  // 4,800 a minute = 80 a second, about 60% of what the 48 slots answer: the limit is the rate.
  process.stderr.write('rpm: 48 slots behind --rpm 4800\n');
  const all = await contenders(
    [['--engine-slots', '48', '--rpm', '4800', ...ENGINE]],
    [...fixedSpecs([8, 16, 32, 64]), autoSpec],
  );
  const { auto } = sweepVerdicts('rpm', all);
  verdict('rpm', 'auto: 429s / requests', auto.status429 / requests, '<', 0.01);
  results.rpm = Object.fromEntries(all);
}

if (only.has('replicas')) {
  process.stderr.write('replicas: 24 and 64 slots\n');
  const all = await contenders(
    [
      ['--engine-slots', '24', ...ENGINE],
      ['--engine-slots', '64', ...ENGINE],
    ],
    [{ label: 'fixed 64 shared', spec: { ...base, concurrency: 64 } }, autoSpec],
  );
  const fixed = all.get('fixed 64 shared')!;
  const auto = all.get('auto')!;
  verdict('replicas', 'batch time fixed 64 shared / auto', fixed.wallMs / auto.wallMs, '>=', 1.2);
  // Where each limit sat in the second half of each run, against its server's slots (± 25%).
  for (const [e, slots] of [24, 64].entries()) {
    const limits = auto.medianLimits.map((l) => l[e]!);
    verdict(
      'replicas',
      `${slots}-slot replica: limit / slots, lowest run`,
      Math.min(...limits) / slots,
      '>=',
      0.75,
    );
    verdict(
      'replicas',
      `${slots}-slot replica: limit / slots, highest run`,
      Math.max(...limits) / slots,
      '<=',
      1.25,
    );
  }
  results.replicas = Object.fromEntries(all);
}

const doc = {
  benchmark: 'adaptive-concurrency',
  date: new Date().toISOString(),
  git: machineInfo(ROOT).git.short,
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  setup: { requests, reps, maxTokens: MAX_TOKENS, engine: ENGINE.join(' ') },
  verdicts,
  results,
};
await writeFile(out, `${JSON.stringify(doc, null, 2)}\n`);
process.stderr.write(`wrote ${out}\n`);
