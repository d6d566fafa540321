/**
 * What every contender process shares: argument parsing, the closed-loop lanes, and the measured
 * window. A contender warms up in-process first, then calls `measure`, which prints one JSON line
 * (`ContenderResult`) on stdout.
 *
 * The window is also announced on stderr (`WINDOW_START` / `WINDOW_END` lines) so the runner can
 * read the server's and the machine's CPU counters over the same interval.
 */

import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import type { RecordableHistogram } from 'node:perf_hooks';
import { createHistogram, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { GCProfiler } from 'node:v8';
import type { WorkloadName } from './workload.js';
import { parseWorkload } from './workload.js';

export const WINDOW_START = '@@bench-window-start';
export const WINDOW_END = '@@bench-window-end';

/** Set by `profile.ts`: write a V8 CPU profile of the measured window (warm-up excluded) here. */
export const PROFILE_ENV = 'BENCH_CPU_PROFILE';
/** Set by `profile.ts --heap`: write a sampled allocation profile of the measured window here. */
export const HEAP_PROFILE_ENV = 'BENCH_HEAP_PROFILE';
/** Set by `profile.ts --heap --promoted`: sample only allocations no young-generation GC freed. */
export const HEAP_PROMOTED_ENV = 'BENCH_HEAP_PROMOTED';

export interface ContenderArgs {
  url: string;
  concurrency: number;
  count: number;
  warmup: number;
  workload: WorkloadName;
}

export interface Tally {
  completed: number;
  errors: number;
  firstError?: string;
}

export interface ContenderResult extends Tally {
  contender: string;
  concurrency: number;
  count: number;
  warmup: number;
  wallMs: number;
  reqPerSec: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  /** Client CPU (all threads of the process) per 1,000 completed requests; equals µs per request. */
  cpuMsPer1k: number;
  /** Client CPU time / wall time: 1.0 means one core fully busy. */
  clientCores: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyMaxMs: number;
  /** Main-thread event-loop delay p99 over the window. */
  eventLoopDelayP99Ms: number;
  maxRssMb: number;
  /** The main thread's garbage collections over the window (none for wrk, which is not Node). */
  gc?: GcSummary;
  /** Contender-specific facts (library versions, runtime stats). */
  extra?: Record<string, unknown>;
}

export interface GcSummary {
  scavenges: number;
  scavengeMs: number;
  /**
   * Old-generation growth across the scavenges, per completed request: objects that outlived two
   * young-generation collections and now wait for a major GC. Short-lived request objects cost
   * almost nothing to collect; these are copied twice first.
   */
  promotedBytesPerRequest: number;
  majorGcs: number;
  majorGcMs: number;
}

type GcStatistics = ReturnType<GCProfiler['stop']>['statistics'][number];

function oldSpaceUsed(snapshot: GcStatistics['beforeGC']): number {
  return snapshot.heapSpaceStatistics.find((space) => space.spaceName === 'old_space')
    ?.spaceUsedSize as number;
}

function summarizeGc(statistics: readonly GcStatistics[], requests: number): GcSummary {
  const summary = { scavenges: 0, scavengeMs: 0, promoted: 0, majorGcs: 0, majorGcMs: 0 };
  for (const gc of statistics) {
    if (gc.gcType === 'Scavenge') {
      summary.scavenges++;
      summary.scavengeMs += gc.cost / 1000;
      summary.promoted += oldSpaceUsed(gc.afterGC) - oldSpaceUsed(gc.beforeGC);
    } else if (gc.gcType === 'MarkSweepCompact') {
      summary.majorGcs++;
      summary.majorGcMs += gc.cost / 1000;
    }
  }
  return {
    scavenges: summary.scavenges,
    scavengeMs: round(summary.scavengeMs, 1),
    promotedBytesPerRequest: requests > 0 ? Math.round(summary.promoted / requests) : 0,
    majorGcs: summary.majorGcs,
    majorGcMs: round(summary.majorGcMs, 1),
  };
}

function positiveInt(name: string, raw: string | undefined): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`${name} must be a positive integer, got ${String(raw)}`);
  return value;
}

/** argv: `<baseUrl> <concurrency> <count> <warmup> [workload]` (workload.ts; default short-chat). */
export function parseContenderArgs(argv: readonly string[] = process.argv.slice(2)): ContenderArgs {
  const [url, concurrency, count, warmup, workload] = argv;
  if (url === undefined || !/^https?:\/\//.test(url)) {
    throw new Error(
      'usage: node --import tsx <contender>.ts <baseUrl> <concurrency> <count> <warmup> [workload]',
    );
  }
  return {
    url,
    concurrency: positiveInt('concurrency', concurrency),
    count: positiveInt('count', count),
    warmup: Number(warmup) === 0 ? 0 : positiveInt('warmup', warmup),
    workload: parseWorkload(workload),
  };
}

/** For a contender that only sends the short chat: refuses any other workload, naming itself. */
export function shortChatOnly(contender: string, args: ContenderArgs): void {
  if (args.workload !== 'short-chat')
    throw new Error(`${contender} runs the short-chat workload only, not ${args.workload}`);
}

/** The message plus its `cause` chain: SDKs wrap the socket error that says what really happened. */
function describe(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 4; depth++) {
    if (!(current instanceof Error)) {
      parts.push(String(current));
      break;
    }
    const code = (current as { code?: unknown }).code;
    parts.push(
      `${current.name}: ${current.message}${typeof code === 'string' ? ` [${code}]` : ''}`,
    );
    current = current.cause;
  }
  return parts.join(' <- ');
}

