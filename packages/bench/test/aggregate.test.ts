/**
 * The metric definitions, checked on hand-made request records whose answers are worked out in
 * the comments.
 */
import { describe, expect, it } from 'vitest';
import { createAggregator } from '../src/aggregate.js';
import { assessHealth } from '../src/health.js';
import { HTTP_ERROR_BASE, R, RECORD_FIELDS } from '../src/protocol.js';
import { buildRunResult } from '../src/result.js';

function record(fields: Partial<Record<keyof typeof R, number>>): Float64Array {
  const r = new Float64Array(RECORD_FIELDS).fill(Number.NaN);
  r[R.error] = 0;
  r[R.contentEvents] = 0;
  for (const [name, value] of Object.entries(fields))
    r[R[name as keyof typeof R]] = value as number;
  return r;
}

function batch(...records: Float64Array[]): Float64Array {
  const out = new Float64Array(records.length * RECORD_FIELDS);
  records.forEach((r, i) => {
    out.set(r, i * RECORD_FIELDS);
  });
  return out;
}

// Planned at 0, sent at 10; role chunk at 50, content from 60 to 100 (5 events), 5 tokens.
const streamed = record({
  index: 0,
  intended: 0,
  slot: 0,
  dispatch: 10,
  sent: 10.5,
  headers: 50,
  firstEvent: 50,
  firstToken: 60,
  lastToken: 100,
  end: 101,
  status: 200,
  outputTokens: 5,
  promptTokens: 20,
  contentEvents: 5,
  maxGap: 10,
});

