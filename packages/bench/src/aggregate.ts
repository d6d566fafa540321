/**
 * Turns request records into the run's metrics, one record at a time, in constant memory (only
 * `--save-detailed` keeps per-request rows). The definitions, which docs and reports repeat:
 *
 *   sent                the moment the client dispatched the request (vLLM's `st`)
 *   TTFT                sent → first SSE event carrying content (text, reasoning or tool call);
 *                       a role-only first chunk is not a token
 *   time to first chunk sent → first SSE event of any kind (vLLM's own TTFT for chat)
 *   E2E latency         sent → last content event (streams) or the end of the body (JSON)
 *   TPOT                (E2E − TTFT) / (output tokens − 1), requests with > 1 token
 *                       (= GuideLLM's and AIPerf's "ITL")
 *   ITL per chunk       every gap between consecutive content events (= vLLM's ITL, AIPerf's ICL)
 *   intended-time       the same latencies measured from the request's planned send time, so a
 *                       client that fell behind (coordinated omission) cannot hide it
 *   schedule lag        planned → sent; split into the wait for a concurrency slot and the rest
 *   goodput             requests/s that succeeded and met every SLO given; failures count against
 *
 * Output tokens come from `usage.completion_tokens`; a request without usage falls back to a
 * re-count (sampled requests) or to its number of content events, and the report says how many
 * of each there were.
 */

import { Distribution, decodeHistogram, round } from './histogram.js';
import { errorClassName, HTTP_ERROR_BASE, R, RECORD_FIELDS } from './protocol.js';

/** Goodput thresholds in ms (vLLM's `--goodput` keys). */
export interface Slos {
  ttft?: number;
  tpot?: number;
  e2el?: number;
}

/** Options of {@link createAggregator}. */
export interface AggregatorOptions {
  slos: Slos;
  /** Width of time-series buckets. Default 1000. */
  bucketMs?: number;
  /** Keep one row per request (for `--save-detailed` and the per-request CSV). */
  keepRequests?: boolean;
  /** Prompt tokens as counted by the client, per prompt index. */
  clientPromptTokens?: (index: number) => number;
  /** A send later than this after its intended time is late. Default 10. */
  lateThresholdMs?: number;
  /** Keep [sent, latency] samples for {@link Aggregator.drainLatencySamples} (the over-saturation check). */
  latencySamples?: boolean;
}

/** One kept request (ms; null where not applicable). */
export interface RequestRow {
  index: number;
  ok: boolean;
  error: string | null;
  intended_ms: number;
  sent_ms: number;
  schedule_lag_ms: number;
  ttft_ms: number | null;
  first_chunk_ms: number | null;
  e2el_ms: number | null;
  tpot_ms: number | null;
  ttft_from_intended_ms: number | null;
  e2el_from_intended_ms: number | null;
  output_tokens: number | null;
  prompt_tokens: number | null;
  max_itl_ms: number | null;
}

/** The distributions a run keeps, by their report names. */
export const DISTRIBUTIONS = [
  'ttft_ms',
  'first_chunk_ms',
  'ttfb_ms',
  'tpot_ms',
  'time_per_output_token_incl_first_ms',
  'itl_per_chunk_ms',
  'e2el_ms',
  'ttft_from_intended_ms',
  'e2el_from_intended_ms',
  'schedule_lag_ms',
  'concurrency_wait_ms',
  'connect_ms',
  'request_max_itl_ms',
  'output_tokens_per_second_per_request',
  'output_token_throughput_per_user',
  'server_ttft_ms',
  'server_tpot_ms',
  'server_e2e_ms',
  'server_queue_ms',
] as const;

export type DistributionName = (typeof DISTRIBUTIONS)[number];

interface Bucket {
  completed: number;
  failed: number;
  outputTokens: number;
  ttftSum: number;
  ttftCount: number;
  ttftMax: number;
  intendedTtftSum: number;
  intendedTtftCount: number;
  busyMs: number;
  active: number;
  lagMax: number;
  sent: number;
}

/** Accumulated state of one run; see {@link createAggregator}. */
export interface Aggregator {
  add(records: Float64Array, count: number): void;
  /** Merges the per-chunk ITL histograms the shards kept. */
  addItlHistogram(encoded: string): void;
  readonly distributions: Record<DistributionName, Distribution>;
  readonly counters: Counters;
  readonly errors: Map<string, number>;
  readonly buckets: Bucket[];
  readonly bucketMs: number;
  readonly requests: RequestRow[] | undefined;
  /** TTFT (or E2E for JSON) samples for the over-saturation check: [sent ms, latency ms]. */
  drainLatencySamples(): Array<[number, number]>;
}

/** Run-wide counts. */
export interface Counters {
  done: number;
  completed: number;
  failed: number;
  good: number;
  goodFromIntended: number;
  inputTokens: number;
  inputTokensFromUsage: number;
  outputTokens: number;
  outputFromUsage: number;
  outputFromRecount: number;
  outputFromChunks: number;
  recountSampled: number;
  recountUsageTotal: number;
  recountTotal: number;
  late: number;
  firstSent: number;
  lastSent: number;
  lastEnd: number;
}

