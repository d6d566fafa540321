/**
 * A benchmark session: the shards (threads and their connections) stay up while it runs any
 * number of load points, so a sweep or an SLO search pays thread start-up and connection set-up
 * once, and every point after the first starts on warm sockets.
 *
 *   createBenchmark(options) ─► run(load) ─► [warm-up phase] ─► measured phase ─► RunResult
 *                                   │            records ──► aggregator ──► progress / stop checks
 *                                   └─ sweep() and searchSlo() (sweep.ts) call run() per point
 */

import { monitorEventLoopDelay, performance as perf } from 'node:perf_hooks';
import type { HedgePolicy } from '@volley/core';
import { defaultHedgePolicy, ErrorCode, registerSecret, VolleyError } from '@volley/core';
import type { Slos } from './aggregate.js';
import { createAggregator } from './aggregate.js';
import type { BenchPrompt } from './dataset.js';
import { assessHealth } from './health.js';
import { LOOP_RESOLUTION_MS, loopDelayMs } from './histogram.js';
import type { PhasePlan, ReplicaTarget, ShardPhaseSummary } from './protocol.js';
import { R, RECORD_FIELDS } from './protocol.js';
import type { LoadDescription, RunContext, RunResult, StopReason, VllmMetric } from './result.js';
import { buildRunResult } from './result.js';
import { createSaturationCheck } from './saturation.js';
import type { ArrivalDistribution, RampUp } from './schedule.js';
import { createArrivalSchedule } from './schedule.js';
import type { ShardPool } from './shard-pool.js';
import { createShardPool } from './shard-pool.js';

/** The load of one run. */
export interface Load {
  /** Requests per second; `Infinity` sends all at once (or, with `maxConcurrency`, a closed loop). */
  ratePerSecond: number;
  arrival: ArrivalDistribution;
  /** Gamma shape for `arrival: 'gamma'` (vLLM's `--burstiness`). */
  burstiness?: number | undefined;
  /** At most this many requests in flight. With an infinite rate: a closed loop at this concurrency. */
  maxConcurrency?: number | undefined;
  rampUp?: RampUp | undefined;
}

/** When a run stops (the first that holds). */
export interface StopConditions {
  /** Requests to send (vLLM's `--num-prompts`). */
  requests?: number | undefined;
  /** Send nothing after this long. */
  durationMs?: number | undefined;
  /** Stop when the share of failures among the last 200 finished requests passes this (0..1). */
  maxErrorRate?: number | undefined;
  /** Stop when TTFT and concurrency both keep rising (an open loop beyond capacity). */
  overSaturation?: boolean | undefined;
}

/** Live counters for a progress display. */
export interface BenchProgress {
  label: string;
  phase: 'warmup' | 'measure';
  elapsedMs: number;
  planned: number | undefined;
  sent: number;
  done: number;
  completed: number;
  failed: number;
  inFlight: number;
  outputTokens: number;
  inputTokens: number;
}

/** Options of {@link createBenchmark}. */
export interface BenchmarkOptions {
  /**
   * OpenAI-style base URL, e.g. `http://127.0.0.1:8000/v1`; several are replicas of one endpoint,
   * and requests go to the one with the fewest calls in flight (replicas.ts).
   */
  baseUrl: string | readonly string[];
  /**
   * Hedging (opt-in, needs two replicas or more): a request silent past its replica's time to
   * first byte percentile gets a copy on another replica; the first head wins, the other
   * connection is closed. Unset fields take @volley/core's `defaultHedgePolicy` (p99, 2% budget).
   */
  hedge?: Partial<HedgePolicy> | undefined;
  /** Sent as a bearer token; registered as a secret so it never appears in errors or logs. */
  apiKey?: string | undefined;
  /** Prompts of the measured phase; request `i` sends prompt `i % length`. */
  prompts: BenchPrompt[];
  /** Warm-up requests before each run, excluded from its results (vLLM's `--num-warmups`). */
  warmupRequests?: number | undefined;
  /** Worker threads generating load; 0 runs on the main loop. */
  threads: number;
  /** Seeds the arrival schedules (prompts are seeded where they are made). */
  seed: number;
  /** Idle limit for headers and between body chunks. Default 600 000. */
  requestTimeoutMs?: number | undefined;
  stop: StopConditions;
  slos?: Slos | undefined;
  percentileMetrics?: readonly VllmMetric[] | undefined;
  metricPercentiles?: readonly number[] | undefined;
  /** Keep per-request rows in results. */
  keepRequests?: boolean | undefined;
  /** Requests whose output is re-counted with gpt-tokenizer (every n-th). Default: ~200 per run. */
  recountStride?: number | undefined;
  /** Allowed relative difference between usage and the re-count. Default 0.1. */
  tokenTolerance?: number | undefined;
  lateThresholdMs?: number | undefined;
  onProgress?: ((progress: BenchProgress) => void) | undefined;
  /** Stops the running load point (its result says `interrupted`). */
  signal?: AbortSignal | undefined;
  /** Worker entry override (tests running from source). */
  workerUrl?: URL | undefined;
}

