/**
 * Runs the throughput matrix: every contender through every scenario, each run in a fresh
 * contender process against a fresh `volley sim` process, repeated rep-major with the contender
 * order rotated each rep. Writes results/throughput-<date>-<sha>.{json,md,html} and prints the
 * Markdown on stdout (progress goes to stderr).
 *
 *   node --import tsx throughput/run-matrix.ts [--reps 3] [--quick] [--scenario 0ms-c256,c1024]
 *        [--contenders undici-raw,volley-async] [--count N] [--warmup N]
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ContenderResult } from './harness.js';
import { WINDOW_END, WINDOW_START } from './harness.js';
import type { MachineInfo, SystemCpu } from './proc-stats.js';
import { loadAverage, machineInfo, processCpuMs, systemCores, systemCpu } from './proc-stats.js';
import { spawnContender, startSim, stopChild } from './processes.js';
import type { BenchDocument, Bound, RunRecord } from './report.js';
import { NOISY_OTHER_CORES, renderHtml, renderMarkdown, SCHEMA, summarize } from './report.js';
import type { Scenario } from './scenarios.js';
import { buildScenarios, CONTENDERS, matchesScenario } from './scenarios.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const BENCH_DIR = dirname(HERE);
const REPO_DIR = dirname(BENCH_DIR);
const CLI_BIN = join(REPO_DIR, 'packages/cli/bin/volley.js');
const RESULTS_DIR = join(BENCH_DIR, 'results');

const { values: flags } = parseArgs({
  // `pnpm run bench -- --quick` passes the `--` through; it is not an end-of-options marker here.
  args: process.argv.slice(2).filter((arg) => arg !== '--'),
  options: {
    reps: { type: 'string' },
    quick: { type: 'boolean', default: false },
    scenario: { type: 'string', multiple: true },
    contenders: { type: 'string', multiple: true },
    count: { type: 'string' },
    warmup: { type: 'string' },
    'retry-noisy': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

if (flags.help) {
  process.stdout.write(`usage: pnpm -F @volley/benchmarks bench [options]
  --reps N            repetitions of the whole matrix (default 3; 1 with --quick)
  --quick             one rep, 2,000 requests per run: a smoke test, not a measurement
  --scenario LIST     e.g. 0ms-c256, or a part: 20ms, c1024 (comma-separated or repeated)
  --contenders LIST   any of ${CONTENDERS.join(', ')}
  --count N           measured requests per run (overrides the scenario's)
  --warmup N          warm-up requests per run (overrides the scenario's)
  --retry-noisy N     repeat a noisy run up to N times, the repeat replacing it (default 1; 0 = never)
`);
  process.exit(0);
}

function list(values: string[] | undefined): string[] {
  return (values ?? [])
    .flatMap((value) => value.split(','))
    .map((value) => value.trim())
    .filter(Boolean);
}

function optionalInt(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`--${name} must be a positive integer, got ${raw}`);
  return value;
}

const reps = optionalInt('reps', flags.reps) ?? (flags.quick ? 1 : 3);
const retryNoisy =
  flags['retry-noisy'] === '0' ? 0 : (optionalInt('retry-noisy', flags['retry-noisy']) ?? 1);
const scenarioTokens = list(flags.scenario);
const scenarios = buildScenarios({
  quick: flags.quick,
  count: optionalInt('count', flags.count),
  warmup: optionalInt('warmup', flags.warmup),
}).filter((scenario) => matchesScenario(scenario, scenarioTokens));
const contenderTokens = list(flags.contenders);
const unknown = contenderTokens.filter((name) => !(CONTENDERS as readonly string[]).includes(name));
if (unknown.length > 0)
  throw new Error(`unknown contender(s): ${unknown.join(', ')}; known: ${CONTENDERS.join(', ')}`);
const contenders: string[] =
  contenderTokens.length > 0
    ? CONTENDERS.filter((name) => contenderTokens.includes(name))
    : [...CONTENDERS];
if (scenarios.length === 0) throw new Error(`no scenario matches ${scenarioTokens.join(', ')}`);

/** A run that has not finished after this long is killed and recorded as failed. */
const RUN_TIMEOUT_MS = 300_000;
/** Longest wait for the shared machine to go quiet before a run starts anyway. */
const QUIET_WAIT_MAX_MS = 10_000;
const QUIET_SAMPLE_MS = 400;

