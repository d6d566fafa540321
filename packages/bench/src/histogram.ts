/**
 * Latency distributions as HdrHistograms (hdr-histogram-js): constant memory however long the
 * run, percentiles to 3 significant digits (0.1%), and lossless merging of the histograms each
 * shard keeps, the way autocannon merges its workers'. Values are recorded in microseconds; the
 * mean and standard deviation come from exact running sums, not from the buckets, so
 * `mean_ttft_ms` is the same number vLLM's numpy mean would give.
 */

import type { IntervalHistogram } from 'node:perf_hooks';
import type { Histogram } from 'hdr-histogram-js';
import * as hdr from 'hdr-histogram-js';

/** One hour in µs: the longest value recorded without resizing. */
const HIGHEST_US = 3_600_000_000;

/** A new empty histogram (µs). */
export function newHistogram(): Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: 3,
    autoResize: true,
    bitBucketSize: 64,
    useWebAssembly: false,
  });
}

/** Compressed base64, for the hop between threads and for result files. */
export function encodeHistogram(histogram: Histogram): string {
  return hdr.encodeIntoCompressedBase64(histogram);
}

/** The inverse of {@link encodeHistogram}. */
export function decodeHistogram(encoded: string): Histogram {
  return hdr.decodeFromCompressedBase64(encoded, 64, false);
}

/**
 * A distribution in milliseconds: an HdrHistogram for percentiles plus exact count, sum and sum
 * of squares for the mean and standard deviation.
 */
export class Distribution {
  readonly histogram: Histogram = newHistogram();
  count = 0;
  sum = 0;
  sumSquares = 0;
  min = Infinity;
  max = -Infinity;

  /** Records a value in ms; negative and non-finite values are ignored. */
  record(ms: number): void {
    if (!(ms >= 0) || ms === Infinity) return;
    this.count++;
    this.sum += ms;
    this.sumSquares += ms * ms;
    if (ms < this.min) this.min = ms;
    if (ms > this.max) this.max = ms;
    // Sub-microsecond values land in the first bucket rather than at zero.
    this.histogram.recordValue(Math.max(1, Math.round(ms * 1000)));
  }

  /** Adds a shard's histogram (µs) whose exact sums are unknown: the mean comes from buckets. */
  mergeHistogram(other: Histogram): void {
    if (other.totalCount === 0) return;
    this.histogram.add(other);
    this.count += other.totalCount;
    this.sum += (other.mean * other.totalCount) / 1000;
    const sd = other.stdDeviation / 1000;
    const mean = other.mean / 1000;
    this.sumSquares += (sd * sd + mean * mean) * other.totalCount;
    this.min = Math.min(this.min, other.minNonZeroValue / 1000);
    this.max = Math.max(this.max, other.maxValue / 1000);
  }

  get mean(): number {
    return this.count === 0 ? Number.NaN : this.sum / this.count;
  }

  /** Population standard deviation (numpy's default, as vLLM reports it). */
  get std(): number {
    if (this.count === 0) return Number.NaN;
    const mean = this.sum / this.count;
    return Math.sqrt(Math.max(0, this.sumSquares / this.count - mean * mean));
  }

  /** The value at percentile `p` (0..100) in ms; NaN when empty. */
  percentile(p: number): number {
    if (this.count === 0) return Number.NaN;
    if (p >= 100) return this.max;
    return this.histogram.getValueAtPercentile(p) / 1000;
  }

  /** Summary statistics in ms. */
  summary(percentiles: readonly number[]): DistributionSummary {
    const out: DistributionSummary = {
      count: this.count,
      mean: round(this.mean),
      std: round(this.std),
      min: this.count === 0 ? null : round(this.min),
      max: this.count === 0 ? null : round(this.max),
      percentiles: {},
    };
    for (const p of percentiles) out.percentiles[percentileKey(p)] = round(this.percentile(p));
    return out;
  }

  /** Points of the percentile curve (for charts): [percentile, ms]. */
  curve(): Array<[number, number]> {
    const points: Array<[number, number]> = [];
    if (this.count === 0) return points;
    for (const p of CURVE_PERCENTILES) points.push([p, round(this.percentile(p)) ?? 0]);
    return points;
  }
}

/** Summary of a {@link Distribution}; numbers are ms rounded to 4 decimals, null when empty. */
export interface DistributionSummary {
  count: number;
  mean: number | null;
  std: number | null;
  min: number | null;
  max: number | null;
  /** Keyed `p50`, `p99`, `p99.9`. */
  percentiles: Record<string, number | null>;
}

const CURVE_PERCENTILES = [
  0, 1, 5, 10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 97.5, 98, 99, 99.5, 99.9,
  99.99, 100,
];

/** `50` → `p50`, `99.9` → `p99.9`: vLLM's naming of percentile fields. */
export function percentileKey(p: number): string {
  return `p${p}`;
}

/** Rounds to 4 decimals; NaN and infinities become null (JSON has no NaN). */
export function round(value: number): number | null {
  if (!Number.isFinite(value)) return null;
  return Math.round(value * 10_000) / 10_000;
}

/** Sampling interval of the event-loop delay monitors. */
export const LOOP_RESOLUTION_MS = 5;

/**
 * Event-loop delay in ms from a `monitorEventLoopDelay` histogram. It records the whole interval
 * between its timer's runs (nanoseconds), so the sampling interval itself is taken off.
 */
export function loopDelayMs(h: IntervalHistogram): {
  mean: number;
  p50: number;
  p99: number;
  max: number;
} {
  const ms = (ns: number): number =>
    Number.isFinite(ns) ? Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS) : 0;
  return { mean: ms(h.mean), p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) };
}