/** A benchmark session; see {@link createBenchmark}. */
export interface Benchmark {
  /** Runs one load point. */
  run(load: Load, label?: string): Promise<RunResult>;
  close(): Promise<void>;
}

const DEFAULT_REQUESTS = 1000;
const PROGRESS_INTERVAL_MS = 200;
const CHECK_INTERVAL_MS = 1000;
const ERROR_WINDOW = 200;
/** Shards start a phase this long after it is handed out, so all start together. */
const START_DELAY_MS = 25;

/**
 * Starts the shards of a benchmark.
 *
 * @example
 * const bench = await createBenchmark({ baseUrl: sim.url, prompts, threads: 1, stop: { requests: 500 } });
 * const result = await bench.run({ ratePerSecond: 20, arrival: 'poisson' });
 * console.log(result.median_ttft_ms, result.client_health.client_limited);
 * await bench.close();
 */
export async function createBenchmark(options: BenchmarkOptions): Promise<Benchmark> {
  if (options.prompts.length === 0) {
    throw new VolleyError(ErrorCode.INVALID_OPTIONS, 'a benchmark needs at least one prompt');
  }
  const replicas = replicaTargets(options);
  if (replicas.length === 0)
    throw new VolleyError(ErrorCode.INVALID_OPTIONS, 'a benchmark needs a base URL');
  const hedge = hedgePolicy(options);
  if (hedge !== undefined) checkHedge(hedge, replicas.length);
  const headers: Record<string, string> = { 'user-agent': 'volley-bench/0.1' };
  if (options.apiKey !== undefined && options.apiKey !== '') {
    registerSecret(options.apiKey);
    headers.authorization = `Bearer ${options.apiKey}`;
  }
  const pool: ShardPool = await createShardPool({
    threads: options.threads,
    init: {
      replicas,
      hedge,
      headers,
      paths: options.prompts.map((p) => p.path),
      bodies: options.prompts.map((p) => p.body),
      requestTimeoutMs: options.requestTimeoutMs ?? 600_000,
    },
    ...(options.workerUrl === undefined ? {} : { workerUrl: options.workerUrl }),
  });
  let runId = 0;
  return {
    async run(load, label) {
      validateLoad(load);
      const name = label ?? describeLoad(load);
      const warmups = options.warmupRequests ?? 0;
      if (warmups > 0) {
        runId++;
        await runPhase(pool, options, {
          runId,
          label: name,
          measured: false,
          // The last prompts, which a measured run of fewer requests than prompts never sends:
          // a warm-up must not put the measured prompts in the server's prefix cache.
          promptStart: Math.max(0, options.prompts.length - warmups),
          load: {
            ratePerSecond: Infinity,
            arrival: 'constant',
            maxConcurrency: Math.min(warmups, load.maxConcurrency ?? warmups),
          },
          stop: { requests: warmups },
        });
      }
      runId++;
      return runPhase(pool, options, {
        runId,
        label: name,
        measured: true,
        load,
        stop: options.stop,
      });
    },
    close: () => pool.close(),
  };
}

function checkHedge(hedge: HedgePolicy, replicas: number): void {
  const bad = (message: string): VolleyError =>
    new VolleyError(ErrorCode.INVALID_OPTIONS, `hedging: ${message}`);
  if (replicas < 2)
    throw bad(`a copy goes to another replica, so it needs two base URLs or more, got ${replicas}`);
  if (!(hedge.percentile > 0 && hedge.percentile < 1))
    throw bad(`percentile must be in (0, 1), got ${hedge.percentile}`);
  if (!(hedge.budget > 0 && hedge.budget <= 1))
    throw bad(`budget must be in (0, 1], got ${hedge.budget}`);
  if (!(hedge.minDelayMs >= 0)) throw bad(`minDelayMs must be >= 0, got ${hedge.minDelayMs}`);
  if (!(Number.isSafeInteger(hedge.minSamples) && hedge.minSamples >= 1))
    throw bad(`minSamples must be a positive integer, got ${hedge.minSamples}`);
}

