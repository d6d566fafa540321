/**
 * Many load points in one session: a sweep over given concurrencies or rates, the automatic
 * sweep GuideLLM popularised (synchronous, then saturation, then rates in between), and a search
 * for the highest rate or concurrency that still meets the SLOs.
 *
 * The knee of a sweep is where more offered load stops buying throughput: Kneedle on
 * (load, achieved request throughput). The SLO search brackets the answer by doubling from a
 * start value until a point fails, then bisects until the bracket is one step wide; the answer is
 * the highest point that passed, so the truth lies within one step above it.
 */

import type { Benchmark, Load } from './benchmark.js';
import type { RunResult } from './result.js';
import { kneeIndex } from './stats.js';

/** What a sweep varied. */
export type SweepAxis = 'concurrency' | 'rate';

/** The outcome of a sweep: its points and where the knee is. */
export interface SweepOutcome {
  axis: SweepAxis;
  /** Offered load of each point (concurrency, or requests per second). */
  loads: number[];
  runs: RunResult[];
  knee: { index: number; load: number; request_throughput: number } | null;
  /** Points not run because an earlier one was over-saturated or failing. */
  skipped: number[];
}

/** Options shared by every sweep. */
export interface SweepOptions {
  /** The load of one point, from the swept value. */
  loadFor(value: number): Load;
  /** Stop escalating after a point that stopped for over-saturation or errors. Default true. */
  stopOnFailure?: boolean;
  onPoint?: (index: number, value: number, result: RunResult) => void;
}

/**
 * Runs the points in order and finds the knee.
 *
 * @example
 * await sweep(bench, 'concurrency', [1, 2, 4, 8, 16], { loadFor: (c) => ({ ratePerSecond: Infinity, arrival: 'constant', maxConcurrency: c }) });
 */
export async function sweep(
  bench: Benchmark,
  axis: SweepAxis,
  values: readonly number[],
  options: SweepOptions,
): Promise<SweepOutcome> {
  const runs: RunResult[] = [];
  const loads: number[] = [];
  const skipped: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const value = values[i] as number;
    const result = await bench.run(options.loadFor(value), pointLabel(axis, value));
    runs.push(result);
    loads.push(value);
    options.onPoint?.(i, value, result);
    if (result.stop_reason === 'interrupted') {
      skipped.push(...values.slice(i + 1));
      break;
    }
    if (
      (options.stopOnFailure ?? true) &&
      (result.stop_reason === 'over_saturation' || result.stop_reason === 'error_rate')
    ) {
      skipped.push(...values.slice(i + 1));
      break;
    }
  }
  return { axis, loads, runs, knee: findKnee(loads, runs), skipped };
}

/** The knee of a finished sweep, or null when its curve never bends. */
export function findKnee(
  loads: readonly number[],
  runs: readonly RunResult[],
): SweepOutcome['knee'] {
  const throughput = runs.map((r) => r.request_throughput);
  const index = kneeIndex(loads, throughput);
  if (index === undefined) return null;
  return {
    index,
    load: loads[index] as number,
    request_throughput: throughput[index] as number,
  };
}

/** Options of {@link autoSweep}. */
export interface AutoSweepOptions {
  /** Points in all, the synchronous and saturation runs included (GuideLLM's default is 10). */
  points: number;
  /** Arrivals of the rate points. */
  arrival: Load['arrival'];
  burstiness?: number | undefined;
  /** Concurrency cap of the saturation run and the rate points (none if undefined). */
  maxConcurrency?: number | undefined;
  onPoint?: SweepOptions['onPoint'];
}

/**
 * GuideLLM's sweep: one request at a time (the synchronous rate), then everything at once (the
 * saturation rate), then open-loop rates evenly spaced strictly between the two.
 */
