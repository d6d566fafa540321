/**
 * Runs the embeddings matrix: every contender through every cell (vector size x inputs per request
 * x response encoding), each run in a fresh contender process against a fresh simulator process,
 * repeated rep-major with the contender order rotated each rep. Writes
 * results/embeddings-<date>-<sha>.{json,md,html} and prints the Markdown on stdout (progress goes
 * to stderr).
 *
 *   node --import tsx embeddings/run-matrix.ts [--reps 3] [--quick] [--scenario d1536,n64,base64]
 *        [--contenders volley-async,volley-threads] [--scale 0.5] [--concurrency 16]
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createSimulator } from '@volley/sim';
import { WINDOW_END, WINDOW_START } from '../throughput/harness.js';
import type { MachineInfo, SystemCpu } from '../throughput/proc-stats.js';
import {
  loadAverage,
  machineInfo,
  processCpuMs,
  systemCores,
  systemCpu,
} from '../throughput/proc-stats.js';
import { startSim, stopChild } from '../throughput/processes.js';
import { NOISY_OTHER_CORES } from '../throughput/report.js';
import type { EmbedContenderResult } from './harness.js';
import type { BenchDocument, Bound, RunRecord } from './report.js';
import { derive, renderHtml, renderMarkdown, SCHEMA } from './report.js';
import type { EmbedScenario } from './scenarios.js';
import { buildScenarios, CONTENDERS, KNOWN_CONTENDERS, matchesScenario } from './scenarios.js';
import { inputsFor, JSON_HEADERS, MODEL } from './workload.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const BENCH_DIR = dirname(HERE);
const REPO_DIR = dirname(BENCH_DIR);
const CLI_BIN = join(REPO_DIR, 'packages/cli/bin/volley.js');
/** `volley sim` plus `ignoreEncodingFormat` and a flat cache, for the float cells (see sim-server.mjs). */
const FLOAT_SIM = join(HERE, 'sim-server.mjs');
const RESULTS_DIR = join(BENCH_DIR, 'results');

