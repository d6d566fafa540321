/**
 * What the main thread and the load-generating shards say to each other. Everything here is
 * plain, cloneable data; the shard code runs unchanged in a worker thread or on the main loop
 * (`threads: 0`), so this file is the whole contract.
 *
 *   main ──init (once)─────────────► shard   endpoint, headers, prompt bodies
 *   main ──phase {runId, plan}─────► shard   one load phase: warm-up, a run, a sweep point
 *   shard ─batch {records}─────────► main    finished requests, every ~100 ms (Float64Array, moved)
 *   main ──stop {runId}────────────► shard   send nothing more; finish what is in flight
 *   shard ─done {runId, histograms}► main    the phase's per-chunk ITL, loop delay, utilisation
 *
 * A phase's schedule and, in lane mode, its next-request counter are SharedArrayBuffers read by
 * every shard: the plan is computed once and no shard waits on another to pick its next request.
 */

import type { HedgePolicy } from '@volley/core';

/** Static configuration of a shard, sent once. */
export interface ShardInit {
  shard: number;
  shards: number;
  /** The replicas requests are spread over (one or more); see replicas.ts. */
  replicas: ReplicaTarget[];
  /** Hedging (issue #13 item 4): absent, off. Needs two replicas or more. */
  hedge?: HedgePolicy | undefined;
  /** Request headers, credentials included (never logged). */
  headers: Record<string, string>;
  /** Per prompt: the path after the replica's base path (`/chat/completions`) and the JSON body. */
  paths: string[];
  bodies: string[];
  /** Idle limit for headers and between body chunks. */
  requestTimeoutMs: number;
}

/** One replica of the endpoint under test. */
export interface ReplicaTarget {
  /** `http://host:port`. */
  origin: string;
  /** The base URL's path, without a trailing slash (`/v1`). */
  basePath: string;
}

/** One load phase, as a shard runs it. */
export interface PhasePlan {
  runId: number;
  /**
   * `open`: every planned request is sent at its intended time, however many are in flight.
   * `lanes`: a fixed number of lanes each sends one request at a time (closed loop, or an open
   * loop with a concurrency cap, where a request waits for both its time and a free lane).
   */
  mode: 'open' | 'lanes';
  /** Requests in the phase (all shards together). */
  count: number;
  /** Intended send offsets (ms after `startAt`), Float64Array over this buffer; absent: closed loop. */
  schedule?: SharedArrayBuffer | undefined;
  /** Lane mode: this shard's lanes. */
  lanes: number;
  /** Lane mode: Int32Array(1), the next request index, shared by every shard. */
  counter?: SharedArrayBuffer | undefined;
  /** Epoch milliseconds (`performance.timeOrigin + performance.now()`) of offset 0. */
  startAt: number;
  /** No send is started this long after `startAt` (a duration-bounded phase). */
  stopAfterMs?: number | undefined;
  /** Request `i` sends prompt `promptStart + (i % promptCount)`. */
  promptStart: number;
  promptCount: number;
  /** Warm-up phases record no per-chunk histogram. */
  measured: boolean;
  /** Re-count the output tokens of every `recountStride`-th request (0: none). */
  recountStride: number;
}

export type MainToShard =
  | { type: 'init'; init: ShardInit }
  | { type: 'phase'; plan: PhasePlan }
  | { type: 'stop'; runId: number }
  | { type: 'close' };

export type ShardToMain =
  | { type: 'ready'; shard: number }
  | {
      type: 'batch';
      shard: number;
      runId: number;
      /** `count` records of {@link RECORD_FIELDS} numbers each. */
      records: Float64Array;
      count: number;
      inFlight: number;
      sent: number;
    }
  | { type: 'done'; shard: number; runId: number; summary: ShardPhaseSummary }
  | { type: 'failed'; shard: number; message: string };

/** What a shard measured over a phase besides its records. */
export interface ShardPhaseSummary {
  sent: number;
  /** Per-chunk gaps between content events in µs, HdrHistogram compressed base64. */
  itlHistogram: string;
  /** Event-loop delay of this thread (`monitorEventLoopDelay`, 5 ms resolution). */
  loopDelayMs: { mean: number; p50: number; p99: number; max: number };
  /** Event-loop utilisation over the phase, 0..1. */
  loopUtilization: number;
  /** Wall time of the phase on this shard. */
  elapsedMs: number;
  /** Calls sent to each replica (in {@link ShardInit.replicas} order), hedge copies included. */
  replicaCalls: number[];
  /** Requests that got a hedge copy, and how many of those the copy answered first. */
  hedged: number;
  hedgeWins: number;
}

/**
 * Field offsets of one request record. Times are milliseconds after the phase's `startAt`; `NaN`
 * where the event did not happen.
 *
 *   intended ─► slot ─► dispatch ─► sent ─► headers ─► firstEvent ─► firstToken ··· lastToken ─► end
 *   (plan)     (lane   (our call)  (socket  (status    (first SSE     (first       (last
 *               free)               write)   line)      event)         content)     content)
 */
export const R = {
  index: 0,
  intended: 1,
  slot: 2,
  dispatch: 3,
  sent: 4,
  headers: 5,
  firstEvent: 6,
  firstToken: 7,
  lastToken: 8,
  end: 9,
  status: 10,
  /** 0 for success, else an {@link ERROR_CLASSES} index, or 1000 + HTTP status. */
  error: 11,
  /** `usage.completion_tokens`. */
  outputTokens: 12,
  /** `usage.prompt_tokens`. */
  promptTokens: 13,
  /** SSE events that carried content. */
  contentEvents: 14,
  /** Output tokens re-counted with gpt-tokenizer (sampled requests only). */
  recount: 15,
  /** Largest gap between two content events of this request. */
  maxGap: 16,
  /** The simulator engine's own figures (`x-volley-sim-timing`), when it reports them. */
  serverQueued: 17,
  serverTtft: 18,
  serverTpot: 19,
  serverE2e: 20,
  serverOutputTokens: 21,
} as const;

/** Numbers per record. */
export const RECORD_FIELDS = 22;

/** Error classes a request can end with besides an HTTP status (index = code). */
export const ERROR_CLASSES = [
  'ok',
  'timeout',
  'connect_error',
  'connection_reset',
  'aborted',
  'transport_error',
  'truncated_stream',
  'bad_response',
  'empty_response',
  'stream_error',
] as const;

export type ErrorClass = (typeof ERROR_CLASSES)[number];

/** HTTP errors are coded as this plus the status. */
export const HTTP_ERROR_BASE = 1000;

/** The name of an error code as reports show it: `timeout`, `http_503`, ... */
export function errorClassName(code: number): string {
  if (code >= HTTP_ERROR_BASE) return `http_${code - HTTP_ERROR_BASE}`;
  return ERROR_CLASSES[code] ?? `unknown_${code}`;
}
