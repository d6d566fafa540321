/**
 * The contract between the supervisor (main thread) and the worker actors that talk HTTP, in
 * either mode. Everything here is plain, structured-cloneable data: it crosses a MessagePort in
 * `threads` mode and a function call in `async` mode, unchanged.
 *
 *   supervisor --dispatch(WorkRequest[])--> Dispatcher --> worker actor --HTTP--> endpoint
 *   supervisor <--outcomes(WorkOutcome[])-- Dispatcher <-- worker actor
 */
import type { SerializedError } from '../errors.js';
import type { RateLimitSnapshot } from '../rate-limit-headers.js';
import type { Usage } from './openai.js';

/** How a worker reaches one endpoint. Resolved once from the user's options; secrets included. */
/** How an endpoint's key is sent. */
export type EndpointAuth = 'bearer' | 'api-key';

export interface EndpointConfig {
  /** OpenAI SDK convention: `http://host:port/v1`. Request paths are appended to it. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer ...` or `api-key` (see `auth`). Never logged, never echoed in errors. */
  apiKey?: string;
  /**
   * How the key travels: `bearer` (`Authorization: Bearer <key>`) or `api-key` (the `api-key`
   * header, Azure OpenAI's). Default: `api-key` for Azure OpenAI hosts, else `bearer`.
   */
  auth?: EndpointAuth;
  /** Sent with every request; a header named here wins over Volley's own. */
  headers?: Record<string, string>;
  /** Keep-alive connections this endpoint may use from one worker. */
  connections: number;
  connectTimeoutMs: number;
  /** Time from sending the request to the response headers. */
  headersTimeoutMs: number;
  /** Longest silence between body chunks or SSE events (SSE comments do not count as activity). */
  idleTimeoutMs: number;
  /** Cap on a JSON body or on the total size of an SSE stream. */
  maxResponseBytes: number;
}

export interface WorkerConfig {
  endpoints: EndpointConfig[];
  /**
   * Answers larger than 4 MiB read at once by one executor (one per thread); the others pause
   * until a slot frees. Bounds the memory answers take however high the concurrency.
   */
  largeAnswerSlots?: number;
}

/** What the caller wants back from the worker for embeddings. */
export type EmbeddingDecode = 'none' | 'vectors';

export interface WorkRequest {
  /** Attempt id, unique per attempt: a late outcome for an old attempt is recognised and dropped. */
  id: number;
  endpoint: number;
  /** Path relative to the endpoint's base URL, e.g. `/chat/completions`. */
  path: string;
  body: Record<string, unknown>;
  /** Ask for SSE and assemble the stream into the same body a non-streaming call returns. */
  stream: boolean;
  /** Forward content deltas as they arrive (costs a message per delta batch). */
  deltas: boolean;
  /** Return the response body as its JSON text rather than parsed (batch writers embed it as is). */
  raw: boolean;
  /** Decode embeddings into one Float32Array matrix in the worker. */
  embeddings: EmbeddingDecode;
  /** Budget for this attempt, from send to the last byte. */
  timeoutMs: number;
}

export interface AttemptTiming {
  /** Request handed to the connection, ms on the worker's `performance.now()` clock. */
  latencyMs: number;
  headersMs: number;
  /** First SSE event carrying content (role-only chunks do not count). */
  ttftMs?: number;
}

export interface EmbeddingMatrix {
  /** Row-major: vector `i` is `data.subarray(i * dimensions, (i + 1) * dimensions)`, in input order. */
  data: Float32Array;
  dimensions: number;
  count: number;
  /** The server ignored `encoding_format: base64` and sent float JSON. */
  serverSentFloats: boolean;
}

export interface WorkSuccess {
  id: number;
  ok: true;
  status: number;
  requestId: string;
  /** Parsed body, unless `raw` was asked for. Streams arrive here already assembled. */
  body?: unknown;
  /** Body as JSON text when `raw` was asked for. */
  bodyText?: string;
  usage?: Usage;
  rateLimit?: RateLimitSnapshot;
  timing: AttemptTiming;
  embeddings?: EmbeddingMatrix;
}

export interface WorkFailure {
  id: number;
  ok: false;
  error: SerializedError;
  rateLimit?: RateLimitSnapshot;
}

export type WorkOutcome = WorkSuccess | WorkFailure;

/** One content delta of a streamed choice, forwarded to the caller's `onDelta`. */
export interface StreamDelta {
  id: number;
  choice: number;
  content: string;
}

/** Where a dispatcher reports back. Called asynchronously, never from inside `dispatch`. */
export interface DispatchSink {
  outcomes(outcomes: WorkOutcome[]): void;
  deltas(deltas: StreamDelta[]): void;
  /** Attempts whose worker died before they settled: nothing is known about them. */
  lost(ids: number[], error: SerializedError): void;
  /** A worker thread died (reported once per death, whatever it held). */
  workerCrashed(error: SerializedError): void;
}

/** A pool of worker actors (threads) or one actor on the main loop (async). */
export interface Dispatcher {
  readonly kind: 'threads' | 'async';
  /** Starts the attempts. Never throws for one bad request: failures come back as outcomes. */
  dispatch(requests: WorkRequest[]): void;
  /** Aborts in-flight attempts; their outcomes still arrive (as aborted failures). */
  cancel(ids: number[]): void;
  /** Aggregated per-worker statistics. */
  stats(): Promise<WorkerStats[]>;
  /** Waits for in-flight attempts, then releases threads and sockets. */
  close(): Promise<void>;
  /** Aborts everything now. */
  destroy(): Promise<void>;
}

export interface WorkerStats {
  threadId: number;
  inFlight: number;
  completed: number;
  failed: number;
  /** Event-loop utilisation of that thread since it started, 0..1. */
  eventLoopUtilization: number;
}
