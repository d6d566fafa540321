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
import { ErrorCode, parseRateLimitHeaders, registerSecret, scrubSecrets } from '@volley/core';
import type { Dispatcher } from 'undici';
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
 * The abort handle undici watches for one attempt. undici takes an EventEmitter-like object as
 * `signal` (its documented alternative to AbortSignal: it checks for `on`, then calls `once` and
 * `removeListener`); one costs far less to make than an AbortController (`createAbortSignal`
 * alone was 5.6% of the CPU profile at 12k requests/s), and this one less than an EventEmitter,
 * whose `once` wraps every listener in a bound closure. `abort` fires at most once, so `on` and
 * `once` are the same here. Listeners: undici's, and the LargeAnswerGate's while it waits.
 */
class Attempt {
  /** Read by undici when the request starts. */
  aborted = false;
  /** Why we aborted, if we did: distinguishes our timeout from the caller's cancel. */
  reason: SerializedError | undefined = undefined;
  headersAt = 0;
  #listeners: Array<() => void> | undefined = undefined;

  once(_event: 'abort', listener: () => void): this {
    // A literal array holds just the one listener undici adds; `push` on an empty one reserves 17.
    if (this.#listeners === undefined) this.#listeners = [listener];
    else this.#listeners.push(listener);
    return this;
  }

  on(event: 'abort', listener: () => void): this {
    return this.once(event, listener);
  }

  off(_event: 'abort', listener: () => void): this {
    const listeners = this.#listeners;
    const at = listeners === undefined ? -1 : listeners.lastIndexOf(listener);
    if (at !== -1) listeners?.splice(at, 1);
    return this;
  }

  removeListener(event: 'abort', listener: () => void): this {
    return this.off(event, listener);
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

async function run(
  client: EndpointClient,
  gate: LargeAnswerGate,
  request: Omit<WorkRequest, 'body'>,
  wire: string | Uint8Array,
  attempt: Attempt,
  onDelta: ((delta: StreamDelta) => void) | undefined,
): Promise<WorkOutcome> {
  const started = performance.now();
  const response = await client.pool.request({
    method: 'POST',
    path: client.pathFor(request.path),
    headers: client.headers,
    body: wire,
    signal: attempt,
    headersTimeout: Math.min(client.config.headersTimeoutMs, request.timeoutMs),
    // SSE idleness is judged by our own timer (comments must not count); JSON by undici's.
    bodyTimeout: request.stream ? 0 : client.config.idleTimeoutMs,
  });
  attempt.headersAt = performance.now();
  const { statusCode, headers } = response;
  const rateLimit = parseRateLimitHeaders(headers);

  if (statusCode < 200 || statusCode >= 300) {
    // Redirects land here too: they are never followed, credentials must not travel elsewhere.
    const text = await readErrorText(response.body);
    const failed: WorkOutcome = {
      id: request.id,
      ok: false,
      error: httpFailure(statusCode, headers, text),
    };
    if (rateLimit !== undefined) failed.rateLimit = rateLimit;
    return failed;
  }

  const contentType = headerValue(headers, 'content-type') ?? '';
  if (request.stream && contentType.includes('text/event-stream')) {
    const streamed = await readStream(
      client.config,
      gate,
      request,
      response.body,
      attempt,
      onDelta,
    );
    return {
      id: request.id,
      ok: true,
      status: statusCode,
      requestId: requestIdOf(headers, streamed.id),
      ...(request.raw ? { bodyText: JSON.stringify(streamed.body) } : { body: streamed.body }),
      ...(streamed.usage === undefined ? {} : { usage: streamed.usage }),
      ...(rateLimit === undefined ? {} : { rateLimit }),
      timing: {
        latencyMs: performance.now() - started,
        headersMs: attempt.headersAt - started,
        ...(streamed.ttftAt === undefined ? {} : { ttftMs: streamed.ttftAt - started }),
      },
    };
  }

  // The size cap is undici's `maxResponseSize` on the pool (UND_ERR_RES_EXCEEDED_MAX_SIZE).
  let text: string | undefined;
  let body: Record<string, unknown>;
  let embeddings: EmbeddingMatrix | undefined;
  if (request.embeddings === 'vectors' && !request.raw) {
    // base64 vectors are parsed from the bytes, never as one big string (embeddings.ts).
    ({ body, embeddings } = await readBody(response.body, gate, attempt, (bytes) => {
      const parsed =
        parseEmbeddingsBody(bytes) ??
        parseJsonBody(bodyText(bytes), request.path, statusCode, headers);
      return { body: parsed, embeddings: takeVectors(parsed) };
    }));
  } else {
    text = await readBody(response.body, gate, attempt, utf8);
    body = parseJsonBody(text, request.path, statusCode, headers);
    if (request.embeddings === 'vectors') embeddings = takeVectors(body);
  }
  const success: WorkSuccess = {
    id: request.id,
    ok: true,
    status: statusCode,
    requestId: requestIdOf(headers, typeof body.id === 'string' ? body.id : ''),
    timing: { latencyMs: performance.now() - started, headersMs: attempt.headersAt - started },
  };
  if (rateLimit !== undefined) success.rateLimit = rateLimit;
  const usage = usageOf(body.usage);
  if (usage !== undefined) success.usage = usage;
  if (embeddings !== undefined) success.embeddings = embeddings;
  if (request.raw && text !== undefined) success.bodyText = text;
  else success.body = body;
  return success;
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

function utf8(bytes: Buffer): string {
  return bytes.toString('utf8');
}

/**
 * Reads a body to its end and passes its bytes, contiguous, to `use` within the same turn: they
 * may live in the shared scratch buffer, so `use` must copy whatever it keeps (parsing does).
 */
function readBody<T>(
  body: Dispatcher.ResponseData['body'],
  gate: LargeAnswerGate,
  attempt: Attempt,
  use: (bytes: Buffer) => T,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    let ended = false;
    let large: LargeAnswerReader | undefined;
    body.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length > LARGE_ANSWER_BYTES && large === undefined) {
        large = new LargeAnswerReader(gate, attempt);
        body.pause();
        large.wait().then(
          () => body.resume(),
          (error: unknown) => body.destroy(error as Error),
        );
      }
    });
    // `on`, not `once`: each of these fires once anyway, and `once` wraps its listener in a
    // bound closure and a state object, for every body.
    body.on('end', () => {
      ended = true;
      large?.done();
      try {
        resolve(use(gather(chunks, length)));
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
    body.on('error', (error) => {
      large?.done();
      reject(error);
    });
    // 'close' follows 'end' too; only a body destroyed without an error would otherwise hang.
    body.on('close', () => {
      large?.done();
      if (!ended) reject(new Error('response body closed before its end'));
    });
  });
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

function headerValue(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Enough of an error body for its message; the rest is not worth reading. */
const ERROR_BODY_BYTES = 64 * 1024;

async function readErrorText(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= ERROR_BODY_BYTES) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
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
  id: string;
  body: unknown;
  usage: Usage | undefined;
  ttftAt: number | undefined;
}

async function readStream(
  config: EndpointConfig,
  gate: LargeAnswerGate,
  request: Omit<WorkRequest, 'body'>,
  body: Dispatcher.ResponseData['body'],
  attempt: Attempt,
  onDelta: ((delta: StreamDelta) => void) | undefined,
): Promise<StreamedResult> {
  const assembler =
    request.path === RESPONSES_PATH
      ? new ResponsesAssembler()
      : new StreamAssembler(request.path === '/completions' ? 'completion' : 'chat');
  let ttftAt: number | undefined;
  const idle = setTimeout(() => {
    attempt.abort(
      failure(ErrorCode.TIMEOUT, `stream idle for more than ${config.idleTimeoutMs} ms`, true),
    );
  }, config.idleTimeoutMs);
  const parser = new SseParser(
    {
      onData(data) {
        idle.refresh();
        if (data === '[DONE]') {
          // Some compatible servers end Responses API streams with it too; only the final event counts there.
          if (assembler instanceof StreamAssembler) assembler.sawDone = true;
          return;
        }
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
        let deltas: ReturnType<typeof assembler.accept>;
        try {
          deltas = assembler.accept(chunk as Record<string, unknown>);
        } catch (error) {
          if (!(error instanceof ResponseStreamError)) throw error;
          throw new AttemptFailure(badResponse(serverExcerpt(error.message, 300)));
        }
        if (deltas.length > 0) {
          ttftAt ??= performance.now();
          if (onDelta !== undefined)
            for (const delta of deltas) onDelta({ id: request.id, ...delta });
        }
      },
    },
    config.maxResponseBytes,
  );
  let large: LargeAnswerReader | undefined;
  try {
    // The stream's total size is capped by undici's `maxResponseSize`; events by the parser.
    let seen = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      parser.push(chunk);
      // The end of the answer: `[DONE]`, or a Responses API final event (nothing follows it).
      if (assembler instanceof StreamAssembler ? assembler.sawDone : assembler.isComplete) break;
      seen += chunk.length;
      if (seen > LARGE_ANSWER_BYTES && large === undefined) {
        large = new LargeAnswerReader(gate, attempt);
        await large.wait();
      }
    }
    parser.end();
  } catch (error) {
    body.destroy();
    if (error instanceof SseLimitError) {
      throw new AttemptFailure(failure(ErrorCode.RESPONSE_TOO_LARGE, error.message, true));
    }
    throw error;
  } finally {
    large?.done();
    clearTimeout(idle);
  }
  if (!assembler.isComplete) {
    const expected =
      assembler instanceof StreamAssembler
        ? '[DONE] or a final finish_reason'
        : 'response.completed or response.incomplete';
    throw new AttemptFailure(
      failure(ErrorCode.TRUNCATED_STREAM, `stream ended without ${expected}`, true),
    );
  }
  if (assembler instanceof ResponsesAssembler)
    return { id: assembler.id, body: assembler.result(), usage: assembler.usage, ttftAt };
  const result = assembler.result();
  return { id: result.id, body: result, usage: assembler.usage, ttftAt };
}
