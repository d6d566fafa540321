/**
 * The machinery both matrix runners share (throughput/run-matrix.ts, embeddings/run-matrix.ts):
 * the common flags, waiting for the shared machine to go quiet, one run (a fresh server and a
 * fresh contender process, the server's and the machine's CPU read over the window the contender
 * announces), the rep-major loop with the contender order rotated every rep and noisy runs
 * repeated, and the result files.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { WINDOW_END, WINDOW_START } from '../throughput/harness.js';
import type { MachineInfo, SystemCpu } from '../throughput/proc-stats.js';
import {
  loadAverage,
  machineInfo,
  processCpuMs,
  systemCores,
  systemCpu,
} from '../throughput/proc-stats.js';
import type { SimServer } from '../throughput/processes.js';
import { stopChild } from '../throughput/processes.js';
import type { MatrixRun, ResultBase } from './report.js';
import { NOISY_OTHER_CORES } from './report.js';

/** The flags every runner takes (`parseArgs` options). */
export const COMMON_FLAGS = {
  reps: { type: 'string' },
  quick: { type: 'boolean', default: false },
  scenario: { type: 'string', multiple: true },
  contenders: { type: 'string', multiple: true },
  warmup: { type: 'string' },
  'retry-noisy': { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

/** `--x a,b --x c` -> [a, b, c]. */
export function list(values: string[] | undefined): string[] {
  return (values ?? [])
    .flatMap((value) => value.split(','))
    .map((value) => value.trim())
    .filter(Boolean);
}

export function optionalInt(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`--${name} must be a positive integer, got ${raw}`);
  return value;
}

/** A non-negative count flag: `0` is allowed and means none. */
export function countFlag(name: string, raw: string | undefined, fallback: number): number {
  return raw === '0' ? 0 : (optionalInt(name, raw) ?? fallback);
}

/** The contenders named (in `known` order), or `defaults`; throws on an unknown name. */
export function selectContenders(
  values: string[] | undefined,
  known: readonly string[],
  defaults: readonly string[],
): string[] {
  const tokens = list(values);
  const unknown = tokens.filter((name) => !known.includes(name));
  if (unknown.length > 0)
    throw new Error(`unknown contender(s): ${unknown.join(', ')}; known: ${known.join(', ')}`);
  return tokens.length > 0 ? known.filter((name) => tokens.includes(name)) : [...defaults];
}

export function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

const QUIET_SAMPLE_MS = 400;

/**
 * Other sessions share this box. Starting a run while they are busy wastes it, so wait (at most
 * `maxMs`; 0 = not at all) until the machine, with no server or contender of ours running, is
 * below the noise threshold. Returns how long it waited.
 */
export async function waitForQuiet(cores: number, maxMs: number): Promise<number> {
  const started = performance.now();
  if (maxMs === 0) return 0;
  for (;;) {
    const before = systemCpu();
    await sleep(QUIET_SAMPLE_MS);
    const after = systemCpu();
    if (before === undefined || after === undefined) return 0;
    const { busyCores, stealCores } = systemCores(before, after, cores);
    const waited = performance.now() - started;
    if ((busyCores <= NOISY_OTHER_CORES && stealCores <= NOISY_OTHER_CORES) || waited >= maxMs) {
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

export function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** Server CPU per 1,000 units (requests, vectors), to 0.1 ms. */
export function per1k(cpuMs: number, units: number): number {
  return units > 0 ? Math.round((cpuMs / units) * 1000 * 10) / 10 : 0;
}

/** Which run this is. */
export interface RunSlot {
  machine: MachineInfo;
  scenario: string;
  contender: string;
  rep: number;
  position: number;
}

/** The server's CPU over the window: total and cores, as the records keep them. */
export function serverCpu(cpuMs: number, cores: number): { cpuMs: number; cores: number } {
  return { cpuMs: Math.round(cpuMs), cores: round3(cores) };
}

/** How one run is started and judged; the rest of a run is the same for every matrix. */
export interface RunPlan<Result extends ResultBase, Server, Bound extends string> extends RunSlot {
  quietWaitMaxMs: number;
  /** A run that has not finished after this long is killed and recorded as failed. */
  timeoutMs: number;
  startServer(): Promise<SimServer>;
  /** The contender process against the server at `url`, stdout and stderr piped. */
  spawn(url: string): ChildProcess;
  /** Keep the result line of a run that failed (exit code not 0) in the record. */
  keepFailedResult?: boolean;
  /** Why a run whose process failed did, read from its result line, if it says. */
  failure?(result: Result): string | undefined;
  server(cpuMs: number, cores: number, result: Result): Server;
  classify(result: Result, serverCores: number): Bound;
}

export async function runOne<Result extends ResultBase, Server, Bound extends string>(
  plan: RunPlan<Result, Server, Bound>,
): Promise<MatrixRun<Result, Server, Bound>> {
  const quietWaitMs = await waitForQuiet(plan.machine.cores, plan.quietWaitMaxMs);
  const record: MatrixRun<Result, Server, Bound> = {
    rep: plan.rep,
    position: plan.position,
    scenario: plan.scenario,
    contender: plan.contender,
    ok: false,
    noisy: false,
    quietWaitMs,
    loadAverage1m: loadAverage()[0],
    startedAt: new Date().toISOString(),
  };
  // A fresh server per run: no run inherits another's sockets, heap, cache or request log.
  const sim = await plan.startServer();
  active.add(sim.process);
  try {
    const child = plan.spawn(sim.url);
    active.add(child);
    let start: Window | undefined;
    let end: Window | undefined;
    const stdout: string[] = [];
    const stderr: string[] = [];
    // The contender announces its window on stderr; read the counters the moment it does.
    if (child.stderr === null || child.stdout === null) throw new Error('contender has no pipes');
    createInterface({ input: child.stderr }).on('line', (line) => {
      if (line === WINDOW_START) start = snapshot(sim.pid);
      else if (line === WINDOW_END) end = snapshot(sim.pid);
      else stderr.push(line);
    });
    createInterface({ input: child.stdout }).on('line', (line) => stdout.push(line));
    const timer = setTimeout(() => {
      record.error = `timed out after ${plan.timeoutMs / 1000} s`;
      void stopChild(child, 1000);
    }, plan.timeoutMs);
    const [code] = (await once(child, 'close')) as [number | null];
    clearTimeout(timer);
    active.delete(child);

    const last = stdout.filter((line) => line.startsWith('{')).at(-1);
    const result = last === undefined ? undefined : (JSON.parse(last) as Result);
    if (result !== undefined && (code === 0 || plan.keepFailedResult === true))
      record.result = result;
    if (code !== 0 || result === undefined) {
      record.error ??=
        (result === undefined ? undefined : plan.failure?.(result)) ??
        `exit code ${String(code)}; stderr: ${stderr.slice(-8).join(' | ').slice(0, 1500)}`;
      return record;
    }
    record.ok = true;
    if (start !== undefined && end !== undefined) {
      const wallMs = end.at - start.at;
      const serverCpuMs = end.serverCpuMs - start.serverCpuMs;
      const serverCores = serverCpuMs / wallMs;
      const { busyCores, stealCores } = systemCores(start.system, end.system, plan.machine.cores);
      // Everything busy that was neither the client nor the server: other sessions on the box.
      const otherCores = Math.max(0, busyCores - result.clientCores - serverCores);
      record.server = plan.server(serverCpuMs, serverCores, result);
      record.system = {
        busyCores: round3(busyCores),
        stealCores: round3(stealCores),
        otherCores: round3(otherCores),
      };
      record.noisy = otherCores > NOISY_OTHER_CORES || stealCores > NOISY_OTHER_CORES;
      record.bound = plan.classify(result, serverCores);
    }
    return record;
  } finally {
    await sim.stop();
    active.delete(sim.process);
  }
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = items.length === 0 ? 0 : by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

/** What a matrix runs, and what it calls its scenarios in the progress lines. */
export interface MatrixSetup<S extends { id: string }> {
  /** `throughput`, `embeddings`: the progress header and the result files' prefix. */
  name: string;
  /** `scenario`, `cell`. */
  scenarioNoun: string;
  reps: number;
  quick: boolean;
  scenarios: S[];
  contenders: string[];
  retryNoisy: number;
}

/** The setup from the common flags: 3 reps (1 with --quick), noisy runs repeated once. */
export function matrixSetup<S extends { id: string }>(
  name: string,
  scenarioNoun: string,
  flags: { reps?: string | undefined; quick: boolean; 'retry-noisy'?: string | undefined },
  scenarios: S[],
  contenders: string[],
): MatrixSetup<S> {
  return {
    name,
    scenarioNoun,
    reps: optionalInt('reps', flags.reps) ?? (flags.quick ? 1 : 3),
    quick: flags.quick,
    scenarios,
    contenders,
    retryNoisy: countFlag('retry-noisy', flags['retry-noisy'], 1),
  };
}

/** What bounded a run, when it was not latency: a core's worth of client or server, else both. */
export function cpuBound(clientCores: number, serverCores: number): 'client' | 'server' | 'shared' {
  if (clientCores >= 0.85) return 'client';
  if (serverCores >= 0.85) return 'server';
  return 'shared';
}

export interface MatrixRuns<
  S extends { id: string },
  Run extends MatrixRun<ResultBase, unknown, string>,
> {
  runOne(scenario: S, slot: RunSlot): Promise<Run>;
  /** The progress line's text for a run that completed. */
  describe(run: Run, result: NonNullable<Run['result']>): string;
}

/** The machine the matrix runs on, read once before the first run. */
export function startMatrix(
  plan: MatrixSetup<{ id: string }>,
  repoDir: string,
): { machine: MachineInfo; loadAverageBefore: number[]; startedAt: Date } {
  const machine = machineInfo(repoDir);
  const loadAverageBefore = loadAverage();
  const startedAt = new Date();
  log(
    `${plan.name} matrix: ${plan.reps} rep(s) x ${plan.scenarios.length} ${plan.scenarioNoun}(s) x ${plan.contenders.length} contender(s) = ${plan.reps * plan.scenarios.length * plan.contenders.length} runs`,
  );
  log(
    `machine: ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, git ${machine.git.short}${machine.git.dirty ? ' (dirty)' : ''}, load ${loadAverageBefore.join(' ')}`,
  );
  return { machine, loadAverageBefore, startedAt };
}

/**
 * Rep-major: every scenario with every contender, then again, the contender order rotated each
 * rep so slow drift of the machine hits every contender alike. A noisy run is repeated right
 * away (up to `retryNoisy` times), the repeat replacing it; every run is returned.
 */
export async function runMatrix<
  S extends { id: string },
  Run extends MatrixRun<ResultBase, unknown, string>,
>(
  plan: MatrixSetup<S>,
  started: { machine: MachineInfo },
  matrix: MatrixRuns<S, Run>,
): Promise<Run[]> {
  const runs: Run[] = [];
  let done = 0;
  const total = plan.reps * plan.scenarios.length * plan.contenders.length;
  for (let rep = 1; rep <= plan.reps; rep++) {
    for (const scenario of plan.scenarios) {
      const order = rotate(plan.contenders, rep - 1);
      for (const [position, contender] of order.entries()) {
        const slot = { machine: started.machine, scenario: scenario.id, contender, rep, position };
        let run = await matrix.runOne(scenario, slot);
        for (let retry = 0; run.noisy && retry < plan.retryNoisy; retry++) {
          log(
            `  noisy (others ${run.system?.otherCores.toFixed(2)} cores): repeating ${scenario.id} ${contender}`,
          );
          run.replaced = true;
          runs.push(run);
          run = await matrix.runOne(scenario, slot);
        }
        runs.push(run);
        done++;
        const r = run.result as NonNullable<Run['result']> | undefined;
        log(
          run.ok && r
            ? `[${done}/${total}] rep ${rep} ${scenario.id} ${contender}: ${matrix.describe(run, r)}`
            : `[${done}/${total}] rep ${rep} ${scenario.id} ${contender}: FAILED ${run.error ?? ''}`,
        );
      }
    }
  }
  return runs;
}

/** The versions of the libraries under test, as installed for the benchmarks. */
export function packageVersions(
  benchDir: string,
  names: readonly string[],
): Record<string, string> {
  return Object.fromEntries(
    names.map((name) => {
      try {
        const manifest = JSON.parse(
          readFileSync(join(benchDir, 'node_modules', name, 'package.json'), 'utf8'),
        ) as { version?: string };
        return [name, manifest.version ?? '?'];
      } catch {
        return [name, '?'];
      }
    }),
  );
}

/**
 * The head of the result document, once the matrix is done: command line, times, machine,
 * library versions, and the configuration (the setup's, then `extra`).
 */
export function documentHead<S extends { id: string }, Extra extends object>(
  script: string,
  setup: MatrixSetup<S>,
  started: { machine: MachineInfo; loadAverageBefore: number[]; startedAt: Date },
  versions: Record<string, string>,
  extra: Extra,
) {
  const finishedAt = new Date();
  const { machine, loadAverageBefore, startedAt } = started;
  const { reps, quick, contenders, scenarios, retryNoisy } = setup;
  return {
    command: `node --import tsx ${script} ${process.argv.slice(2).join(' ')}`.trim(),
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationS: Math.round((finishedAt.getTime() - startedAt.getTime()) / 100) / 10,
    machine: { ...machine, loadAverageBefore, loadAverageAfter: loadAverage() },
    versions,
    config: {
      reps,
      quick,
      contenders,
      scenarios,
      noisyOtherCores: NOISY_OTHER_CORES,
      retryNoisy,
      ...extra,
    },
  };
}

/**
 * Writes `<resultsDir>/<name>-<UTC time>Z-<short sha>.{json,md,html}` and prints the Markdown on
 * stdout.
 */
export function writeResults(
  resultsDir: string,
  name: string,
  doc: { startedAt: string; machine: MachineInfo },
  markdown: string,
  html: string,
): void {
  mkdirSync(resultsDir, { recursive: true });
  // Colons are not portable in file names; seconds resolution keeps consecutive runs apart.
  const stamp = doc.startedAt.slice(0, 19).replace(/:/g, '');
  const base = join(resultsDir, `${name}-${stamp}Z-${doc.machine.git.short || 'nogit'}`);
  writeFileSync(`${base}.json`, `${JSON.stringify(doc, null, 2)}\n`);
  writeFileSync(`${base}.md`, markdown);
  writeFileSync(`${base}.html`, html);
  log(`results: ${relative(process.cwd(), `${base}.json`)} (.md, .html alongside)`);
  process.stdout.write(`${markdown}\n`);
}
