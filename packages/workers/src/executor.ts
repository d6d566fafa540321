/**
 * The worker actor's engine: runs WorkRequests over keep-alive connections and reports one
 * WorkOutcome for each, never throwing. The same code runs inside each worker thread
 * (`threads` mode) and on the main loop (`async` mode), which is what makes the two modes give
 * identical results.
 *
 * Per attempt it enforces the timeouts that undici does not know about: the attempt's total
 * budget, and an SSE idle timer that only real events reset (keep-alive comments do not).
 */

import type {
  EmbeddingMatrix,
  EndpointConfig,
  HeaderMap,
  SerializedError,
  StreamDelta,
  Usage,
  WorkerConfig,
  WorkOutcome,
  WorkRequest,
  WorkSuccess,
} from '@volley/core';
import {
  ErrorCode,
  headerValue,
  parseRateLimitHeaders,
  registerSecret,
  scrubSecrets,
} from '@volley/core';
import type { Dispatcher } from 'undici';
import { util } from 'undici';
import { LARGE_ANSWER_BYTES, LargeAnswerGate } from './answer-gate.js';
import {
  bodyText,
  decodeEmbeddings,
  EmbeddingShapeError,
  parseEmbeddingsBody,
} from './embeddings.js';
import type { EndpointClient } from './endpoint-client.js';
import { createEndpointClient } from './endpoint-client.js';
import {
  badResponse,
  failure,
  httpFailure,
  notApiAnswer,
  serverExcerpt,
  transportFailure,
} from './failures.js';
import {
  RESPONSES_PATH,
  ResponseStreamError,
  ResponsesAssembler,
  usageOf,
} from './responses-assembler.js';
import { SseLimitError, SseParser } from './sse.js';
import { StreamAssembler } from './stream-assembler.js';

export interface ExecutorStats {
  inFlight: number;
  completed: number;
  failed: number;
}

/** A request whose body may already be encoded (then it comes as `execute`'s `wire`). */
export type AttemptSpec = Omit<WorkRequest, 'body'> & { body?: WorkRequest['body'] };

export interface Executor {
  /**
   * Runs one attempt. `wire` is the request's body as it goes on the wire, when the caller has
   * encoded it already (a worker thread gets it as bytes; see `wireBody`); else it is built here.
   */
  execute(
    request: AttemptSpec,
    onDelta?: (delta: StreamDelta) => void,
    wire?: Uint8Array,
  ): Promise<WorkOutcome>;
  cancel(ids: readonly number[]): void;
  stats(): ExecutorStats;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

/** Thrown inside an attempt to end it with a specific outcome. */
class AttemptFailure extends Error {
  readonly failure: SerializedError;
  constructor(failure: SerializedError) {
    super(failure.message);
    this.failure = failure;
  }
}

type Headers = Dispatcher.ResponseData['headers'];

/** Large answers read at once per executor when the runtime does not say (see answer-gate.ts). */
const DEFAULT_LARGE_ANSWER_SLOTS = 16;

/**
 * One attempt's abort handle, watched by its Exchange (which ends the request) and by the
 * LargeAnswerGate while it waits. Made for every attempt, so it is cheaper than an AbortController
 * (`createAbortSignal` alone was 5.6% of the CPU profile at 12k requests/s) or an EventEmitter,
 * whose `once` wraps every listener in a bound closure. `abort` fires at most once.
 */
class Attempt {
  aborted = false;
  /** Why we aborted, if we did: distinguishes our timeout from the caller's cancel. */
  reason: SerializedError | undefined = undefined;
  headersAt = 0;
  #listeners: Array<() => void> | undefined = undefined;