/** Creates an empty aggregator. */
export function createAggregator(options: AggregatorOptions): Aggregator {
  const bucketMs = options.bucketMs ?? 1000;
  const lateMs = options.lateThresholdMs ?? 10;
  const { slos } = options;
  const distributions = Object.fromEntries(
    DISTRIBUTIONS.map((name) => [name, new Distribution()]),
  ) as Record<DistributionName, Distribution>;
  const counters: Counters = {
    done: 0,
    completed: 0,
    failed: 0,
    good: 0,
    goodFromIntended: 0,
    inputTokens: 0,
    inputTokensFromUsage: 0,
    outputTokens: 0,
    outputFromUsage: 0,
    outputFromRecount: 0,
    outputFromChunks: 0,
    recountSampled: 0,
    recountUsageTotal: 0,
    recountTotal: 0,
    late: 0,
    firstSent: Infinity,
    lastSent: -Infinity,
    lastEnd: -Infinity,
  };
  const errors = new Map<string, number>();
  const buckets: Bucket[] = [];
  const requests: RequestRow[] | undefined = options.keepRequests === true ? [] : undefined;
  let latencySamples: Array<[number, number]> = [];
  const sampling = options.latencySamples === true;

  const bucket = (t: number): Bucket => {
    const i = Math.max(0, Math.floor(t / bucketMs));
    while (buckets.length <= i) {
      buckets.push({
        completed: 0,
        failed: 0,
        outputTokens: 0,
        ttftSum: 0,
        ttftCount: 0,
        ttftMax: 0,
        intendedTtftSum: 0,
        intendedTtftCount: 0,
        busyMs: 0,
        active: 0,
        lagMax: 0,
        sent: 0,
      });
    }
    return buckets[i] as Bucket;
  };

  /** Adds `amount` spread evenly over [from, to] to the buckets it overlaps. */
  const spread = (
    from: number,
    to: number,
    add: (b: Bucket, share: number, ms: number) => void,
  ): void => {
    if (!(to >= from)) return;
    const first = Math.max(0, Math.floor(from / bucketMs));
    const last = Math.max(0, Math.floor(to / bucketMs));
    const span = to - from;
    for (let i = first; i <= last; i++) {
      const lo = Math.max(from, i * bucketMs);
      const hi = Math.min(to, (i + 1) * bucketMs);
      const ms = Math.max(0, hi - lo);
      add(bucket(i * bucketMs), span > 0 ? ms / span : 1, ms);
    }
  };

  const d = distributions;
  const one = (r: Float64Array, base: number): void => {
    const at = (field: number): number => r[base + field] as number;
    const sent = at(R.dispatch);
    const intended = at(R.intended);
    const end = at(R.end);
    const error = at(R.error);
    const ok = error === 0;
    counters.done++;
    if (sent < counters.firstSent) counters.firstSent = sent;
    if (sent > counters.lastSent) counters.lastSent = sent;
    if (end > counters.lastEnd) counters.lastEnd = end;

    const lag = sent - intended;
    d.schedule_lag_ms.record(Math.max(0, lag));
    d.concurrency_wait_ms.record(Math.max(0, at(R.slot) - intended));
    if (lag > lateMs) counters.late++;
    const sentBucket = bucket(sent);
    sentBucket.sent++;
    if (lag > sentBucket.lagMax) sentBucket.lagMax = lag;
    const socket = at(R.sent);
    if (!Number.isNaN(socket)) d.connect_ms.record(socket - sent);
    spread(sent, end, (b, _share, ms) => {
      b.busyMs += ms;
      b.active++;
    });

    if (!ok) {
      counters.failed++;
      const name = errorClassName(error);
      errors.set(name, (errors.get(name) ?? 0) + 1);
      bucket(end).failed++;
      if (requests !== undefined) requests.push(row(r, base, false, name, Number.NaN, Number.NaN));
      return;
    }
    counters.completed++;
    bucket(end).completed++;

    const streamed = !Number.isNaN(at(R.firstToken));
    const lastContent = streamed ? at(R.lastToken) : end;
    const e2el = lastContent - sent;
    const e2elIntended = lastContent - intended;
    d.e2el_ms.record(e2el);
    d.e2el_from_intended_ms.record(e2elIntended);
    d.ttfb_ms.record(at(R.headers) - sent);
    const firstEvent = at(R.firstEvent);
    if (streamed) d.first_chunk_ms.record(firstEvent - sent);

    let outputTokens = at(R.outputTokens);
    const recount = at(R.recount);
    if (!Number.isNaN(recount)) {
      counters.recountSampled++;
      counters.recountTotal += recount;
      if (!Number.isNaN(outputTokens)) counters.recountUsageTotal += outputTokens;
    }
    if (!Number.isNaN(outputTokens)) counters.outputFromUsage++;
    else if (!Number.isNaN(recount)) {
      outputTokens = recount;
      counters.outputFromRecount++;
    } else {
      outputTokens = at(R.contentEvents);
      counters.outputFromChunks++;
    }
    counters.outputTokens += outputTokens;
    const promptUsage = at(R.promptTokens);
    if (!Number.isNaN(promptUsage)) {
      counters.inputTokens += promptUsage;
      counters.inputTokensFromUsage++;
    } else {
      counters.inputTokens += options.clientPromptTokens?.(at(R.index)) ?? 0;
    }

    let ttft = Number.NaN;
    let ttftIntended = Number.NaN;
    let tpot = Number.NaN;
    if (streamed) {
      ttft = at(R.firstToken) - sent;
      ttftIntended = at(R.firstToken) - intended;
      d.ttft_ms.record(ttft);
      d.ttft_from_intended_ms.record(ttftIntended);
      const b = bucket(sent);
      b.ttftSum += ttft;
      b.ttftCount++;
      if (ttft > b.ttftMax) b.ttftMax = ttft;
      b.intendedTtftSum += ttftIntended;
      b.intendedTtftCount++;
      if (sampling) latencySamples.push([sent, ttft]);
      if (outputTokens > 1) {
        tpot = (e2el - ttft) / (outputTokens - 1);
        d.tpot_ms.record(tpot);
        if (tpot > 0) d.output_token_throughput_per_user.record(1000 / tpot);
      }
      const maxGap = at(R.maxGap);
      if (!Number.isNaN(maxGap)) d.request_max_itl_ms.record(maxGap);
      spread(at(R.firstToken), lastContent, (bk, share) => {
        bk.outputTokens += outputTokens * share;
      });
    } else {
      if (sampling) latencySamples.push([sent, e2el]);
      bucket(end).outputTokens += outputTokens;
    }
    if (outputTokens > 0) {
      d.time_per_output_token_incl_first_ms.record(e2el / outputTokens);
      if (e2el > 0) d.output_tokens_per_second_per_request.record((outputTokens * 1000) / e2el);
    }

    d.server_ttft_ms.record(at(R.serverTtft));
    d.server_tpot_ms.record(at(R.serverTpot));
    d.server_e2e_ms.record(at(R.serverE2e));
    d.server_queue_ms.record(at(R.serverQueued));

    // vLLM counts the TPOT of a one-token answer as 0 for goodput.
    const tpotForSlo = outputTokens > 1 ? tpot : 0;
    const meets = (t: number, e: number): boolean =>
      (slos.ttft === undefined || t <= slos.ttft) &&
      (slos.tpot === undefined || tpotForSlo <= slos.tpot) &&
      (slos.e2el === undefined || e <= slos.e2el);
    if (meets(ttft, e2el)) counters.good++;
    if (meets(ttftIntended, e2elIntended)) counters.goodFromIntended++;
    if (requests !== undefined) requests.push(row(r, base, true, null, ttft, tpot, outputTokens));
  };

  return {
    add(records, count) {
      for (let i = 0; i < count; i++) one(records, i * RECORD_FIELDS);
    },
    addItlHistogram(encoded) {
      d.itl_per_chunk_ms.mergeHistogram(decodeHistogram(encoded));
    },
    distributions,
    counters,
    errors,
    buckets,
    bucketMs,
    requests,
    drainLatencySamples() {
      const out = latencySamples;
      latencySamples = [];
      return out;
    },
  };
}

