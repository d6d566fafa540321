/**
 * The result file: one JSON document with a versioned schema (`schema_version`). Where a field
 * means what `vllm bench serve --save-result` means by that name it has that name (`completed`,
 * `request_throughput`, `mean_ttft_ms`, `p99_itl_ms`, ...), so tools that read vLLM's files read
 * these. Where tools disagree on a name, Volley's own `metrics` section spells the definition out:
 *
 *   tpot_ms                               vLLM "TPOT" = GuideLLM "ITL" = AIPerf "ITL"
 *   itl_per_chunk_ms                      vLLM "ITL"  = AIPerf "ICL" (inter-chunk latency)
 *   time_per_output_token_incl_first_ms   GuideLLM "TPOT" (e2e / output tokens)
 *   first_chunk_ms                        vLLM chat's TTFT (first chunk with choices, role included)
 *   ttft_ms                               first chunk with content (AIPerf's TTFT, GuideLLM's)
 *
 * Schema history: 1 — first version.
 */

import type { Aggregator, DistributionName, RequestRow, Slos } from './aggregate.js';
import { DISTRIBUTIONS } from './aggregate.js';
import type { ClientHealth } from './health.js';
import type { DistributionSummary } from './histogram.js';
import { encodeHistogram, percentileKey, round } from './histogram.js';

export const RESULT_SCHEMA = 'volley-bench-result';
export const RESULT_SCHEMA_VERSION = 1;

/** Why a run ended. */
export type StopReason =
  | 'completed'
  | 'duration'
  | 'error_rate'
  | 'over_saturation'
  | 'interrupted';

/** The load a run applied, as the result records it. */
export interface LoadDescription {
  /** `closed` (fixed concurrency), `open` (a rate), `open-capped` (a rate and a concurrency cap). */
  model: 'closed' | 'open' | 'open-capped';
  request_rate: number | 'inf';
  arrival: 'constant' | 'poisson' | 'gamma';
  burstiness: number | 'inf';
  max_concurrency: number | null;
  ramp_up_strategy?: 'linear' | 'exponential';
  ramp_up_start_rps?: number;
  ramp_up_end_rps?: number;
}

/** Per-second series for the charts. */
export interface TimeSeries {
  bucket_ms: number;
  t_s: number[];
  requests_per_s: number[];
  errors_per_s: number[];
  output_tokens_per_s: number[];
  ttft_mean_ms: Array<number | null>;
  ttft_max_ms: Array<number | null>;
  ttft_from_intended_mean_ms: Array<number | null>;
  concurrency_mean: number[];
  active_requests: number[];
  sends_per_s: number[];
  schedule_lag_max_ms: number[];
}

/** One run's result (also one point of a sweep). */
export interface RunResult {
  // vLLM-compatible fields (`vllm bench serve --save-result`).
  duration: number;
  completed: number;
  failed: number;
  total_input_tokens: number;
  total_output_tokens: number;
  request_throughput: number;
  request_goodput: number | null;
  output_throughput: number;
  total_token_throughput: number;
  max_output_tokens_per_s: number;
  max_concurrent_requests: number;
  request_rate: number | 'inf';
  burstiness: number | 'inf';
  max_concurrency: number | null;
  num_prompts: number;
  [vllmMetric: `${'mean' | 'median' | 'std' | `p${string}`}_${string}_ms`]: number | null;
  // Volley's own sections.
  label: string;
  load: LoadDescription;
  stop_reason: StopReason;
  planned_requests: number;
  sent_requests: number;
  /** Calls the endpoint may bill: every request sent plus every hedge copy. */
  billed_requests: number;
  /** Requests that got a hedge copy (`hedging`); 0 when hedging is off. */
  hedged_requests: number;
  /** Per replica (`--base-url` order): calls sent there, hedge copies included. */
  replicas: Array<{ base_url: string; calls: number }>;
  /** The hedging policy and how copies fared; null when hedging is off. */
  hedging: {
    percentile: number;
    budget: number;
    min_delay_ms: number;
    min_samples: number;
    /** Hedged requests whose copy answered first. */
    copy_won: number;
  } | null;
  metrics: Record<DistributionName, DistributionSummary>;
  goodput: {
    slos_ms: Slos;
    good_requests: number;
    good_fraction: number | null;
    request_goodput: number | null;
    good_requests_from_intended: number;
    request_goodput_from_intended: number | null;
  };
  errors: { error_rate: number; by_class: Record<string, number> };
  tokens: {
    input_source: { usage: number; client_count: number };
    output_source: { usage: number; recount: number; content_events: number };
    recount_check: {
      sampled: number;
      usage_total: number;
      recount_total: number;
      relative_difference: number | null;
      tolerance: number;
      warning: string | null;
    };
  };
  client_health: ClientHealth;
  timeseries: TimeSeries;
  /** Percentile curves for the charts: [percentile, ms]. */
  curves: Partial<Record<DistributionName, Array<[number, number]>>>;
  /** HdrHistograms (µs, compressed base64) of the main latencies, for lossless re-merging. */
  histograms: Partial<Record<DistributionName, string>>;
  /** Per-request rows (`--save-detailed`). */
  requests?: RequestRow[];
  /** Per-repetition headline values (`--repetitions`), for `compare`'s significance test. */
  repetitions?: Array<Record<string, number | null>>;
  warnings: string[];
}