  once(_event: 'abort', listener: () => void): this {
    // A literal array holds just the one listener an attempt mostly has; `push` on an empty one reserves 17.
    if (this.#listeners === undefined) this.#listeners = [listener];
    else this.#listeners.push(listener);
    return this;
  }

  off(_event: 'abort', listener: () => void): this {
    const listeners = this.#listeners;
    const at = listeners === undefined ? -1 : listeners.lastIndexOf(listener);
    if (at !== -1) listeners?.splice(at, 1);
    return this;
  }

  /**
   * Drops the listeners once the attempt is over. They reach the whole exchange (undici's request,
   * the handler, the body): a finished attempt that still held them, reached from an old table of
   * the `attempts` map, kept all of it alive until it was promoted to the old generation
   * (benchmarks/README.md, round 5).
   */
  finish(): void {
    this.#listeners = undefined;
  }

  /** Ends the attempt with `reason`; only the first call counts. */
  abort(reason: SerializedError): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.aborted = true;
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (listeners !== undefined) for (const listener of listeners) listener();
  }
}

export function createExecutor(config: WorkerConfig): Executor {
  const clients = config.endpoints.map((endpoint) => {
    registerSecret(endpoint.apiKey);
    return createEndpointClient(endpoint);
  });
  const attempts = new Map<number, Attempt>();
  const gate = new LargeAnswerGate(config.largeAnswerSlots ?? DEFAULT_LARGE_ANSWER_SLOTS);
  const counters: ExecutorStats = { inFlight: 0, completed: 0, failed: 0 };

  async function execute(
    request: AttemptSpec,
    onDelta?: (delta: StreamDelta) => void,
    wire?: Uint8Array,
  ): Promise<WorkOutcome> {
    const client = clients[request.endpoint];
    if (client === undefined) {
      return {
        id: request.id,
        ok: false,
        error: failure(ErrorCode.INVALID_OPTIONS, `no endpoint ${request.endpoint}`, false),
      };
    }
    const attempt = new Attempt();
    attempts.set(request.id, attempt);
    counters.inFlight++;
    const timer = setTimeout(() => {
      attempt.abort(
        failure(ErrorCode.TIMEOUT, `attempt exceeded its ${request.timeoutMs} ms budget`, true),
      );
    }, request.timeoutMs);
    let outcome: WorkOutcome;
    try {
      // Without `wire`, the request carries its body (the async dispatcher passes WorkRequests).
      const body = wire ?? JSON.stringify(wireBody(request as WorkRequest));
      outcome = await run(client, gate, request, body, attempt, onDelta);
    } catch (error) {
      outcome = { id: request.id, ok: false, error: toFailure(error, attempt) };
    } finally {
      clearTimeout(timer);
      attempt.finish();
      attempts.delete(request.id);
      counters.inFlight--;
    }
    if (outcome.ok) counters.completed++;
    else counters.failed++;
    return outcome;
  }

  return {
    execute,
    cancel(ids) {
      // An attempt registers before its first await, and a cancel only ever reaches the executor
      // that holds (or held) the attempt, after it: an unknown id has already settled.
      for (const id of ids) {
        const attempt = attempts.get(id);
        if (attempt) attempt.abort(failure(ErrorCode.ABORTED, 'attempt cancelled', true));
      }
    },
    stats: () => ({ ...counters }),
    async close() {
      await Promise.all(clients.map((client) => client.pool.close()));
    },
    async destroy() {
      await Promise.all(clients.map((client) => client.pool.destroy()));
    },
  };
}

function toFailure(error: unknown, attempt: Attempt): SerializedError {
  if (attempt.reason !== undefined) return attempt.reason;
  if (error instanceof AttemptFailure) return error.failure;
  return transportFailure(error, attempt.headersAt === 0 ? 'headers' : 'body');
}

/**
 * One attempt over the wire. It goes through `pool.dispatch` with a handler of our own (Exchange)
 * rather than `pool.request`: a JSON answer is wanted whole and an SSE one chunk by chunk, so
 * undici's per-response Readable stream, AsyncResource and signal bookkeeping would be pure cost.
 */
async function run(
  client: EndpointClient,
  gate: LargeAnswerGate,
  request: Omit<WorkRequest, 'body'>,
  wire: string | Uint8Array,
  attempt: Attempt,
  onDelta: ((delta: StreamDelta) => void) | undefined,
): Promise<WorkOutcome> {
  const started = performance.now();
  let stream: StreamReader | undefined;
  let answer: Answer<DecodedBody | StreamedResult>;
  try {
    answer = await new Promise((resolve, reject) => {
      client.pool.dispatch(
        {
          method: 'POST',
          path: client.pathFor(request.path),
          headers: client.headers,
          body: wire,
          headersTimeout: Math.min(client.config.headersTimeoutMs, request.timeoutMs),
          // SSE idleness is judged by our own timer (comments must not count); JSON by undici's.
          bodyTimeout: request.stream ? 0 : client.config.idleTimeoutMs,
        },
        new Exchange<DecodedBody | StreamedResult>(
          gate,
          attempt,
          resolve,
          reject,
          (status, headers) => {
            const contentType = headerValue(headers, 'content-type') ?? '';
            if (request.stream && contentType.includes('text/event-stream')) {
              stream = new StreamReader(client.config, request, attempt, onDelta);
              return stream;
            }
            return { finish: (bytes) => decodeAnswer(request, status, headers, bytes) };
          },
        ),
      );
    });
  } finally {
    stream?.close();
  }

  const { status, headers } = answer;
  const rateLimit = parseRateLimitHeaders(headers);
  if (answer.failed) {
    // Redirects land here too: they are never followed, credentials must not travel elsewhere.
    const failed: WorkOutcome = {
      id: request.id,
      ok: false,
      error: httpFailure(status, headers, answer.text),
    };
    if (rateLimit !== undefined) failed.rateLimit = rateLimit;
    return failed;
  }
  const timing: WorkSuccess['timing'] = {
    latencyMs: performance.now() - started,
    headersMs: attempt.headersAt - started,
  };
  const success: WorkSuccess = { id: request.id, ok: true, status, requestId: '', timing };
  const result = answer.value;
  if ('streamed' in result) {
    success.requestId = requestIdOf(headers, result.id);
    if (request.raw) success.bodyText = JSON.stringify(result.body);
    else success.body = result.body;
    if (result.usage !== undefined) success.usage = result.usage;
    if (result.ttftAt !== undefined) timing.ttftMs = result.ttftAt - started;
  } else {
    const { body, text, embeddings } = result;
    success.requestId = requestIdOf(headers, typeof body.id === 'string' ? body.id : '');
    const usage = usageOf(body.usage);
    if (usage !== undefined) success.usage = usage;
    if (embeddings !== undefined) success.embeddings = embeddings;
    if (request.raw && text !== undefined) success.bodyText = text;
    else success.body = body;
  }
  if (rateLimit !== undefined) success.rateLimit = rateLimit;
  return success;
}

/** What an exchange settles with: a 2xx answer read by its BodyReader, or another status's text. */
type Answer<T> = { status: number; headers: Headers } & (
  | { failed: false; value: T }
  | { failed: true; text: string }
);

/** How an exchange reads a 2xx body: gathered and handed over whole, or taken chunk by chunk. */
interface BodyReader<T> {
  /**
   * Takes each chunk as it arrives and says whether the answer is complete (the rest is dropped).
   * Without it, the body is gathered and `finish` gets its bytes.
   */
  push?(chunk: Buffer): boolean;
  /**
   * The answer, once the body is read (or complete). Runs within the turn the body ends in: the
   * gathered bytes may live in the shared scratch buffer, so it must copy whatever it keeps.
   */
  finish(bytes: Buffer): T;
}

const NO_BYTES = Buffer.alloc(0);

/** How long the end of a complete answer's body may take before its connection is given up. */
const DRAIN_GRACE_MS = 5_000;

/** Enough of an error body for its message; the rest is not worth reading. */
const ERROR_BODY_BYTES = 64 * 1024;

/**
 * undici's handler for one attempt (its classic handler interface, which the pool calls directly).
 * It settles once: a 2xx body read by the reader `readerFor` picks from the headers, any other
 * status with the first ERROR_BODY_BYTES of its text. A body that grows past LARGE_ANSWER_BYTES
 * pauses until the LargeAnswerGate has a slot for it (undici stops reading the socket meanwhile),
 * and aborting the attempt (our timeout, the caller's cancel) ends the exchange, queued or under
 * way; the attempt's reason then names the failure (see `toFailure`).
 */
class Exchange<T> implements Dispatcher.DispatchHandler {
  readonly #gate: LargeAnswerGate;
  readonly #attempt: Attempt;
  readonly #resolve: (answer: Answer<T>) => void;
  readonly #reject: (error: unknown) => void;
  readonly #readerFor: (status: number, headers: Headers) => BodyReader<T>;
  #abort: ((error: Error) => void) | undefined = undefined;
  #status = 0;
  #headers: Headers = {};
  #reader: BodyReader<T> | undefined = undefined;
  #resume: (() => void) | undefined = undefined;
  #chunks: Buffer[] = [];
  #length = 0;
  #large: LargeAnswerReader | undefined = undefined;
  #settled = false;
  #drain: NodeJS.Timeout | undefined = undefined;