/**
 * Other sessions share this box. Starting a run while they are busy wastes it, so wait until the
 * machine (with no server or contender of ours running) is below the noise threshold.
 */
async function waitForQuiet(cores: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    const before = systemCpu();
    await sleep(QUIET_SAMPLE_MS);
    const after = systemCpu();
    if (before === undefined || after === undefined) return 0;
    const { busyCores, stealCores } = systemCores(before, after, cores);
    const waited = performance.now() - started;
    if (
      (busyCores <= NOISY_OTHER_CORES && stealCores <= NOISY_OTHER_CORES) ||
      waited >= QUIET_WAIT_MAX_MS
    ) {
      return Math.round(waited);
    }
  }
}

/** The server and contender of the run in progress, killed if the runner is interrupted. */
const active = new Set<ChildProcess>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    // The simulator waits for a signal to exit: without this it would outlive an interrupted matrix.
    for (const child of active) child.kill('SIGTERM');
    process.exit(130);
  });
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

function packageVersion(name: string): string {
  try {
    const manifest = JSON.parse(
      readFileSync(join(BENCH_DIR, 'node_modules', name, 'package.json'), 'utf8'),
    ) as {
      version?: string;
    };
    return manifest.version ?? '?';
  } catch {
    return '?';
  }
}

interface Window {
  serverCpuMs: number;
  system: SystemCpu;
  at: number;
}

function snapshot(serverPid: number): Window | undefined {
  const serverCpuMs = processCpuMs(serverPid);
  const system = systemCpu();
  if (serverCpuMs === undefined || system === undefined) return undefined;
  return { serverCpuMs, system, at: performance.now() };
}

function classify(scenario: Scenario, result: ContenderResult, serverCores: number): Bound {
  if (
    scenario.latencyMs > 0 &&
    result.reqPerSec >= 0.8 * (scenario.concurrency / (scenario.latencyMs / 1000))
  ) {
    return 'latency';
  }
  if (result.clientCores >= 0.85) return 'client';
  if (serverCores >= 0.85) return 'server';
  return 'shared';
}

