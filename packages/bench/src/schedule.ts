/**
 * The arrival plan of an open-loop run: the intended send time of every request, computed before
 * the first one is sent. Pacing reads this plan against absolute time (the run's start plus the
 * offset), never by chaining relative sleeps, so a late timer delays one send without shifting
 * every later one: the drift that made `vllm bench serve` deliver 183.52 of 200 req/s before it
 * moved to absolute targets (research/bench-anchors.md, table (d)).
 *
 * Gaps follow vLLM's definitions so runs line up with `vllm bench serve`:
 *   constant   gap = 1 / rate                          (vLLM: --burstiness inf)
 *   poisson    gap ~ Exponential(mean 1 / rate)         (vLLM default, --burstiness 1)
 *   gamma      gap ~ Gamma(shape b, scale 1 / (rate·b)) (vLLM --burstiness b; < 1 burstier)
 * and, as vLLM does for a fixed request count without ramp-up, the random offsets are rescaled
 * so the last one lands at exactly N / rate: seeds then differ in order, not in total duration.
 * Ramp-up changes the rate with the request index, linearly or exponentially from a start rate to
 * an end rate (vLLM's `--ramp-up-strategy`).
 */

import { ErrorCode, VolleyError } from '@volley/core';
import { createRandom, exponential, gamma } from './random.js';

/** How gaps between arrivals are drawn. */
export type ArrivalDistribution = 'constant' | 'poisson' | 'gamma';

/** Options of {@link createArrivalSchedule}. */
export interface ArrivalScheduleOptions {
  /** Requests per second; `Infinity` sends everything at time 0. Ignored with `rampUp`. */
  ratePerSecond: number;
  distribution: ArrivalDistribution;
  /** Gamma shape (vLLM's burstiness); used by `gamma` only. */
  burstiness?: number;
  /** Number of arrivals to plan. */
  count: number;
  /** Stop planning at this offset (a duration-bounded run); the plan may then be shorter. */
  maxOffsetMs?: number;
  seed: number;
  rampUp?: RampUp;
}

/** vLLM's ramp-up: the rate moves from `startRps` to `endRps` over the planned requests. */
export interface RampUp {
  strategy: 'linear' | 'exponential';
  startRps: number;
  endRps: number;
}

/**
 * Intended send offsets in milliseconds from the run's start, non-decreasing.
 *
 * @example
 * const plan = createArrivalSchedule({ ratePerSecond: 10, distribution: 'poisson', count: 100, seed: 0 });
 * plan[99]; // 10_000: rescaled so 100 arrivals at 10/s end at 10 s
 */
export function createArrivalSchedule(options: ArrivalScheduleOptions): Float64Array {
  const { count, distribution, rampUp } = options;
  if (!Number.isSafeInteger(count) || count < 0) invalid('count', 'a non-negative integer', count);
  const burstiness =
    distribution === 'constant' ? Infinity : distribution === 'poisson' ? 1 : options.burstiness;
  if (burstiness === undefined || !(burstiness > 0))
    invalid('burstiness', 'a number > 0', burstiness);
  if (rampUp !== undefined) {
    const { startRps, endRps, strategy } = rampUp;
    if (!(startRps >= 0) || !(endRps > 0) || startRps > endRps)
      invalid('rampUp', 'rates with 0 <= start <= end and end > 0', rampUp);
    if (strategy === 'exponential' && startRps === 0)
      invalid('rampUp.startRps', 'a rate > 0 for exponential ramp-up', startRps);
  } else if (!(options.ratePerSecond > 0)) {
    invalid('ratePerSecond', 'a rate > 0 (Infinity for all at once)', options.ratePerSecond);
  }
  const random = createRandom(options.seed);
  const offsets = new Float64Array(count);
  const maxOffsetMs = options.maxOffsetMs ?? Infinity;
  let t = 0;
  let planned = 0;
  for (let i = 0; i < count; i++) {
    const rate = rateAt(options, i, count);
    if (rate === Infinity) {
      offsets[i] = t;
      planned++;
      continue;
    }
    // vLLM draws a gap before every request, the first included: the first send is not at 0.
    // A zero start rate (linear ramp-up from 0) has no finite gap; its first request waits for
    // the next index's rate instead.
    const meanS = rate > 0 ? 1 / rate : 0;
    const gapS =
      burstiness === Infinity
        ? meanS
        : burstiness === 1
          ? exponential(random, meanS)
          : gamma(random, burstiness, meanS / burstiness);
    t += gapS * 1000;
    if (t > maxOffsetMs) break;
    offsets[i] = t;
    planned++;
  }
  const plan = planned === count ? offsets : offsets.slice(0, planned);
  // Rescale a fixed-count, fixed-rate random plan so it spans exactly count / rate (vLLM does the
  // same: without it the summed random gaps land 1-2% off and throughput varies with the seed).
  const last = plan[plan.length - 1] ?? 0;
  if (
    rampUp === undefined &&
    options.maxOffsetMs === undefined &&
    burstiness !== Infinity &&
    options.ratePerSecond !== Infinity &&
    last > 0
  ) {
    const factor = ((count / options.ratePerSecond) * 1000) / last;
    for (let i = 0; i < plan.length; i++) plan[i] = (plan[i] as number) * factor;
  }
  return plan;
}

function rateAt(options: ArrivalScheduleOptions, index: number, count: number): number {
  const { rampUp } = options;
  if (rampUp === undefined) return options.ratePerSecond;
  const progress = index / Math.max(count - 1, 1);
  if (rampUp.strategy === 'linear')
    return rampUp.startRps + (rampUp.endRps - rampUp.startRps) * progress;
  return rampUp.startRps * (rampUp.endRps / rampUp.startRps) ** progress;
}

function invalid(option: string, expected: string, actual: unknown): never {
  throw new VolleyError(
    ErrorCode.INVALID_OPTIONS,
    `arrival schedule: "${option}" must be ${expected}, got ${JSON.stringify(actual)}`,
  );
}