function validateLoad(load: Load): void {
  if (!(load.ratePerSecond > 0) && load.rampUp === undefined) {
    throw new VolleyError(
      ErrorCode.INVALID_OPTIONS,
      `request rate must be > 0 or inf, got ${load.ratePerSecond}`,
    );
  }
  if (
    load.maxConcurrency !== undefined &&
    !(Number.isSafeInteger(load.maxConcurrency) && load.maxConcurrency > 0)
  ) {
    throw new VolleyError(
      ErrorCode.INVALID_OPTIONS,
      `max concurrency must be a positive integer, got ${load.maxConcurrency}`,
    );
  }
}

/** A short name for a load point: `rate 20/s`, `concurrency 8`, `ramp 1→50/s`. */
export function describeLoad(load: Load): string {
  if (load.rampUp !== undefined) return `ramp ${load.rampUp.startRps}→${load.rampUp.endRps}/s`;
  if (load.ratePerSecond === Infinity) {
    return load.maxConcurrency === undefined ? 'all at once' : `concurrency ${load.maxConcurrency}`;
  }
  const rate = `rate ${load.ratePerSecond}/s`;
  return load.maxConcurrency === undefined ? rate : `${rate}, cap ${load.maxConcurrency}`;
}

interface PhaseSpec {
  runId: number;
  label: string;
  measured: boolean;
  promptStart?: number;
  load: Load;
  stop: StopConditions;
}

function loadDescription(load: Load): LoadDescription {
  const open = load.ratePerSecond !== Infinity || load.rampUp !== undefined;
  const burstiness =
    load.arrival === 'constant' ? 'inf' : load.arrival === 'poisson' ? 1 : (load.burstiness ?? 1);
  const out: LoadDescription = {
    model:
      !open && load.maxConcurrency !== undefined
        ? 'closed'
        : load.maxConcurrency === undefined
          ? 'open'
          : 'open-capped',
    request_rate: load.ratePerSecond === Infinity ? 'inf' : load.ratePerSecond,
    arrival: load.arrival,
    burstiness,
    max_concurrency: load.maxConcurrency ?? null,
  };
  if (load.rampUp !== undefined) {
    out.ramp_up_strategy = load.rampUp.strategy;
    out.ramp_up_start_rps = load.rampUp.startRps;
    out.ramp_up_end_rps = load.rampUp.endRps;
  }
  return out;
}