/**
 * Closed loop: `concurrency` lanes pull from one shared counter until `count` requests were issued.
 * Lanes instead of a limiter library because that is the cheapest correct way to hold C in flight
 * (the perf lab measured p-limit at up to ~16 µs/request more), so the raw baselines stay raw.
 */
export async function runLanes(
  concurrency: number,
  count: number,
  once: () => Promise<void>,
  latency?: RecordableHistogram,
): Promise<Tally> {
  const tally: Tally = { completed: 0, errors: 0 };
  let issued = 0;
  const lane = async (): Promise<void> => {
    while (issued < count) {
      issued++;
      await timed(once, tally, latency);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  return tally;
}

/** One request through a limiter-style API (p-limit): same accounting as `runLanes`. */
export async function timed(
  once: () => Promise<void>,
  tally: Tally,
  latency?: RecordableHistogram,
): Promise<void> {
  const started = performance.now();
  try {
    await once();
    tally.completed++;
    latency?.record(toMicros(performance.now() - started));
  } catch (error) {
    tally.errors++;
    tally.firstError ??= describe(error);
  }
}

/** Histograms hold integers >= 1; microseconds keep sub-millisecond resolution. */
export function toMicros(ms: number): number {
  return Math.max(1, Math.round(ms * 1000));
}

interface ProfileSession {
  session: Session;
  stop: () => Promise<void>;
}

async function startProfile(): Promise<ProfileSession | undefined> {
  const cpuPath = process.env[PROFILE_ENV];
  const heapPath = process.env[HEAP_PROFILE_ENV];
  if (cpuPath === undefined && heapPath === undefined) return undefined;
  const session = new Session();
  session.connect();
  if (heapPath !== undefined) {
    // An allocation sampled about every 512 bytes, the ones GC already collected included:
    // garbage is what this profile is for. With HEAP_PROMOTED_ENV, only what outlived the
    // young-generation collections (promoted, or still young at the end).
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 512,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: process.env[HEAP_PROMOTED_ENV] === undefined,
    });
    return {
      session,
      stop: async () => {
        const { profile } = await session.post('HeapProfiler.stopSampling');
        writeFileSync(heapPath, JSON.stringify(profile));
      },
    };
  }
  await session.post('Profiler.enable');
  // 250 µs: four times V8's default rate, so a few-second window still gives a usable profile.
  await session.post('Profiler.setSamplingInterval', { interval: 250 });
  await session.post('Profiler.start');
  return {
    session,
    stop: async () => {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(cpuPath as string, JSON.stringify(profile));
    },
  };
}

async function stopProfile(profile: ProfileSession | undefined): Promise<void> {
  if (profile === undefined) return;
  await profile.stop();
  profile.session.disconnect();
}

export type Workload = (latency: RecordableHistogram) => Promise<Tally>;

/**
 * Runs the measured window and prints the result line. `latencyMs` lets a contender that gets its
 * own latency numbers (autocannon) override the histogram.
 */
export async function measure(
  contender: string,
  args: ContenderArgs,
  workload: Workload,
  extra?: () => Record<string, unknown> | Promise<Record<string, unknown>>,
): Promise<ContenderResult> {
  const latency = createHistogram();
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  const session = await startProfile();
  const gcProfiler = new GCProfiler();
  gcProfiler.start();
  process.stderr.write(`${WINDOW_START}\n`);
  loopDelay.enable();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const tally = await workload(latency);
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  loopDelay.disable();
  process.stderr.write(`${WINDOW_END}\n`);
  const gcStatistics = gcProfiler.stop().statistics;
  await stopProfile(session);

  const cpuUserMs = cpu.user / 1000;
  const cpuSystemMs = cpu.system / 1000;
  const result: ContenderResult = {
    contender,
    concurrency: args.concurrency,
    count: args.count,
    warmup: args.warmup,
    ...tally,
    wallMs: round(wallMs, 1),
    reqPerSec: round((tally.completed / wallMs) * 1000, 1),
    cpuUserMs: round(cpuUserMs, 1),
    cpuSystemMs: round(cpuSystemMs, 1),
    cpuMsPer1k:
      tally.completed > 0 ? round(((cpuUserMs + cpuSystemMs) / tally.completed) * 1000, 2) : 0,
    clientCores: round((cpuUserMs + cpuSystemMs) / wallMs, 3),
    latencyP50Ms: round(latency.count > 0 ? latency.percentile(50) / 1000 : 0, 3),
    latencyP99Ms: round(latency.count > 0 ? latency.percentile(99) / 1000 : 0, 3),
    latencyMaxMs: round(latency.count > 0 ? latency.max / 1000 : 0, 3),
    eventLoopDelayP99Ms: round(loopDelay.percentile(99) / 1e6, 2),
    maxRssMb: round(process.resourceUsage().maxRSS / 1024, 1),
    gc: summarizeGc(gcStatistics, tally.completed),
  };
  const more = await extra?.();
  if (more !== undefined) result.extra = more;
  return result;
}

/** Prints the one result line the runner reads. */
export function report(result: ContenderResult): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

export function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/**
 * Exits once stdout is flushed. Contenders exit explicitly so that a lingering keep-alive socket or
 * timer in a library under test cannot stall the matrix.
 */
export function exitWhenFlushed(code = 0): void {
  process.stdout.write('', () => process.exit(code));
}