function row(
  r: Float64Array,
  base: number,
  ok: boolean,
  error: string | null,
  ttft: number,
  tpot: number,
  outputTokens = Number.NaN,
): RequestRow {
  const at = (field: number): number => r[base + field] as number;
  const sent = at(R.dispatch);
  const intended = at(R.intended);
  const streamed = !Number.isNaN(at(R.firstToken));
  const last = streamed ? at(R.lastToken) : at(R.end);
  return {
    index: at(R.index),
    ok,
    error,
    intended_ms: round(intended) ?? 0,
    sent_ms: round(sent) ?? 0,
    schedule_lag_ms: round(sent - intended) ?? 0,
    ttft_ms: round(ttft),
    first_chunk_ms: round(at(R.firstEvent) - sent),
    e2el_ms: ok ? round(last - sent) : null,
    tpot_ms: round(tpot),
    ttft_from_intended_ms: streamed && ok ? round(at(R.firstToken) - intended) : null,
    e2el_from_intended_ms: ok ? round(last - intended) : null,
    output_tokens: Number.isNaN(outputTokens) ? null : outputTokens,
    prompt_tokens: round(at(R.promptTokens)),
    max_itl_ms: round(at(R.maxGap)),
  };
}

/** True for an error code that is an HTTP status. */
export function isHttpError(code: number): boolean {
  return code >= HTTP_ERROR_BASE;
}