describe('aggregation', () => {
  it('computes TTFT, first chunk, E2E and TPOT from the send, and both from the intended time', () => {
    const agg = createAggregator({ slos: {} });
    agg.add(batch(streamed), 1);
    const d = agg.distributions;
    expect(d.ttft_ms.mean).toBeCloseTo(50, 6); // 60 - 10: the role chunk at 50 is not a token
    expect(d.first_chunk_ms.mean).toBeCloseTo(40, 6); // 50 - 10
    expect(d.e2el_ms.mean).toBeCloseTo(90, 6); // 100 - 10: the last content event
    expect(d.tpot_ms.mean).toBeCloseTo(10, 6); // (90 - 50) / (5 - 1)
    expect(d.time_per_output_token_incl_first_ms.mean).toBeCloseTo(18, 6); // 90 / 5 (GuideLLM)
    expect(d.output_token_throughput_per_user.mean).toBeCloseTo(100, 6); // 1000 / 10
    expect(d.ttft_from_intended_ms.mean).toBeCloseTo(60, 6);
    expect(d.e2el_from_intended_ms.mean).toBeCloseTo(100, 6);
    expect(d.schedule_lag_ms.mean).toBeCloseTo(10, 6);
    expect(d.connect_ms.mean).toBeCloseTo(0.5, 6);
    expect(agg.counters.outputTokens).toBe(5);
    expect(agg.counters.inputTokens).toBe(20);
  });

  it('goodput needs every SLO met; failures count against it; a one-token TPOT is 0 (vLLM)', () => {
    const oneToken = record({
      index: 1,
      intended: 0,
      slot: 0,
      dispatch: 0,
      sent: 0,
      headers: 5,
      firstEvent: 5,
      firstToken: 20,
      lastToken: 20,
      end: 21,
      outputTokens: 1,
      contentEvents: 1,
    });
    const failed = record({
      index: 2,
      intended: 0,
      slot: 0,
      dispatch: 0,
      headers: 3,
      end: 4,
      status: 503,
      error: HTTP_ERROR_BASE + 503,
    });
    const agg = createAggregator({ slos: { ttft: 55, tpot: 12 } });
    agg.add(batch(streamed, oneToken, failed), 3);
    expect(agg.counters.good).toBe(2); // streamed (50 <= 55, 10 <= 12) and oneToken (20, 0)
    // From the intended time the streamed request's TTFT is 60 > 55.
    expect(agg.counters.goodFromIntended).toBe(1);
    expect([...agg.errors]).toEqual([['http_503', 1]]);
    const result = buildRunResult(agg, {
      label: 't',
      load: {
        model: 'open',
        request_rate: 1,
        arrival: 'poisson',
        burstiness: 1,
        max_concurrency: null,
      },
      stopReason: 'completed',
      planned: 3,
      sent: 3,
      replicas: [{ base_url: 'http://127.0.0.1:1/v1', calls: 0 }],
      hedgedRequests: 0,
      hedging: null,
      numPrompts: 3,
      durationMs: 2000,
      slos: { ttft: 55, tpot: 12 },
      percentileMetrics: ['ttft', 'tpot'],
      metricPercentiles: [50, 99],
      tokenTolerance: 0.1,
      health: assessHealth({
        shards: [],
        main: {
          thread: 'main',
          loop_utilization: 0,
          loop_delay_ms: { mean: 0, p50: 0, p99: 0, max: 0 },
        },
        cpuMicros: 0,
        wallMs: 2000,
        sent: 3,
        late: 0,
        lateThresholdMs: 10,
        dropped: 0,
        lagP99: 0,
        waitP99: 0,
        maxConcurrency: undefined,
        offeredRate: undefined,
        achievedSendRate: undefined,
        threads: 0,
      }),
      warnings: [],
    });
    expect(result.completed).toBe(2);
    expect(result.failed).toBe(1);
    expect(result.request_throughput).toBeCloseTo(1, 6);
    expect(result.request_goodput).toBeCloseTo(1, 6);
    expect(result.goodput.good_fraction).toBeCloseTo(2 / 3, 3);
    expect(result.errors.error_rate).toBeCloseTo(1 / 3, 3);
    // vLLM's field names, only for the selected metrics and percentiles.
    expect(result.median_ttft_ms).toBeCloseTo(20, 1);
    expect(result.p99_tpot_ms).toBeCloseTo(10, 1);
    expect(result).not.toHaveProperty('p99_e2el_ms');
    expect(result.client_health.client_limited).toBe(false);
  });

  it('falls back to content events without usage, and warns when the re-count disagrees', () => {
    const noUsage = record({
      index: 3,
      intended: 0,
      slot: 0,
      dispatch: 0,
      headers: 1,
      firstEvent: 1,
      firstToken: 2,
      lastToken: 5,
      end: 6,
      contentEvents: 3,
    });
    const offCount = record({
      index: 4,
      intended: 0,
      slot: 0,
      dispatch: 0,
      headers: 1,
      firstEvent: 1,
      firstToken: 2,
      lastToken: 5,
      end: 6,
      contentEvents: 3,
      outputTokens: 10,
      recount: 14,
    });
    const agg = createAggregator({ slos: {} });
    agg.add(batch(noUsage, offCount), 2);
    expect(agg.counters.outputFromChunks).toBe(1);
    expect(agg.counters.outputTokens).toBe(13);
    const result = buildRunResult(agg, {
      label: 't',
      load: {
        model: 'closed',
        request_rate: 'inf',
        arrival: 'constant',
        burstiness: 'inf',
        max_concurrency: 1,
      },
      stopReason: 'completed',
      planned: 2,
      sent: 2,
      replicas: [{ base_url: 'http://127.0.0.1:1/v1', calls: 0 }],
      hedgedRequests: 0,
      hedging: null,
      numPrompts: 2,
      durationMs: 10,
      slos: {},
      percentileMetrics: ['ttft'],
      metricPercentiles: [99],
      tokenTolerance: 0.1,
      health: assessHealth({
        shards: [],
        main: {
          thread: 'main',
          loop_utilization: 0,
          loop_delay_ms: { mean: 0, p50: 0, p99: 0, max: 0 },
        },
        cpuMicros: 0,
        wallMs: 10,
        sent: 2,
        late: 0,
        lateThresholdMs: 10,
        dropped: 0,
        lagP99: 0,
        waitP99: 0,
        maxConcurrency: 1,
        offeredRate: undefined,
        achievedSendRate: undefined,
        threads: 0,
      }),
      warnings: [],
    });
    expect(result.tokens.recount_check.relative_difference).toBeCloseTo(0.4, 6);
    expect(result.tokens.recount_check.warning).toMatch(/differ by 40.0%/);
    expect(result.warnings.some((w) => /had no usage/.test(w))).toBe(true);
  });

  it('the client-health verdict names a concurrency-slot wait as the client queuing', () => {
    const health = assessHealth({
      shards: [],
      main: {
        thread: 'main',
        loop_utilization: 0.1,
        loop_delay_ms: { mean: 0, p50: 0, p99: 1, max: 2 },
      },
      cpuMicros: 100_000,
      wallMs: 1000,
      sent: 100,
      late: 50,
      lateThresholdMs: 10,
      dropped: 0,
      lagP99: 900,
      waitP99: 880,
      maxConcurrency: 2,
      offeredRate: 50,
      achievedSendRate: 20,
      threads: 0,
    });
    expect(health.client_limited).toBe(true);
    expect(health.reasons[0]).toMatch(/the client queued/);
    expect(health.reasons.some((r) => /sent 20.0 req\/s of the 50.0/.test(r))).toBe(true);
  });
});