const { values: flags } = parseArgs({
  // `pnpm run bench:embeddings -- --quick` passes the `--` through; it is not an end-of-options marker here.
  args: process.argv.slice(2).filter((arg) => arg !== '--'),
  options: {
    reps: { type: 'string' },
    quick: { type: 'boolean', default: false },
    scenario: { type: 'string', multiple: true },
    contenders: { type: 'string', multiple: true },
    concurrency: { type: 'string' },
    scale: { type: 'string' },
    requests: { type: 'string' },
    warmup: { type: 'string' },
    'retry-noisy': { type: 'string' },
    'quiet-wait-ms': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

if (flags.help) {
  process.stdout.write(`usage: node --import tsx embeddings/run-matrix.ts [options]
  --reps N             repetitions of the whole matrix (default 3; 1 with --quick)
  --quick              one rep, a tenth of the vectors: a smoke test, not a measurement
  --scenario LIST      cell ids (d1536-n64-base64) or parts (d1536, n64, base64); parts of one kind
                       are alternatives, kinds combine: d384,d1536,base64
  --contenders LIST    any of ${KNOWN_CONTENDERS.join(', ')} (default: ${CONTENDERS.join(', ')})
  --concurrency N      requests in flight (default 16)
  --scale X            multiply every cell's vector budget (e.g. 0.5)
  --requests N         measured requests per run (overrides the cells')
  --warmup N           warm-up requests per run (overrides the cells')
  --retry-noisy N      repeat a noisy run up to N times, the repeat replacing it (default 1; 0 = never)
  --quiet-wait-ms N    longest wait for the machine to go quiet before each run (default 6000)
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
const quietWaitMaxMs =
  flags['quiet-wait-ms'] === '0'
    ? 0
    : (optionalInt('quiet-wait-ms', flags['quiet-wait-ms']) ?? 6000);
const scale = flags.scale === undefined ? undefined : Number(flags.scale);
if (scale !== undefined && !(scale > 0)) throw new Error(`--scale must be > 0, got ${flags.scale}`);
const scenarioTokens = list(flags.scenario);
const scenarios = buildScenarios({
  quick: flags.quick,
  concurrency: optionalInt('concurrency', flags.concurrency),
  scale,
  requests: optionalInt('requests', flags.requests),
  warmupRequests: optionalInt('warmup', flags.warmup),
}).filter((scenario) => matchesScenario(scenario, scenarioTokens));
if (scenarios.length === 0) throw new Error(`no cell matches ${scenarioTokens.join(', ')}`);
const contenderTokens = list(flags.contenders);
const unknown = contenderTokens.filter((name) => !KNOWN_CONTENDERS.includes(name));
if (unknown.length > 0)
  throw new Error(
    `unknown contender(s): ${unknown.join(', ')}; known: ${KNOWN_CONTENDERS.join(', ')}`,
  );
const contenders: string[] =
  contenderTokens.length > 0
    ? KNOWN_CONTENDERS.filter((name) => contenderTokens.includes(name))
    : [...CONTENDERS];

/** A run that has not finished after this long is killed and recorded as failed. */
const RUN_TIMEOUT_MS = 180_000;
const QUIET_SAMPLE_MS = 400;

/** Other sessions share this box: wait (bounded) until it is below the noise threshold. */
async function waitForQuiet(cores: number): Promise<number> {
  const started = performance.now();
  if (quietWaitMaxMs === 0) return 0;
  for (;;) {
    const before = systemCpu();
    await sleep(QUIET_SAMPLE_MS);
    const after = systemCpu();
    if (before === undefined || after === undefined) return 0;
    const { busyCores, stealCores } = systemCores(before, after, cores);
    const waited = performance.now() - started;
    if (
      (busyCores <= NOISY_OTHER_CORES && stealCores <= NOISY_OTHER_CORES) ||
      waited >= quietWaitMaxMs
    )
      return Math.round(waited);
  }
}

/** The server and contender of the run in progress, killed if the runner is interrupted. */
const active = new Set<ChildProcess>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
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
    ) as { version?: string };
    return manifest.version ?? '?';
  } catch {
    return '?';
  }
}

/**
 * Bytes of one response body per cell, from one probe request each to an in-process simulator
 * (the same code as the server the runs use), before the matrix starts.
 */
async function probeWireBytes(cells: readonly EmbedScenario[]): Promise<Record<string, number>> {
  const sim = await createSimulator({ logBodies: false });
  const sizes: Record<string, number> = {};
  try {
    for (const cell of cells) {
      const response = await fetch(`${sim.url}/embeddings`, {
        method: 'POST',
        headers: JSON_HEADERS,
        body: JSON.stringify({
          model: MODEL,
          input: inputsFor(0, cell.inputsPerRequest),
          dimensions: cell.dimensions,
          encoding_format: cell.encoding,
        }),
      });
      sizes[cell.id] = (await response.arrayBuffer()).byteLength;
    }
  } finally {
    await sim.close();
  }
  return sizes;
}

function spawnContender(contender: string, url: string, cell: EmbedScenario): ChildProcess {
  return spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(HERE, 'contenders', `${contender}.ts`),
      url,
      String(cell.concurrency),
      String(cell.requests),
      String(cell.warmupRequests),
      String(cell.dimensions),
      String(cell.inputsPerRequest),
      cell.encoding,
    ],
    { cwd: BENCH_DIR, stdio: ['ignore', 'pipe', 'pipe'] },
  );
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

function classify(result: EmbedContenderResult, serverCores: number): Bound {
  if (result.clientCores >= 0.85) return 'client';
  if (serverCores >= 0.85) return 'server';
  return 'shared';
}

async function runOne(
  machine: MachineInfo,
  cell: EmbedScenario,
  contender: string,
  rep: number,
  position: number,
): Promise<RunRecord> {
  const quietWaitMs = await waitForQuiet(machine.cores);
  const record: RunRecord = {
    rep,
    position,
    scenario: cell.id,
    contender,
    ok: false,
    noisy: false,
    quietWaitMs,
    loadAverage1m: loadAverage()[0],
    startedAt: new Date().toISOString(),
  };
  // A fresh server per run: no run inherits another's sockets, heap, cache or request log.
  const sim =
    cell.encoding === 'float'
      ? await startSim(FLOAT_SIM, 0, 15_000, ['--ignore-encoding-format', '--flatten-cache'])
      : await startSim(CLI_BIN, 0);
  active.add(sim.process);
  try {
    const child = spawnContender(contender, sim.url, cell);
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
      record.error = `timed out after ${RUN_TIMEOUT_MS / 1000} s`;
      void stopChild(child, 1000);
    }, RUN_TIMEOUT_MS);
    const [code] = (await once(child, 'close')) as [number | null];
    clearTimeout(timer);
    active.delete(child);

    const last = stdout.filter((line) => line.startsWith('{')).at(-1);
    const result = last === undefined ? undefined : (JSON.parse(last) as EmbedContenderResult);
    if (result !== undefined) record.result = result;
    if (code !== 0 || result === undefined) {
      record.error ??=
        result !== undefined && result.spotCheck !== 'ok'
          ? result.spotCheck
          : `exit code ${String(code)}; stderr: ${stderr.slice(-8).join(' | ').slice(0, 1500)}`;
      return record;
    }
    record.ok = true;
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
        cpuMsPer1kVectors:
          result.vectors > 0 ? Math.round((serverCpuMs / result.vectors) * 1000 * 10) / 10 : 0,
      };
      record.system = {
        busyCores: round3(busyCores),
        stealCores: round3(stealCores),
        otherCores: round3(otherCores),
      };
      record.noisy = otherCores > NOISY_OTHER_CORES || stealCores > NOISY_OTHER_CORES;
      record.bound = classify(result, serverCores);
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
  `node --import tsx embeddings/run-matrix.ts ${process.argv.slice(2).join(' ')}`.trim();
const total = reps * scenarios.length * contenders.length;
log(
  `embeddings matrix: ${reps} rep(s) x ${scenarios.length} cell(s) x ${contenders.length} contender(s) = ${total} runs`,
);
log(
  `machine: ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, git ${machine.git.short}${machine.git.dirty ? ' (dirty)' : ''}, load ${loadAverageBefore.join(' ')}`,
);
const wireBytes = await probeWireBytes(scenarios);

const runs: RunRecord[] = [];
let done = 0;
for (let rep = 1; rep <= reps; rep++) {
  for (const cell of scenarios) {
    const order = rotate(contenders, rep - 1);
    for (const [position, contender] of order.entries()) {
      let run = await runOne(machine, cell, contender, rep, position);
      for (let retry = 0; run.noisy && retry < retryNoisy; retry++) {
        log(
          `  noisy (others ${run.system?.otherCores.toFixed(2)} cores): repeating ${cell.id} ${contender}`,
        );
        run.replaced = true;
        runs.push(run);
        run = await runOne(machine, cell, contender, rep, position);
      }
      runs.push(run);
      done++;
      const r = run.result;
      log(
        run.ok && r
          ? `[${done}/${total}] rep ${rep} ${cell.id} ${contender}: ${Math.round(r.vectorsPerSec)} vectors/s, client ${r.cpuMsPer1kVectors.toFixed(1)} ms/1k (${r.clientCores.toFixed(2)} cores, loop p99 ${r.eventLoopDelayP99Ms} ms), server ${run.server?.cores.toFixed(2) ?? '?'} cores, others ${run.system?.otherCores.toFixed(2) ?? '?'} cores, ${(r.wallMs / 1000).toFixed(1)} s${run.noisy ? ' NOISY' : ''}${r.errors > 0 ? ` ERRORS ${r.errors}` : ''}`
          : `[${done}/${total}] rep ${rep} ${cell.id} ${contender}: FAILED ${run.error ?? ''}`,
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
    ['volley', 'undici', 'openai', 'p-limit'].map((name) => [name, packageVersion(name)]),
  ),
  config: {
    reps,
    quick: flags.quick,
    contenders,
    scenarios,
    noisyOtherCores: NOISY_OTHER_CORES,
    retryNoisy,
    quietWaitMaxMs,
  },
  wireBytes,
  runs,
  summaries: [],
  verdicts: [],
  rules: [],
};
derive(doc);

mkdirSync(RESULTS_DIR, { recursive: true });
// Colons are not portable in file names; seconds resolution keeps consecutive runs apart.
const stamp = startedAt.toISOString().slice(0, 19).replace(/:/g, '');
const base = join(RESULTS_DIR, `embeddings-${stamp}Z-${machine.git.short || 'nogit'}`);
const markdown = renderMarkdown(doc);
writeFileSync(`${base}.json`, `${JSON.stringify(doc, null, 2)}\n`);
writeFileSync(`${base}.md`, markdown);
writeFileSync(`${base}.html`, renderHtml(doc, markdown));
log(`results: ${relative(process.cwd(), `${base}.json`)} (.md, .html alongside)`);
process.stdout.write(`${markdown}\n`);
