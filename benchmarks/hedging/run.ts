/**
 * Hedging for tail latency (issue #13 item 4): two replicas, each stalling 2% of requests (no
 * header, no byte, for 5 s: `volley sim --stall-rate 0.02`), the same callers with hedging off
 * and on (the defaults: p99 of time to first byte, a 2% budget). Each server is a `volley sim`
 * process with the engine model and each contender a client process (client.ts); fresh servers
 * per run, the order of the contenders reversed every other rep.
 *
 * Target: p99 latency at least 3x lower with hedging on, and the copies within the 2% budget.
 * Usage (from benchmarks/, packages built):
 *
 *   node --import tsx hedging/run.ts [--requests 2000] [--reps 2] [--concurrency 24]
 *        [--out results/baseline-hedging-<date>.json]
 */
import { writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, round } from '../shared/script.js';
import { machineInfo } from '../throughput/proc-stats.js';
import { runJsonScript, startSim } from '../throughput/processes.js';
import type { HedgeClientResult, HedgeClientSpec } from './client.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const CLI = join(ROOT, 'packages/cli/bin/volley.js');

const requests = Number(arg('requests') ?? 2000);
const reps = Number(arg('reps') ?? 2);
const concurrency = Number(arg('concurrency') ?? 24);
const out = resolve(
  arg('out') ??
    join(HERE, '..', 'results', `baseline-hedging-${new Date().toISOString().slice(0, 10)}.json`),
);

const STALL_RATE = 0.02;
const STALL_MS = 5_000;
const BUDGET = 0.02;
const MAX_TOKENS = 12;
/** The adaptive benchmark's server model (20 ms decode steps, jitter 0.1), 48 slots, lightly loaded. */
const ENGINE = ['--engine-slots', '48', '--decode-step-ms', '20', '--engine-jitter', '0.1'];
const simArgs = (seed: number) => [
  ...ENGINE,
  '--stall-rate',
  String(STALL_RATE),
  '--stall-ms',
  String(STALL_MS),
  '--seed',
  String(seed),
];

async function runOnce(hedge: boolean, rep: number): Promise<HedgeClientResult> {
  // Seeds differ per replica and per rep; both contenders of a rep meet the same stalls.
  const sims = await Promise.all(
    [1, 2].map((replica) => startSim(CLI, 0, 15_000, simArgs(rep * 10 + replica))),
  );
  try {
    const spec: HedgeClientSpec = {
      baseUrls: sims.map((s) => s.url),
      hedge,
      requests,
      concurrency,
      maxTokens: MAX_TOKENS,
    };
    return await runJsonScript<HedgeClientResult>(join(HERE, 'client.ts'), spec);
  } finally {
    await Promise.all(sims.map((s) => s.stop()));
  }
}

const runs: Record<'off' | 'on', HedgeClientResult[]> = { off: [], on: [] };
for (let rep = 0; rep < reps; rep++) {
  const order: Array<'off' | 'on'> = rep % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
  for (const label of order) {
    const r = await runOnce(label === 'on', rep);
    runs[label].push(r);
    process.stderr.write(
      `  hedging ${label} #${rep + 1}: p50 ${round(r.latencyMs.p50)} ms, p99 ${round(r.latencyMs.p99)} ms, ` +
        `hedged ${r.hedgedCalls} (${round((100 * r.hedgedCalls) / r.succeeded, 2)}%), failed ${r.failed}\n`,
    );
  }
}

const mean = (list: HedgeClientResult[], f: (r: HedgeClientResult) => number) =>
  round(list.reduce((sum, r) => sum + f(r), 0) / list.length, 2);
const summary = (list: HedgeClientResult[]) => ({
  latencyP50Ms: mean(list, (r) => r.latencyMs.p50),
  latencyP99Ms: mean(list, (r) => r.latencyMs.p99),
  latencyP999Ms: mean(list, (r) => r.latencyMs.p999),
  ttftP99Ms: mean(list, (r) => r.ttftMs.p99),
  extraCallsPercent: mean(list, (r) => (100 * r.hedgedCalls) / r.succeeded),
  failed: mean(list, (r) => r.failed),
  wallMs: mean(list, (r) => r.wallMs),
});
const off = summary(runs.off);
const on = summary(runs.on);
const p99Ratios = runs.off.map((r, i) => r.latencyMs.p99 / runs.on[i]!.latencyMs.p99);
const worstExtra = Math.max(...runs.on.map((r) => r.hedgedCalls / r.succeeded));
const verdicts = [
  {
    figure: 'p99 latency off / on, lowest rep',
    value: round(Math.min(...p99Ratios), 2),
    target: '>= 3',
    pass: Math.min(...p99Ratios) >= 3,
  },
  {
    figure: 'extra calls / calls with hedging on, highest rep',
    value: round(worstExtra, 4),
    target: `<= ${BUDGET}`,
    pass: worstExtra <= BUDGET,
  },
];
for (const v of verdicts)
  process.stderr.write(
    `${v.pass ? 'PASS' : 'FAIL'} hedging: ${v.figure} = ${v.value} (target ${v.target})\n`,
  );

const doc = {
  benchmark: 'hedging',
  date: new Date().toISOString(),
  git: machineInfo(ROOT).git.short,
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  setup: {
    requests,
    reps,
    concurrency,
    maxTokens: MAX_TOKENS,
    replicas: 2,
    server: simArgs(0).slice(0, -2).join(' '),
    hedge: 'defaults (p99 of time to first byte, budget 2%, minDelayMs 20, minSamples 100)',
  },
  verdicts,
  results: { off, on, p99Ratios: p99Ratios.map((r) => round(r, 2)), runs },
};
await writeFile(out, `${JSON.stringify(doc, null, 2)}\n`);
process.stderr.write(`wrote ${out}\n`);