async function runPhase(
  pool: ShardPool,
  options: BenchmarkOptions,
  spec: PhaseSpec,
): Promise<RunResult> {
  const { load, stop } = spec;
  const shards = Math.max(1, pool.threads);
  const open = load.ratePerSecond !== Infinity || load.rampUp !== undefined;
  const durationMs = stop.durationMs;
  // Requests to plan: the count asked for; for a duration alone, what the rate fills (or, closed
  // loop, an unbounded supply).
  let count = stop.requests ?? DEFAULT_REQUESTS;
  if (stop.requests === undefined && durationMs !== undefined) {
    count =
      open && load.rampUp === undefined
        ? Math.ceil((load.ratePerSecond * durationMs) / 1000) + 1
        : open
          ? Math.ceil((Math.max(load.rampUp?.endRps ?? 0, 1) * durationMs) / 1000) + 1
          : 2 ** 31 - 2;
  }
  const lanes = load.maxConcurrency;
  let schedule: Float64Array | undefined;
  let scheduleBuffer: SharedArrayBuffer | undefined;
  // A closed loop (infinite rate, lanes) has no plan: each lane sends when it is free. Everything
  // else, "all at once" included (a plan of zeros), is paced by its plan.
  if (open || lanes === undefined) {
    const plan = createArrivalSchedule({
      ratePerSecond: load.ratePerSecond,
      distribution: load.arrival,
      ...(load.burstiness === undefined ? {} : { burstiness: load.burstiness }),
      count,
      ...(durationMs === undefined ? {} : { maxOffsetMs: durationMs }),
      seed: options.seed + spec.runId,
      ...(load.rampUp === undefined ? {} : { rampUp: load.rampUp }),
    });
    scheduleBuffer = new SharedArrayBuffer(plan.byteLength);
    schedule = new Float64Array(scheduleBuffer);
    schedule.set(plan);
    count = plan.length;
  }
  const counter = lanes === undefined ? undefined : new SharedArrayBuffer(4);
  const startAt = perf.timeOrigin + perf.now() + START_DELAY_MS;
  const slos = options.slos ?? {};
  const promptCount = options.prompts.length;
  const agg = createAggregator({
    slos,
    keepRequests: spec.measured && options.keepRequests === true,
    latencySamples: stop.overSaturation === true && open,
    clientPromptTokens: (index) => options.prompts[index % promptCount]?.promptTokens ?? 0,
    ...(options.lateThresholdMs === undefined ? {} : { lateThresholdMs: options.lateThresholdMs }),
  });
  const recountStride =
    options.recountStride ??
    (spec.measured ? Math.max(1, Math.floor(Math.min(count, 1e6) / 200)) : 0);
  const plan = (shard: number): PhasePlan => ({
    runId: spec.runId,
    mode: lanes === undefined ? 'open' : 'lanes',
    count,
    schedule: scheduleBuffer,
    lanes: lanes === undefined ? 0 : Math.floor(lanes / shards) + (shard < lanes % shards ? 1 : 0),
    counter,
    startAt,
    stopAfterMs: durationMs,
    promptStart: spec.promptStart ?? 0,
    promptCount: promptCount - (spec.promptStart ?? 0),
    measured: spec.measured,
    recountStride,
  });

  let stopReason = 'completed' as StopReason;
  let stoppedAtMs: number | undefined;
  const elapsed = (): number => perf.timeOrigin + perf.now() - startAt;
  const stopNow = (reason: StopReason): void => {
    if (stoppedAtMs !== undefined) return;
    stopReason = reason;
    stoppedAtMs = elapsed();
    pool.stop(spec.runId);
  };
  const recent: boolean[] = [];
  const saturation = createSaturationCheck();
  const check = (): void => {
    if (stop.overSaturation !== true || !open) return;
    const now = elapsed();
    if (saturation.add(now, pool.live().inFlight, agg.drainLatencySamples())) {
      stopNow('over_saturation');
    }
  };
  const sink = (records: Float64Array, n: number): void => {
    agg.add(records, n);
    if (stop.maxErrorRate !== undefined) {
      for (let i = 0; i < n; i++) {
        recent.push(records[i * RECORD_FIELDS + R.error] !== 0);
        if (recent.length > ERROR_WINDOW) recent.shift();
      }
      const failures = recent.reduce((s, f) => s + (f ? 1 : 0), 0);
      if (
        recent.length >= Math.min(ERROR_WINDOW, 20) &&
        failures / recent.length > stop.maxErrorRate
      ) {
        stopNow('error_rate');
      }
    }
  };
  const progress = (): void => {
    const live = pool.live();
    const c = agg.counters;
    options.onProgress?.({
      label: spec.label,
      phase: spec.measured ? 'measure' : 'warmup',
      elapsedMs: Math.max(0, elapsed()),
      planned: lanes === undefined || open || stop.requests !== undefined ? count : undefined,
      sent: live.sent,
      done: c.done,
      completed: c.completed,
      failed: c.failed,
      inFlight: live.inFlight,
      outputTokens: c.outputTokens,
      inputTokens: c.inputTokens,
    });
  };
  const onAbort = (): void => stopNow('interrupted');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted === true) onAbort();
  const progressTimer = setInterval(progress, PROGRESS_INTERVAL_MS);
  const checkTimer = setInterval(check, CHECK_INTERVAL_MS);
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loopDelay.enable();
  const utilization = perf.eventLoopUtilization();
  const cpu = process.cpuUsage();
  let outcome: Awaited<ReturnType<ShardPool['runPhase']>>;
  try {
    outcome = await pool.runPhase(plan, sink);
  } finally {
    clearInterval(progressTimer);
    clearInterval(checkTimer);
    options.signal?.removeEventListener('abort', onAbort);
    loopDelay.disable();
  }
  const cpuUsed = process.cpuUsage(cpu);
  const mainUtilization = perf.eventLoopUtilization(utilization).utilization;
  progress();
  for (const summary of outcome.summaries) agg.addItlHistogram(summary.itlHistogram);

  const c = agg.counters;
  const sent = outcome.summaries.reduce((s, x) => s + x.sent, 0);
  if (stopReason === 'completed' && durationMs !== undefined && sent < count)
    stopReason = 'duration';
  const wallMs = Math.max(...outcome.summaries.map((s) => s.elapsedMs), 0);
  const runMs = Math.max(c.lastEnd, 0);
  // Planned sends that were due before the run stopped but never left.
  let dropped = 0;
  if (schedule !== undefined) {
    const cutoff = stoppedAtMs ?? durationMs ?? Infinity;
    let due = 0;
    for (let i = 0; i < schedule.length; i++)
      if ((schedule[i] as number) <= Math.min(cutoff, runMs)) due++;
    dropped = Math.max(0, due - sent);
  }
  // Rates over the span from first to last send, planned and achieved: a client that falls
  // behind stretches the span.
  let offeredRate: number | undefined;
  let achievedSendRate: number | undefined;
  if (schedule !== undefined && schedule.length >= 2 && load.rampUp === undefined && sent >= 2) {
    const planned = schedule.subarray(0, sent);
    const planSpan = (planned[planned.length - 1] as number) - (planned[0] as number);
    const sendSpan = c.lastSent - c.firstSent;
    if (planSpan > 0 && sendSpan > 0) {
      offeredRate = ((sent - 1) * 1000) / planSpan;
      achievedSendRate = ((sent - 1) * 1000) / sendSpan;
    }
  }
  const d = agg.distributions;
  const health = assessHealth({
    shards: outcome.summaries,
    main: {
      thread: 'main',
      loop_utilization: mainUtilization,
      loop_delay_ms: loopDelayMs(loopDelay),
    },
    cpuMicros: cpuUsed.user + cpuUsed.system,
    wallMs,
    sent,
    late: c.late,
    lateThresholdMs: options.lateThresholdMs ?? 10,
    dropped,
    lagP99: d.schedule_lag_ms.percentile(99),
    waitP99: d.concurrency_wait_ms.percentile(99),
    maxConcurrency: load.maxConcurrency,
    offeredRate,
    achievedSendRate,
    threads: pool.threads,
  });
  const warnings: string[] = [];
  if (stopReason === 'over_saturation') {
    warnings.push(
      'stopped early: TTFT and requests in flight kept rising together (the server is over-saturated at this load)',
    );
  }
  return buildRunResult(agg, {
    label: spec.label,
    load: loadDescription(load),
    stopReason,
    planned: count,
    sent,
    ...replicaCounts(outcome.summaries, options),
    numPrompts: stop.requests ?? count,
    durationMs: runMs,
    slos,
    percentileMetrics: options.percentileMetrics ?? ['ttft', 'tpot', 'itl', 'e2el'],
    metricPercentiles: options.metricPercentiles ?? [99],
    tokenTolerance: options.tokenTolerance ?? 0.1,
    health,
    warnings,
  });
}

