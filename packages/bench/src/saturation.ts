/**
 * Over-saturation: an open loop offering more than the server can serve makes the server's queue
 * grow without end, and every later request waits longer. Following GuideLLM's detector
 * (research/bench-anchors.md, "Over-saturation auto-stop"): over a sliding window, fit a line to
 * TTFT (E2E without streaming) against send time and to requests in flight against time; the run
 * is over-saturated when both slopes are positive with 95% confidence (their intervals clear
 * zero). It is checked only after a minimum duration, so the ramp of a run's first seconds is not
 * mistaken for a backlog.
 */

import { fitSlope, significantlyPositive } from './stats.js';

/** Options of {@link createSaturationCheck}. */
export interface SaturationOptions {
  /** History considered. Default 30 000. */
  windowMs?: number;
  /** No verdict before this. Default 10 000. */
  minMs?: number;
  /** Samples of requests in flight needed. Default 5. */
  minSamples?: number;
}

/** A sliding-window over-saturation detector; `add` returns true once over-saturated. */
export function createSaturationCheck(options: SaturationOptions = {}): {
  add(
    nowMs: number,
    inFlight: number,
    latencies: ReadonlyArray<readonly [number, number]>,
  ): boolean;
} {
  const windowMs = options.windowMs ?? 30_000;
  const minMs = options.minMs ?? 10_000;
  const minSamples = options.minSamples ?? 5;
  const latency: Array<readonly [number, number]> = [];
  const flight: Array<readonly [number, number]> = [];
  return {
    add(nowMs, inFlight, latencies) {
      latency.push(...latencies);
      flight.push([nowMs, inFlight]);
      const from = nowMs - windowMs;
      while (latency.length > 0 && (latency[0] as readonly [number, number])[0] < from)
        latency.shift();
      while (flight.length > 0 && (flight[0] as readonly [number, number])[0] < from)
        flight.shift();
      if (nowMs < minMs || flight.length < minSamples) return false;
      const latencyFit = fitSlope(
        latency.map((s) => s[0]),
        latency.map((s) => s[1]),
      );
      const flightFit = fitSlope(
        flight.map((s) => s[0]),
        flight.map((s) => s[1]),
      );
      return (
        latencyFit !== undefined &&
        flightFit !== undefined &&
        significantlyPositive(latencyFit) &&
        significantlyPositive(flightFit)
      );
    },
  };
}