export async function autoSweep(
  bench: Benchmark,
  options: AutoSweepOptions,
): Promise<SweepOutcome> {
  const synchronous = await bench.run(
    { ratePerSecond: Infinity, arrival: 'constant', maxConcurrency: 1 },
    'synchronous',
  );
  options.onPoint?.(0, 1, synchronous);
  const saturation = await bench.run(
    { ratePerSecond: Infinity, arrival: 'constant', maxConcurrency: options.maxConcurrency },
    'saturation',
  );
  options.onPoint?.(1, Infinity, saturation);
  const low = synchronous.request_throughput;
  const high = saturation.request_throughput;
  const between = Math.max(0, options.points - 2);
  const rates: number[] = [];
  for (let i = 1; i <= between; i++) {
    const rate = low + ((high - low) * i) / (between + 1);
    if (rate > 0) rates.push(Math.round(rate * 1000) / 1000);
  }
  const rated = await sweep(bench, 'rate', rates, {
    loadFor: (rate) => ({
      ratePerSecond: rate,
      arrival: options.arrival,
      burstiness: options.burstiness,
      maxConcurrency: options.maxConcurrency,
    }),
    ...(options.onPoint === undefined
      ? {}
      : { onPoint: (i, v, r) => options.onPoint?.(i + 2, v, r) }),
  });
  // The curve: offered rate against achieved throughput, the synchronous run at its own rate and
  // the saturation run at its achieved rate (it had no planned one).
  const loads = [low, ...rated.loads, high];
  const runs = [synchronous, ...rated.runs, saturation];
  return { axis: 'rate', loads, runs, knee: findKnee(loads, runs), skipped: rated.skipped };
}

/** Options of {@link searchSlo}. */
export interface SloSearchOptions {
  axis: SweepAxis;
  loadFor(value: number): Load;
  /** A point passes when at least this share (0..1) of its requests were good. Default 0.99. */
  goodFraction?: number | undefined;
  /** First value probed. Default 1. */
  start?: number | undefined;
  /** Largest value probed. Default 1e6 (rate) or 4096 (concurrency). */
  max?: number | undefined;
  /** Width of the final bracket. Default 1 (concurrency) or 5% of the first failing rate. */
  step?: number | undefined;
  onPoint?: SweepOptions['onPoint'];
}

/** The answer of an SLO search. */
export interface SloSearchOutcome {
  axis: SweepAxis;
  /** Highest value that met the SLOs, or null if even the smallest probed failed. */
  best: number | null;
  /** Lowest value that failed (the truth is in [best, lowestFailing)). */
  lowestFailing: number | null;
  step: number;
  goodFraction: number;
  probes: Array<{
    value: number;
    passed: boolean;
    good_fraction: number | null;
    result: RunResult;
  }>;
}

/**
 * Finds the highest rate (or concurrency) whose requests meet the SLOs (the goodput SLOs given to
 * the benchmark): at least `goodFraction` of requests good, failures counting as not good.
 */
export async function searchSlo(
  bench: Benchmark,
  options: SloSearchOptions,
): Promise<SloSearchOutcome> {
  const goodFraction = options.goodFraction ?? 0.99;
  const integer = options.axis === 'concurrency';
  const max = options.max ?? (integer ? 4096 : 1e6);
  const probes: SloSearchOutcome['probes'] = [];
  const probe = async (value: number): Promise<boolean> => {
    const result = await bench.run(options.loadFor(value), pointLabel(options.axis, value));
    const fraction = result.goodput.good_fraction;
    const passed =
      fraction !== null && fraction >= goodFraction && result.stop_reason !== 'interrupted';
    probes.push({ value, passed, good_fraction: fraction, result });
    options.onPoint?.(probes.length - 1, value, result);
    if (result.stop_reason === 'interrupted') throw new SearchInterrupted();
    return passed;
  };
  let lo: number | null = null;
  let hi: number | null = null;
  let value = Math.min(options.start ?? 1, max);
  try {
    // Bracket: double until a point fails (or the maximum passes).
    for (;;) {
      if (await probe(value)) {
        lo = value;
        if (value >= max) break;
        value = Math.min(max, integer ? value * 2 : value * 2);
      } else {
        hi = value;
        break;
      }
    }
    const step = options.step ?? (integer ? 1 : Math.max((hi ?? max) * 0.05, 1e-3));
    // Bisect the bracket down to one step.
    if (hi !== null) {
      let low = lo ?? 0;
      let high = hi;
      while (high - low > step) {
        let mid = (low + high) / 2;
        if (integer) mid = Math.floor(mid);
        if (mid <= low || (lo === null && mid <= 0)) break;
        if (await probe(mid)) {
          low = mid;
          lo = mid;
        } else {
          high = mid;
          hi = mid;
        }
      }
    }
    return { axis: options.axis, best: lo, lowestFailing: hi, step, goodFraction, probes };
  } catch (error) {
    if (!(error instanceof SearchInterrupted)) throw error;
    const step = options.step ?? 1;
    return { axis: options.axis, best: lo, lowestFailing: hi, step, goodFraction, probes };
  }
}

class SearchInterrupted extends Error {}

function pointLabel(axis: SweepAxis, value: number): string {
  return axis === 'concurrency' ? `concurrency ${value}` : `rate ${value}/s`;
}