  constructor(
    gate: LargeAnswerGate,
    attempt: Attempt,
    resolve: (answer: Answer<T>) => void,
    reject: (error: unknown) => void,
    readerFor: (status: number, headers: Headers) => BodyReader<T>,
  ) {
    this.#gate = gate;
    this.#attempt = attempt;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#readerFor = readerFor;
  }

  onConnect(abort: (error: Error) => void): void {
    this.#abort = abort;
    if (this.#attempt.aborted) abort(new Error('attempt aborted'));
    else this.#attempt.once('abort', () => abort(new Error('attempt aborted')));
  }

  onHeaders(status: number, rawHeaders: Buffer[], resume: () => void): boolean {
    this.#attempt.headersAt = performance.now();
    this.#status = status;
    this.#headers = util.parseHeaders(rawHeaders) as Headers;
    this.#resume = resume;
    if (status >= 200 && status < 300) this.#reader = this.#readerFor(status, this.#headers);
    return true;
  }

  /**
   * After an answer complete before its body ends (`[DONE]`), what remains (usually just the
   * chunked terminator) is read and dropped so the connection stays open for the next request:
   * aborting here cost a new connection per streamed answer, a TLS handshake with a real API.
   * A server that never ends the body loses the connection after DRAIN_GRACE_MS instead.
   */
  #drainRest(): void {
    this.#drain = setTimeout(
      () => this.#abort?.(new Error('answer complete, body never ended')),
      DRAIN_GRACE_MS,
    );
    this.#drain.unref();
  }