/** Which vLLM metrics get `mean_/median_/std_/pNN_` fields (vLLM's `--percentile-metrics`). */
export type VllmMetric = 'ttft' | 'tpot' | 'itl' | 'e2el';

const VLLM_SOURCE: Record<VllmMetric, DistributionName> = {
  ttft: 'ttft_ms',
  tpot: 'tpot_ms',
  itl: 'itl_per_chunk_ms',
  e2el: 'e2el_ms',
};

/** Everything {@link buildRunResult} needs besides the aggregator. */
export interface RunContext {
  label: string;
  load: LoadDescription;
  stopReason: StopReason;
  planned: number;
  sent: number;
  replicas: RunResult['replicas'];
  hedgedRequests: number;
  hedging: RunResult['hedging'];
  numPrompts: number;
  durationMs: number;
  slos: Slos;
  percentileMetrics: readonly VllmMetric[];
  metricPercentiles: readonly number[];
  tokenTolerance: number;
  health: ClientHealth;
  warnings: string[];
}

/** The percentiles every `metrics` entry reports. */
export const SUMMARY_PERCENTILES = [50, 90, 95, 99, 99.9];

const CURVES: DistributionName[] = [
  'ttft_ms',
  'first_chunk_ms',
  'tpot_ms',
  'itl_per_chunk_ms',
  'e2el_ms',
  'ttft_from_intended_ms',
  'e2el_from_intended_ms',
  'schedule_lag_ms',
];

/** Builds the JSON result of one run. */
export function buildRunResult(agg: Aggregator, ctx: RunContext): RunResult {
  const c = agg.counters;
  const seconds = ctx.durationMs / 1000;
  const perSecond = (n: number): number => (seconds > 0 ? n / seconds : 0);
  const d = agg.distributions;
  const percentiles = [...new Set([...SUMMARY_PERCENTILES, ...ctx.metricPercentiles])].sort(
    (a, b) => a - b,
  );
  const metrics = Object.fromEntries(
    DISTRIBUTIONS.map((name) => [name, d[name].summary(percentiles)]),
  ) as Record<DistributionName, DistributionSummary>;
  const hasSlos = Object.keys(ctx.slos).length > 0;
  const attempted = c.completed + c.failed;

  const vllm: Record<string, number | null> = {};
  for (const metric of ctx.percentileMetrics) {
    const dist = d[VLLM_SOURCE[metric]];
    vllm[`mean_${metric}_ms`] = round(dist.mean);
    vllm[`median_${metric}_ms`] = round(dist.percentile(50));
    vllm[`std_${metric}_ms`] = round(dist.std);
    for (const p of ctx.metricPercentiles) {
      vllm[`${percentileKey(p)}_${metric}_ms`] = round(dist.percentile(p));
    }
  }

  const series = timeSeries(agg);
  const recountDiff =
    c.recountSampled > 0 && c.recountUsageTotal > 0
      ? (c.recountTotal - c.recountUsageTotal) / c.recountUsageTotal
      : null;
  const warnings = [...ctx.warnings];
  let recountWarning: string | null = null;
  if (recountDiff !== null && Math.abs(recountDiff) > ctx.tokenTolerance) {
    recountWarning =
      `the server's output token counts (usage) and a re-count with gpt-tokenizer (o200k) differ by ` +
      `${(recountDiff * 100).toFixed(1)}% over ${c.recountSampled} sampled requests (tolerance ` +
      `${(ctx.tokenTolerance * 100).toFixed(0)}%): the server's tokenizer differs, or its usage is wrong`;
    warnings.push(recountWarning);
  }
  if (c.outputFromChunks > 0) {
    warnings.push(
      `${c.outputFromChunks} successful requests had no usage; their output tokens are the number of content events, which undercounts when a chunk carries several tokens`,
    );
  }

  const histograms: Partial<Record<DistributionName, string>> = {};
  for (const name of [
    'ttft_ms',
    'tpot_ms',
    'itl_per_chunk_ms',
    'e2el_ms',
    'ttft_from_intended_ms',
    'e2el_from_intended_ms',
    'schedule_lag_ms',
  ] as const) {
    if (d[name].count > 0) histograms[name] = encodeHistogram(d[name].histogram);
  }
  const curves: Partial<Record<DistributionName, Array<[number, number]>>> = {};
  for (const name of CURVES) if (d[name].count > 0) curves[name] = d[name].curve();

  const result: RunResult = {
    duration: round(seconds) ?? 0,
    completed: c.completed,
    failed: c.failed,
    total_input_tokens: c.inputTokens,
    total_output_tokens: c.outputTokens,
    request_throughput: round(perSecond(c.completed)) ?? 0,
    request_goodput: hasSlos ? round(perSecond(c.good)) : null,
    output_throughput: round(perSecond(c.outputTokens)) ?? 0,
    total_token_throughput: round(perSecond(c.inputTokens + c.outputTokens)) ?? 0,
    max_output_tokens_per_s: round(Math.max(0, ...series.output_tokens_per_s)) ?? 0,
    max_concurrent_requests: Math.max(0, ...series.active_requests),
    request_rate: ctx.load.request_rate,
    burstiness: ctx.load.burstiness,
    max_concurrency: ctx.load.max_concurrency,
    num_prompts: ctx.numPrompts,
    ...vllm,
    label: ctx.label,
    load: ctx.load,
    stop_reason: ctx.stopReason,
    planned_requests: ctx.planned,
    sent_requests: ctx.sent,
    billed_requests: ctx.sent + ctx.hedgedRequests,
    hedged_requests: ctx.hedgedRequests,
    replicas: ctx.replicas,
    hedging: ctx.hedging,
    metrics,
    goodput: {
      slos_ms: ctx.slos,
      good_requests: hasSlos ? c.good : 0,
      good_fraction: hasSlos && attempted > 0 ? round(c.good / attempted) : null,
      request_goodput: hasSlos ? round(perSecond(c.good)) : null,
      good_requests_from_intended: hasSlos ? c.goodFromIntended : 0,
      request_goodput_from_intended: hasSlos ? round(perSecond(c.goodFromIntended)) : null,
    },
    errors: {
      error_rate: attempted > 0 ? (round(c.failed / attempted) ?? 0) : 0,
      by_class: Object.fromEntries([...agg.errors].sort((a, b) => b[1] - a[1])),
    },
    tokens: {
      input_source: {
        usage: c.inputTokensFromUsage,
        client_count: c.completed - c.inputTokensFromUsage,
      },
      output_source: {
        usage: c.outputFromUsage,
        recount: c.outputFromRecount,
        content_events: c.outputFromChunks,
      },
      recount_check: {
        sampled: c.recountSampled,
        usage_total: c.recountUsageTotal,
        recount_total: c.recountTotal,
        relative_difference: recountDiff === null ? null : round(recountDiff),
        tolerance: ctx.tokenTolerance,
        warning: recountWarning,
      },
    },
    client_health: ctx.health,
    timeseries: series,
    curves,
    histograms,
    warnings,
  };
  if (agg.requests !== undefined) result.requests = agg.requests;
  return result;
}