async function runOne(
  machine: MachineInfo,
  scenario: Scenario,
  contender: string,
  rep: number,
  position: number,
): Promise<RunRecord> {
  const quietWaitMs = await waitForQuiet(machine.cores);
  const record: RunRecord = {
    rep,
    position,
    scenario: scenario.id,
    contender,
    ok: false,
    noisy: false,
    quietWaitMs,
    loadAverage1m: loadAverage()[0],
    startedAt: new Date().toISOString(),
  };
  // A fresh server per run: no run inherits another's sockets, heap or request log.
  const sim = await startSim(CLI_BIN, scenario.latencyMs);
  active.add(sim.process);
  try {
    const child = spawnContender(contender, sim.url, scenario, scenario.count);

    active.add(child);
    let start: Window | undefined;
    let end: Window | undefined;
    const stdout: string[] = [];
    const stderr: string[] = [];
    // The contender announces its window on stderr; read the counters the moment it does.
    createInterface({ input: child.stderr }).on('line', (line) => {
      if (line === WINDOW_START) start = snapshot(sim.pid);
      else if (line === WINDOW_END) end = snapshot(sim.pid);
      else stderr.push(line);
    });
    createInterface({ input: child.stdout }).on('line', (line) => stdout.push(line));
    const timer = setTimeout(() => {
      record.error = `timed out after ${RUN_TIMEOUT_MS / 1000} s`;
      void stopChild(child, 1000);
    }, RUN_TIMEOUT_MS);
    const [code] = (await once(child, 'close')) as [number | null];
    clearTimeout(timer);
    active.delete(child);

    const last = stdout.filter((line) => line.startsWith('{')).at(-1);
    if (code !== 0 || last === undefined) {
      record.error ??= `exit code ${String(code)}; stderr: ${stderr.slice(-8).join(' | ').slice(0, 1500)}`;
      return record;
    }
    const result = JSON.parse(last) as ContenderResult;
    record.ok = true;
    record.result = result;
    if (start !== undefined && end !== undefined) {
      const wallMs = end.at - start.at;
      const serverCpuMs = end.serverCpuMs - start.serverCpuMs;
      const serverCores = serverCpuMs / wallMs;
      const { busyCores, stealCores } = systemCores(start.system, end.system, machine.cores);
      // Everything busy that was neither the client nor the server: other sessions on the box.
      const otherCores = Math.max(0, busyCores - result.clientCores - serverCores);
      record.server = {
        cpuMs: Math.round(serverCpuMs),
        cores: round3(serverCores),
        cpuMsPer1k:
          result.completed > 0 ? Math.round((serverCpuMs / result.completed) * 1000 * 10) / 10 : 0,
      };
      record.system = {
        busyCores: round3(busyCores),
        stealCores: round3(stealCores),
        otherCores: round3(otherCores),
      };
      record.noisy = otherCores > NOISY_OTHER_CORES || stealCores > NOISY_OTHER_CORES;
      record.bound = classify(scenario, result, serverCores);
    }
    return record;
  } finally {
    await sim.stop();
    active.delete(sim.process);
  }
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = items.length === 0 ? 0 : by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

const machine = machineInfo(REPO_DIR);
const loadAverageBefore = loadAverage();
const startedAt = new Date();
const command =
  `node --import tsx throughput/run-matrix.ts ${process.argv.slice(2).join(' ')}`.trim();
log(
  `throughput matrix: ${reps} rep(s) x ${scenarios.length} scenario(s) x ${contenders.length} contender(s) = ${reps * scenarios.length * contenders.length} runs`,
);
log(
  `machine: ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, git ${machine.git.short}${machine.git.dirty ? ' (dirty)' : ''}, load ${loadAverageBefore.join(' ')}`,
);

const runs: RunRecord[] = [];
let done = 0;
const total = reps * scenarios.length * contenders.length;
for (let rep = 1; rep <= reps; rep++) {
  for (const scenario of scenarios) {
    const order = rotate(contenders, rep - 1);
    for (const [position, contender] of order.entries()) {
      let run = await runOne(machine, scenario, contender, rep, position);
      for (let retry = 0; run.noisy && retry < retryNoisy; retry++) {
        log(
          `  noisy (others ${run.system?.otherCores.toFixed(2)} cores): repeating ${scenario.id} ${contender}`,
        );
        run.replaced = true;
        runs.push(run);
        run = await runOne(machine, scenario, contender, rep, position);
      }
      runs.push(run);
      done++;
      const r = run.result;
      log(
        run.ok && r
          ? `[${done}/${total}] rep ${rep} ${scenario.id} ${contender}: ${Math.round(r.reqPerSec)} req/s, client ${Math.round(r.cpuMsPer1k)} ms/1k (${r.clientCores.toFixed(2)} cores), server ${run.server?.cores.toFixed(2) ?? '?'} cores, others ${run.system?.otherCores.toFixed(2) ?? '?'} cores${run.noisy ? ' NOISY' : ''}${r.errors > 0 ? ` ERRORS ${r.errors}` : ''}`
          : `[${done}/${total}] rep ${rep} ${scenario.id} ${contender}: FAILED ${run.error ?? ''}`,
      );
    }
  }
}

const finishedAt = new Date();
const doc: BenchDocument = {
  schema: SCHEMA,
  command,
  startedAt: startedAt.toISOString(),
  finishedAt: finishedAt.toISOString(),
  durationS: Math.round((finishedAt.getTime() - startedAt.getTime()) / 100) / 10,
  machine: { ...machine, loadAverageBefore, loadAverageAfter: loadAverage() },
  versions: Object.fromEntries(
    ['volley', 'undici', 'openai', 'p-limit', 'autocannon'].map((name) => [
      name,
      packageVersion(name),
    ]),
  ),
  config: {
    reps,
    quick: flags.quick,
    contenders,
    scenarios,
    noisyOtherCores: NOISY_OTHER_CORES,
    retryNoisy,
  },
  runs,
  summaries: summarize(runs, scenarios, contenders),
};

mkdirSync(RESULTS_DIR, { recursive: true });
// Colons are not portable in file names; seconds resolution keeps consecutive runs apart.
const stamp = startedAt.toISOString().slice(0, 19).replace(/:/g, '');
const base = join(RESULTS_DIR, `throughput-${stamp}Z-${machine.git.short || 'nogit'}`);
const markdown = renderMarkdown(doc);
writeFileSync(`${base}.json`, `${JSON.stringify(doc, null, 2)}\n`);
writeFileSync(`${base}.md`, markdown);
writeFileSync(`${base}.html`, renderHtml(doc, markdown));
log(`results: ${relative(process.cwd(), `${base}.json`)} (.md, .html alongside)`);
process.stdout.write(`${markdown}\n`);