  onData(chunk: Buffer): boolean {
    if (this.#settled) return true;
    this.#length += chunk.length;
    const reader = this.#reader;
    if (reader === undefined) {
      this.#chunks.push(chunk);
      if (this.#length < ERROR_BODY_BYTES) return true;
      this.#settleFailed();
      this.#abort?.(new Error('error body read far enough'));
      return false;
    }
    if (reader.push === undefined) this.#chunks.push(chunk);
    else {
      let complete: boolean;
      try {
        complete = reader.push(chunk);
      } catch (error) {
        this.#fail(error);
        return false;
      }
      if (complete) {
        this.#succeed(reader, NO_BYTES);
        this.#drainRest();
        return true;
      }
    }
    if (this.#length > LARGE_ANSWER_BYTES && this.#large === undefined) {
      this.#large = new LargeAnswerReader(this.#gate, this.#attempt);
      this.#large.wait().then(
        () => this.#resume?.(),
        (error: unknown) => this.#abort?.(error as Error),
      );
      return false;
    }
    return true;
  }

  onComplete(): void {
    clearTimeout(this.#drain);
    this.#large?.done();
    const reader = this.#reader;
    if (reader === undefined) this.#settleFailed();
    else
      this.#succeed(
        reader,
        reader.push === undefined ? gather(this.#chunks, this.#length) : NO_BYTES,
      );
  }

  onError(error: Error): void {
    clearTimeout(this.#drain);
    this.#large?.done();
    if (this.#settled) return;
    this.#settled = true;
    this.#reject(error);
  }

  #succeed(reader: BodyReader<T>, bytes: Buffer): void {
    if (this.#settled) return;
    let value: T;
    try {
      value = reader.finish(bytes);
    } catch (error) {
      this.#fail(error);
      return;
    }
    this.#settled = true;
    this.#resolve({ status: this.#status, headers: this.#headers, failed: false, value });
  }

  /** Ends the exchange with `error`, and the request with it. */
  #fail(error: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#reject(error);
    this.#abort?.(error instanceof Error ? error : new Error(String(error)));
  }

  #settleFailed(): void {
    if (this.#settled) return;
    this.#settled = true;
    const text = Buffer.concat(this.#chunks, this.#length).toString('utf8');
    this.#resolve({ status: this.#status, headers: this.#headers, failed: true, text });
  }
}

interface DecodedBody {
  body: Record<string, unknown>;
  /** The body as text, when it was decoded as text (all but vectors parsed from the bytes). */
  text: string | undefined;
  embeddings: EmbeddingMatrix | undefined;
}

/** A 2xx JSON body's bytes to what the outcome carries. */
function decodeAnswer(
  request: Omit<WorkRequest, 'body'>,
  status: number,
  headers: Headers,
  bytes: Buffer,
): DecodedBody {
  if (request.embeddings === 'vectors' && !request.raw) {
    // base64 vectors are parsed from the bytes, never as one big string (embeddings.ts).
    const body =
      parseEmbeddingsBody(bytes) ?? parseJsonBody(bodyText(bytes), request.path, status, headers);
    return { body, text: undefined, embeddings: takeVectors(body) };
  }
  // The size cap is undici's `maxResponseSize` on the pool (UND_ERR_RES_EXCEEDED_MAX_SIZE).
  const text = bytes.toString('utf8');
  const body = parseJsonBody(text, request.path, status, headers);
  const embeddings = request.embeddings === 'vectors' ? takeVectors(body) : undefined;
  return { body, text, embeddings };
}

/** Decodes `body.data` and removes it: the base64 strings would only double what crosses the thread. */
function takeVectors(body: Record<string, unknown>): EmbeddingMatrix {
  let matrix: EmbeddingMatrix;
  try {
    matrix = decodeEmbeddings(body.data);
  } catch (error) {
    if (error instanceof EmbeddingShapeError) throw new AttemptFailure(badResponse(error.message));
    throw error;
  }
  delete body.data;
  return matrix;
}

/**
 * Bodies up to this size are gathered in one buffer reused for every body this thread reads, so
 * a large response costs no fresh allocation (a 0.5 MiB one per 64 × 1536 response was a third of
 * the external memory that sets off the main loop's full GCs); larger ones get a buffer of their own.
 */
const SCRATCH_MAX_BYTES = 8 * 1024 * 1024;
let scratch: Buffer | undefined;

function gather(chunks: readonly Buffer[], length: number): Buffer {
  if (chunks.length === 1) return chunks[0] as Buffer;
  if (length > SCRATCH_MAX_BYTES) return Buffer.concat(chunks, length);
  if (scratch === undefined || scratch.length < length)
    scratch = Buffer.allocUnsafeSlow(
      Math.min(SCRATCH_MAX_BYTES, Math.max(length, 2 * (scratch?.length ?? 0))),
    );
  let offset = 0;
  for (const chunk of chunks) offset += chunk.copy(scratch, offset);
  return scratch.subarray(0, length);
}

/**
 * A large answer's slot of the executor's LargeAnswerGate: asked for once, when the answer grows
 * past LARGE_ANSWER_BYTES, and given back when the answer is over, however it ends.
 */
class LargeAnswerReader {
  readonly #gate: LargeAnswerGate;
  readonly #attempt: Attempt;
  #over = false;
  #release: (() => void) | undefined;

  constructor(gate: LargeAnswerGate, attempt: Attempt) {
    this.#gate = gate;
    this.#attempt = attempt;
  }

  async wait(): Promise<void> {
    const release = await this.#gate.acquire(this.#attempt);
    if (this.#over) release();
    else this.#release = release;
  }

  done(): void {
    this.#over = true;
    this.#release?.();
    this.#release = undefined;
  }
}

/**
 * The body on the wire: streams ask for a usage chunk (Responses API streams always end with
 * their usage, and refuse `include_usage`), decoded embeddings ask for base64.
 */
export function wireBody(request: WorkRequest): Record<string, unknown> {
  let body = request.body;
  if (request.stream && body.stream !== true) {
    body =
      request.path === RESPONSES_PATH
        ? { ...body, stream: true }
        : {
            ...body,
            stream: true,
            stream_options: { include_usage: true, ...(body.stream_options as object) },
          };
  }
  if (request.embeddings === 'vectors' && body.encoding_format === undefined) {
    body = { ...body, encoding_format: 'base64' };
  }
  return body;
}

/**
 * The request id a result carries: the server's `x-request-id`, else the body's id. A server's
 * text like any other: a proxy that echoes the Authorization header there must not leak the key.
 */
function requestIdOf(headers: HeaderMap, bodyId: string): string {
  return scrubSecrets(headerValue(headers, 'x-request-id') ?? bodyId);
}

const PATH_SHAPE: Record<string, string> = {
  '/chat/completions': 'choices',
  '/completions': 'choices',
  '/embeddings': 'data',
  [RESPONSES_PATH]: 'output',
};

/** A 200 counts only if it is the JSON object the endpoint promises (not HTML, not `{"error":..}`). */
function parseJsonBody(
  text: string,
  path: string,
  status: number,
  headers: HeaderMap,
): Record<string, unknown> {
  if (text.trim() === '')
    throw new AttemptFailure(badResponse('empty response body with status 200'));
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    const excerpt = serverExcerpt(text, 80).replace(/\s+/g, ' ');
    throw new AttemptFailure(
      badResponse(
        `response body is not JSON: ${JSON.stringify(excerpt)}`,
        undefined,
        notApiAnswer(status, headers, false),
      ),
    );
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new AttemptFailure(badResponse('response body is not a JSON object'));
  }
  const record = body as Record<string, unknown>;
  const expected = PATH_SHAPE[path];
  if (expected !== undefined && !Array.isArray(record[expected])) {
    const reason =
      record.error === undefined
        ? `has no "${expected}" array`
        : `carries an error: ${serverExcerpt(JSON.stringify(record.error), 200)}`;
    throw new AttemptFailure(badResponse(`status 200 but the body ${reason}`));
  }
  return record;
}

interface StreamedResult {
  streamed: true;
  id: string;
  body: unknown;
  usage: Usage | undefined;
  ttftAt: number | undefined;
}

/**
 * Reads a server-sent event stream as it arrives: each event through the assembler, each delta to
 * `onDelta`. Its idle timer runs from the headers to `close` and only real events reset it
 * (keep-alive comments do not); when it fires it aborts the attempt.
 */
class StreamReader implements BodyReader<StreamedResult> {
  readonly #assembler: StreamAssembler | ResponsesAssembler;
  readonly #parser: SseParser;
  readonly #idle: NodeJS.Timeout;
  /** A real event arrived in the chunk being read (comments do not count). */
  #heard = false;
  #ttftAt: number | undefined = undefined;

  constructor(
    config: EndpointConfig,
    request: Omit<WorkRequest, 'body'>,
    attempt: Attempt,
    onDelta: ((delta: StreamDelta) => void) | undefined,
  ) {
    const assembler =
      request.path === RESPONSES_PATH
        ? new ResponsesAssembler()
        : new StreamAssembler(request.path === '/completions' ? 'completion' : 'chat');
    this.#assembler = assembler;
    const idle = setTimeout(() => {
      attempt.abort(
        failure(ErrorCode.TIMEOUT, `stream idle for more than ${config.idleTimeoutMs} ms`, true),
      );
    }, config.idleTimeoutMs);
    this.#idle = idle;
    this.#parser = new SseParser(
      {
        onData: (data) => {
          this.#heard = true;
          if (data === '[DONE]') {
            // Some compatible servers end Responses API streams with it too; only the final event counts there.
            if (assembler instanceof StreamAssembler) assembler.sawDone = true;
            return;
          }
          const deltas = acceptEvent(assembler, data);
          if (deltas.length > 0) {
            this.#ttftAt ??= performance.now();
            if (onDelta !== undefined)
              for (const delta of deltas) onDelta({ id: request.id, ...delta });
          }
        },
      },
      // The stream's total size is capped by undici's `maxResponseSize`; events by the parser.
      config.maxResponseBytes,
    );
  }

  push(chunk: Buffer): boolean {
    sseLimited(() => this.#parser.push(chunk));
    // Once per chunk rather than per event: a refresh re-inserts the timer (1,000 times for a
    // 1,000-token answer).
    if (this.#heard) {
      this.#heard = false;
      this.#idle.refresh();
    }
    // The end of the answer: `[DONE]`, or a Responses API final event (nothing follows it).
    const assembler = this.#assembler;
    return assembler instanceof StreamAssembler ? assembler.sawDone : assembler.isComplete;
  }

  finish(): StreamedResult {
    sseLimited(() => this.#parser.end());
    const assembler = this.#assembler;
    if (!assembler.isComplete) {
      const expected =
        assembler instanceof StreamAssembler
          ? '[DONE] or a final finish_reason'
          : 'response.completed or response.incomplete';
      throw new AttemptFailure(
        failure(ErrorCode.TRUNCATED_STREAM, `stream ended without ${expected}`, true),
      );
    }
    const ttftAt = this.#ttftAt;
    if (assembler instanceof ResponsesAssembler)
      return {
        streamed: true,
        id: assembler.id,
        body: assembler.result(),
        usage: assembler.usage,
        ttftAt,
      };
    const result = assembler.result();
    return { streamed: true, id: result.id, body: result, usage: assembler.usage, ttftAt };
  }

  close(): void {
    clearTimeout(this.#idle);
  }
}

/** One SSE event's data through the assembler: its deltas, or an AttemptFailure naming what is wrong. */
function acceptEvent(
  assembler: StreamAssembler | ResponsesAssembler,
  data: string,
): ReturnType<StreamAssembler['accept']> {
  let chunk: unknown;
  try {
    chunk = JSON.parse(data);
  } catch {
    throw new AttemptFailure(
      badResponse(`stream event is not JSON: ${JSON.stringify(serverExcerpt(data, 80))}`),
    );
  }
  if (typeof chunk !== 'object' || chunk === null) {
    throw new AttemptFailure(badResponse('stream event is not a JSON object'));
  }
  if ('error' in chunk && !('choices' in chunk)) {
    const error = (chunk as { error: unknown }).error;
    throw new AttemptFailure(
      badResponse(`stream carried an error: ${serverExcerpt(JSON.stringify(error), 200)}`),
    );
  }
  try {
    return assembler.accept(chunk as Record<string, unknown>);
  } catch (error) {
    if (!(error instanceof ResponseStreamError)) throw error;
    throw new AttemptFailure(badResponse(serverExcerpt(error.message, 300)));
  }
}

/** Runs a parser step, turning its size limit into the attempt's RESPONSE_TOO_LARGE failure. */
function sseLimited(step: () => void): void {
  try {
    step();
  } catch (error) {
    if (error instanceof SseLimitError)
      throw new AttemptFailure(failure(ErrorCode.RESPONSE_TOO_LARGE, error.message, true));
    throw error;
  }
}