/** The replicas of `options.baseUrl`: origin and path only (no credentials or query). */
function replicaTargets(options: BenchmarkOptions): ReplicaTarget[] {
  const urls = typeof options.baseUrl === 'string' ? [options.baseUrl] : options.baseUrl;
  return urls.map((baseUrl) => {
    const url = new URL(baseUrl);
    return { origin: url.origin, basePath: url.pathname.replace(/\/+$/, '') };
  });
}

function hedgePolicy(options: BenchmarkOptions): HedgePolicy | undefined {
  return options.hedge === undefined ? undefined : { ...defaultHedgePolicy, ...options.hedge };
}

/** The replicas' and the hedges' counts of a phase, summed over its shards. */
function replicaCounts(
  summaries: readonly ShardPhaseSummary[],
  options: BenchmarkOptions,
): Pick<RunContext, 'replicas' | 'hedgedRequests' | 'hedging'> {
  const sum = (of: (s: ShardPhaseSummary) => number): number =>
    summaries.reduce((total, s) => total + of(s), 0);
  const policy = hedgePolicy(options);
  return {
    replicas: replicaTargets(options).map((target, i) => ({
      base_url: target.origin + target.basePath,
      calls: sum((s) => s.replicaCalls[i] ?? 0),
    })),
    hedgedRequests: sum((s) => s.hedged),
    hedging:
      policy === undefined
        ? null
        : {
            percentile: policy.percentile,
            budget: policy.budget,
            min_delay_ms: policy.minDelayMs,
            min_samples: policy.minSamples,
            copy_won: sum((s) => s.hedgeWins),
          },
  };
}