function timeSeries(agg: Aggregator): TimeSeries {
  const seconds = agg.bucketMs / 1000;
  const out: TimeSeries = {
    bucket_ms: agg.bucketMs,
    t_s: [],
    requests_per_s: [],
    errors_per_s: [],
    output_tokens_per_s: [],
    ttft_mean_ms: [],
    ttft_max_ms: [],
    ttft_from_intended_mean_ms: [],
    concurrency_mean: [],
    active_requests: [],
    sends_per_s: [],
    schedule_lag_max_ms: [],
  };
  agg.buckets.forEach((b, i) => {
    out.t_s.push(i * seconds);
    out.requests_per_s.push(b.completed / seconds);
    out.errors_per_s.push(b.failed / seconds);
    out.output_tokens_per_s.push(round(b.outputTokens / seconds) ?? 0);
    out.ttft_mean_ms.push(b.ttftCount > 0 ? round(b.ttftSum / b.ttftCount) : null);
    out.ttft_max_ms.push(b.ttftCount > 0 ? round(b.ttftMax) : null);
    out.ttft_from_intended_mean_ms.push(
      b.intendedTtftCount > 0 ? round(b.intendedTtftSum / b.intendedTtftCount) : null,
    );
    out.concurrency_mean.push(round(b.busyMs / agg.bucketMs) ?? 0);
    out.active_requests.push(b.active);
    out.sends_per_s.push(b.sent / seconds);
    out.schedule_lag_max_ms.push(round(Math.max(0, b.lagMax)) ?? 0);
  });
  return out;
}

/** The headline values of a run that `compare` tests across repetitions. */
export const HEADLINE_FIELDS = [
  'request_throughput',
  'output_throughput',
  'request_goodput',
  'mean_ttft_ms',
  'median_ttft_ms',
  'p99_ttft_ms',
  'mean_tpot_ms',
  'median_tpot_ms',
  'p99_tpot_ms',
  'mean_itl_ms',
  'p99_itl_ms',
  'mean_e2el_ms',
  'median_e2el_ms',
  'p99_e2el_ms',
] as const;

/** A headline value of a run, computed from its `metrics` whatever `--percentile-metrics` kept. */
export function headline(
  result: RunResult,
  field: (typeof HEADLINE_FIELDS)[number],
): number | null {
  if (
    field === 'request_throughput' ||
    field === 'output_throughput' ||
    field === 'request_goodput'
  )
    return result[field];
  const [stat, metric] = field.split('_') as [string, VllmMetric];
  const summary = result.metrics[VLLM_SOURCE[metric]];
  if (stat === 'mean') return summary.mean;
  if (stat === 'median') return summary.percentiles.p50 ?? null;
  return summary.percentiles[stat] ?? null;
}
