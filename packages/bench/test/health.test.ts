import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import type { HealthInputs } from '../src/health.js';
import { assessHealth } from '../src/health.js';

const quiet = { mean: 0, p50: 0, p99: 0, max: 0 };

function inputs(shardBusy: number, mainBusy: number, cpuMicros: number): HealthInputs {
  return {
    shards: [
      {
        sent: 10,
        itlHistogram: '',
        loopDelayMs: quiet,
        loopUtilization: shardBusy,
        elapsedMs: 1000,
        replicaCalls: [10],
        hedged: 0,
        hedgeWins: 0,
      },
    ],
    main: { thread: 'main', loop_utilization: mainBusy, loop_delay_ms: quiet },
    cpuMicros,
    wallMs: 1000,
    sent: 10,
    late: 0,
    lateThresholdMs: 10,
    dropped: 0,
    lagP99: 0,
    waitP99: 0,
    maxConcurrency: 4,
    offeredRate: undefined,
    achievedSendRate: undefined,
    threads: 1,
  };
}

describe('client health', () => {
  it('suggests more --threads only for a saturated shard on a machine with cores to spare', () => {
    const spare = availableParallelism() > 2;
    const shard = assessHealth(inputs(0.99, 0.2, 1_000_000));
    expect(shard.client_limited).toBe(true);
    expect(shard.reasons.join(' ')).toMatch(/thread shard-0 was busy 99%/);
    expect(/more --threads/.test(shard.reasons.join(' '))).toBe(spare);
    const main = assessHealth(inputs(0.2, 0.99, 1_000_000));
    expect(main.reasons.join(' ')).toMatch(/thread main was busy 99%/);
    expect(main.reasons.join(' ')).not.toMatch(/--threads/);
  });
});
