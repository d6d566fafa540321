/**
 * kill -9 at random moments, then --resume, many times: does anything get lost, duplicated or
 * torn, and does every body equal what the server returned?
 *
 *   node --import tsx scripts/kill-resume-harness.ts --runs 20 --lines 10000 [--order input]
 *
 * The simulator runs in this process; each `volley run` is a child process (the real CLI from
 * dist, so build first). Each run writes a fresh batch, starts the CLI, kills it with SIGKILL at a
 * moment drawn uniformly from [0, one uninterrupted run's duration] (start-up and the preflight
 * pass included), then resumes until it exits 0 and checks the files. Kill moments come from a
 * seeded generator (`--seed`), so a failing sequence can be replayed. Prints a table and a JSON
 * summary; exits 1 if any run lost, duplicated, tore or altered a record.
 */

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createSimulator } from '../packages/sim/dist/index.js';
import type { BatchCheck } from '../test/cli-batch-check.js';
import { checkBatchOutput } from '../test/cli-batch-check.js';
import { CLI, writeBatch } from '../test/helpers.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    lines: { type: 'string', default: '10000' },
    order: { type: 'string', default: 'completion' },
    concurrency: { type: 'string', default: '64' },
    'latency-ms': { type: 'string', default: '2' },
    seed: { type: 'string', default: '1' },
    mode: { type: 'string', default: 'async' },
  },
});
const runs = Number(values.runs);
const lines = Number(values.lines);
const order = values.order;
const latencyMs = Number(values['latency-ms']);

/** mulberry32: a small seeded generator, so a run's kill moments can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = seeded(Number(values.seed));

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function startCli(args: string[]): { pid: number; exited: Promise<Exit>; kill(): void } {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<Exit>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
  return { pid: child.pid ?? -1, exited, kill: () => child.kill('SIGKILL') };
}

const sim = await createSimulator({ latency: { headersMs: latencyMs } });
const baseArgs = (input: string, output: string): string[] => [
  'run',
  input,
  '-o',
  output,
  '--base-url',
  sim.url,
  '--progress',
  'none',
  '--concurrency',
  values.concurrency,
  '--order',
  order,
  '--mode',
  values.mode,
];

interface RunReport extends BatchCheck {
  run: number;
  killAtMs: number;
  killedMidRun: boolean;
  recordsAtKill: number;
  resumes: number;
  repairedTail: boolean;
  resentRequests: number;
  resumeMs: number;
}

try {
  // One uninterrupted run sets the time scale the kill moments are drawn from.
  const calibration = await mkdtemp(join(tmpdir(), 'volley-kill-'));
  await writeBatch(join(calibration, 'in.jsonl'), lines);
  const t0 = performance.now();
  const first = await startCli(
    baseArgs(join(calibration, 'in.jsonl'), join(calibration, 'out.jsonl')),
  ).exited;
  const fullMs = performance.now() - t0;
  await rm(calibration, { recursive: true, force: true });
  if (first.code !== 0) throw new Error(`calibration run failed: ${first.stderr}`);
  process.stderr.write(
    `uninterrupted run of ${lines} lines (${order} order): ${fullMs.toFixed(0)} ms\n`,
  );

  const reports: RunReport[] = [];
  for (let run = 1; run <= runs; run++) {
    const dir = await mkdtemp(join(tmpdir(), 'volley-kill-'));
    const input = join(dir, 'in.jsonl');
    const output = join(dir, 'out.jsonl');
    await writeBatch(input, lines);
    let requestsBefore = 0;
    // A moment after the run would have ended is drawn again: every run must really be killed.
    let killAtMs = 0;
    let killedMidRun = false;
    for (let draw = 0; draw < 5 && !killedMidRun; draw++) {
      await rm(output, { force: true });
      for (const side of ['out.errors.jsonl', 'out.retry.jsonl', 'out.jsonl.volley-state.json']) {
        await rm(join(dir, side), { force: true });
      }
      requestsBefore = sim.stats().requests;
      killAtMs = Math.round(random() * fullMs);
      const victim = startCli(baseArgs(input, output));
      const timer = setTimeout(() => victim.kill(), killAtMs);
      const killed = await victim.exited;
      clearTimeout(timer);
      killedMidRun = killed.signal === 'SIGKILL';
    }
    const atKill = await checkBatchOutput(lines, output, join(dir, 'out.errors.jsonl'));
    let resumes = 0;
    let repairedTail = false;
    const r0 = performance.now();
    for (;;) {
      resumes++;
      const resumed = await startCli([...baseArgs(input, output), '--resume']).exited;
      if (/repaired the \w+ file/.test(resumed.stderr)) repairedTail = true;
      if (resumed.code === 0) break;
      if (resumes >= 3)
        throw new Error(`run ${run}: resume exited ${resumed.code}: ${resumed.stderr}`);
    }
    const resumeMs = performance.now() - r0;
    const check = await checkBatchOutput(lines, output, join(dir, 'out.errors.jsonl'));
    const report: RunReport = {
      run,
      killAtMs,
      killedMidRun,
      recordsAtKill: atKill.records,
      resumes,
      repairedTail,
      resentRequests: sim.stats().requests - requestsBefore - lines,
      resumeMs: Math.round(resumeMs),
      ...check,
    };
    reports.push(report);
    process.stderr.write(
      `run ${String(run).padStart(2)}: kill at ${String(killAtMs).padStart(5)} ms ` +
        `(${killedMidRun ? `${String(atKill.records).padStart(5)} records written` : 'after it finished'}), ` +
        `resumed in ${report.resumeMs} ms${repairedTail ? ', torn tail repaired' : ''}: ` +
        `lost ${check.lost}, duplicated ${check.duplicated}, torn ${check.torn}, ` +
        `mismatched ${check.mismatched}, re-sent ${report.resentRequests}` +
        (order === 'input' ? `, out of order ${check.outOfOrder}` : '') +
        '\n',
    );
    await rm(dir, { recursive: true, force: true });
  }
  const sum = (key: keyof BatchCheck | 'resentRequests'): number =>
    reports.reduce((total, r) => total + r[key], 0);
  const summary = {
    runs,
    lines,
    order,
    mode: values.mode,
    concurrency: Number(values.concurrency),
    latencyMs,
    seed: Number(values.seed),
    uninterruptedMs: Math.round(fullMs),
    killedMidRun: reports.filter((r) => r.killedMidRun).length,
    repairedTails: reports.filter((r) => r.repairedTail).length,
    lost: sum('lost'),
    duplicated: sum('duplicated'),
    torn: sum('torn'),
    mismatched: sum('mismatched'),
    outOfOrder: sum('outOfOrder'),
    resentRequests: sum('resentRequests'),
    node: process.version,
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  const bad =
    summary.lost +
    summary.duplicated +
    summary.torn +
    summary.mismatched +
    (order === 'input' ? summary.outOfOrder : 0);
  process.exitCode = bad === 0 ? 0 : 1;
} finally {
  await sim.close();
}
