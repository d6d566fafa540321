/**
 * Client health: did the load generator, not the server, limit what was measured? A benchmark
 * whose client fell behind reports the client's limits as the server's. Every figure here is
 * measured on the client during the run, and the verdict names its reasons plainly.
 *
 * The run is flagged `client_limited` when any of these holds:
 *   - more than 1% of sends left later than `lateThresholdMs` (10 ms) after their intended time
 *     (perf_analyzer warns on "delayed" requests the same way); the reason says whether the wait
 *     was for a concurrency slot (`--max-concurrency` below what the rate needs: the client
 *     queued) or the client's own event loop was late (CPU);
 *   - planned sends were dropped (due before the run stopped, never sent);
 *   - an open-loop run sent at less than 98% of the planned rate;
 *   - a thread's event loop was busy more than 95% of the phase, or its delay p99 passed 50 ms;
 *   - the process used 90% or more of the machine's cores.
 */

import { availableParallelism } from 'node:os';
import type { ShardPhaseSummary } from './protocol.js';

/** Per-thread health. */
export interface ThreadHealth {
  thread: string;
  loop_utilization: number;
  loop_delay_ms: { mean: number; p50: number; p99: number; max: number };
}

/** The `client_health` section of a result. */
export interface ClientHealth {
  client_limited: boolean;
  reasons: string[];
  cores_available: number;
  process_cpu_cores: number;
  threads: ThreadHealth[];
  late_threshold_ms: number;
  late_sends: number;
  late_fraction: number;
  dropped_sends: number;
  schedule_lag_p99_ms: number | null;
  concurrency_wait_p99_ms: number | null;
  /** Open loop: planned sends per second, and what was sent. */
  offered_rate: number | null;
  achieved_send_rate: number | null;
}

/** What {@link assessHealth} reads. */
export interface HealthInputs {
  shards: readonly ShardPhaseSummary[];
  main: ThreadHealth;
  /** CPU time of the whole process over the phase (µs), and the phase's wall time (ms). */
  cpuMicros: number;
  wallMs: number;
  sent: number;
  late: number;
  lateThresholdMs: number;
  dropped: number;
  lagP99: number;
  waitP99: number;
  maxConcurrency: number | undefined;
  offeredRate: number | undefined;
  achievedSendRate: number | undefined;
  /** Worker threads (0: the shard ran on the main loop). */
  threads: number;
}

/** Thresholds of the verdict; exported so the docs and tests use the same numbers. */
export const HEALTH_LIMITS = {
  lateFraction: 0.01,
  sendRateShortfall: 0.02,
  loopUtilization: 0.95,
  loopDelayP99Ms: 50,
  cpuShareOfCores: 0.9,
} as const;

/** The verdict and its evidence. */
export function assessHealth(input: HealthInputs): ClientHealth {
  const cores = availableParallelism();
  const cpuCores = input.wallMs > 0 ? input.cpuMicros / 1000 / input.wallMs : 0;
  const threads: ThreadHealth[] = [input.main];
  if (input.threads > 0) {
    input.shards.forEach((s, i) => {
      threads.push({
        thread: `shard-${i}`,
        loop_utilization: s.loopUtilization,
        loop_delay_ms: s.loopDelayMs,
      });
    });
  }
  const reasons: string[] = [];
  const lateFraction = input.sent > 0 ? input.late / input.sent : 0;
  if (lateFraction > HEALTH_LIMITS.lateFraction) {
    const pct = (lateFraction * 100).toFixed(1);
    if (input.waitP99 > input.lateThresholdMs) {
      reasons.push(
        `the client queued: ${pct}% of requests were sent more than ${input.lateThresholdMs} ms after their intended time, ` +
          `waiting for one of ${input.maxConcurrency ?? '?'} concurrency slots (p99 wait ${input.waitP99.toFixed(1)} ms); ` +
          'the offered load was not delivered, so latency from the intended time is the one users would see',
      );
    } else {
      reasons.push(
        `the client was late: ${pct}% of requests were sent more than ${input.lateThresholdMs} ms after their intended time ` +
          `(schedule lag p99 ${input.lagP99.toFixed(1)} ms) with no concurrency cap to wait for: the client's event loop could not keep up`,
      );
    }
  }
  if (input.dropped > 0) {
    reasons.push(
      `${input.dropped} planned requests were due before the run stopped but never sent`,
    );
  }
  if (
    input.offeredRate !== undefined &&
    input.achievedSendRate !== undefined &&
    input.achievedSendRate < input.offeredRate * (1 - HEALTH_LIMITS.sendRateShortfall)
  ) {
    reasons.push(
      `sent ${input.achievedSendRate.toFixed(1)} req/s of the ${input.offeredRate.toFixed(1)} req/s planned`,
    );
  }
  for (const t of threads) {
    if (t.loop_utilization > HEALTH_LIMITS.loopUtilization) {
      // A saturated shard is the one case more threads fix, when the machine has cores to spare.
      const hint =
        t.thread.startsWith('shard') && cpuCores < cores - 1
          ? '; more --threads would spread it'
          : '';
      reasons.push(
        `thread ${t.thread} was busy ${(t.loop_utilization * 100).toFixed(0)}% of the time (event loop saturated${hint})`,
      );
    } else if (t.loop_delay_ms.p99 > HEALTH_LIMITS.loopDelayP99Ms) {
      reasons.push(
        `thread ${t.thread}: event-loop delay p99 ${t.loop_delay_ms.p99.toFixed(1)} ms (CPU starved)`,
      );
    }
  }
  if (cpuCores >= cores * HEALTH_LIMITS.cpuShareOfCores) {
    reasons.push(
      `the client used ${cpuCores.toFixed(2)} of ${cores} cores: it was competing for CPU with the server or other processes`,
    );
  }
  return {
    client_limited: reasons.length > 0,
    reasons,
    cores_available: cores,
    process_cpu_cores: round3(cpuCores),
    threads: threads.map((t) => ({
      thread: t.thread,
      loop_utilization: round3(t.loop_utilization),
      loop_delay_ms: {
        mean: round3(t.loop_delay_ms.mean),
        p50: round3(t.loop_delay_ms.p50),
        p99: round3(t.loop_delay_ms.p99),
        max: round3(t.loop_delay_ms.max),
      },
    })),
    late_threshold_ms: input.lateThresholdMs,
    late_sends: input.late,
    late_fraction: round3(lateFraction),
    dropped_sends: input.dropped,
    schedule_lag_p99_ms: Number.isFinite(input.lagP99) ? round3(input.lagP99) : null,
    concurrency_wait_p99_ms: Number.isFinite(input.waitP99) ? round3(input.waitP99) : null,
    offered_rate: input.offeredRate === undefined ? null : round3(input.offeredRate),
    achieved_send_rate:
      input.achievedSendRate === undefined ? null : round3(input.achievedSendRate),
  };
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
