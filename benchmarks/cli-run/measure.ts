/**
 * Runs one batch client as a whole process and prints one JSON line (`CliResult`): wall time from
 * spawn to exit, the child's CPU (user+system of all its threads and of any children it waited
 * for, read from /proc/self/stat's cutime/cstime once it has exited: exact, start-up included),
 * its peak RSS (VmHWM, sampled every 50 ms), then, outside the window, the output file's check.
 * The window is announced on stderr like the throughput contenders' (harness.ts), so the shared
 * runner reads the server's and the machine's CPU over it.
 *
 *   node --import tsx cli-run/measure.ts <contender> <lines> <output.jsonl> -- <command> [args...]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { ResultBase } from '../shared/report.js';
import { round, WINDOW_END, WINDOW_START } from '../throughput/harness.js';
import { exitedChildrenCpuMs, peakRssMb, threadCpuMs } from '../throughput/proc-stats.js';
import type { OutputCheck } from './batch-file.js';
import { checkBatchOutput } from './batch-file.js';

export interface CliResult extends ResultBase {
  contender: string;
  lines: number;
  exitCode: number | null;
  wallMs: number;
  linesPerSec: number;
  cpuMs: number;
  /** Client CPU per input line, µs (= ms per 1,000 lines). */
  cpuUsPerLine: number;
  /**
   * The split of that CPU between the main thread and all other threads (GC helpers, libuv pool,
   * worker_threads), µs per line: each thread's CPU at the last 50 ms sample that saw it, so
   * slightly short of cpuUsPerLine.
   */
  mainThreadUsPerLine: number;
  otherThreadsUsPerLine: number;
  check: OutputCheck;
}

const [contender, linesArg, output, separator, command, ...args] = process.argv.slice(2);
if (contender === undefined || output === undefined || separator !== '--' || command === undefined)
  throw new Error('usage: measure.ts <contender> <lines> <output.jsonl> -- <command> [args...]');
const lines = Number(linesArg);

process.stderr.write(`${WINDOW_START}\n`);
const cpuBefore = exitedChildrenCpuMs();
const started = performance.now();
const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
let stderr = '';
child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
  stderr = (stderr + chunk).slice(-3000);
});
let maxRssMb = 0;
/** Each thread's CPU at the last sample that saw it: threads that exit keep their time. */
const threads = new Map<number, number>();
const sampler = setInterval(() => {
  if (child.pid === undefined) return;
  maxRssMb = Math.max(maxRssMb, peakRssMb(child.pid) ?? 0);
  for (const [tid, ms] of threadCpuMs(child.pid)) threads.set(tid, ms);
}, 50);
const [exitCode] = (await once(child, 'exit')) as [number | null];
const wallMs = performance.now() - started;
const cpuMs = exitedChildrenCpuMs() - cpuBefore;
clearInterval(sampler);
process.stderr.write(`${WINDOW_END}\n`);

const check = await checkBatchOutput(output, lines).catch(
  (error: unknown): OutputCheck => ({
    records: 0,
    ok: 0,
    missing: lines,
    duplicates: 0,
    bad: 0,
    firstProblem: `output unreadable: ${String(error)}`,
  }),
);
const mainMs = child.pid === undefined ? 0 : (threads.get(child.pid) ?? 0);
const otherThreadsMs = [...threads.values()].reduce((sum, ms) => sum + ms, 0) - mainMs;
// Every line without exactly one good record, and every record too many.
const errors = check.missing + check.bad + check.duplicates;
const result: CliResult = {
  contender,
  lines,
  exitCode,
  wallMs: round(wallMs, 1),
  linesPerSec: round((check.ok / wallMs) * 1000, 1),
  cpuMs: round(cpuMs, 1),
  cpuUsPerLine: round((cpuMs / lines) * 1000, 2),
  mainThreadUsPerLine: round((mainMs / lines) * 1000, 1),
  otherThreadsUsPerLine: round((otherThreadsMs / lines) * 1000, 1),
  clientCores: round(cpuMs / wallMs, 3),
  maxRssMb: round(maxRssMb, 1),
  errors,
  check,
};
const firstError =
  exitCode === 0
    ? check.firstProblem
    : `exit code ${String(exitCode)}: ${stderr.trim().slice(-600)}`;
if (firstError !== undefined) result.firstError = firstError;
process.stdout.write(`${JSON.stringify(result)}\n`, () =>
  process.exit(exitCode === 0 && errors === 0 ? 0 : 1),
);
