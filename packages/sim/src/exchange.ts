/**
 * One request's response on the wire: headers, pacing, and what every fault kind does to the
 * bytes. server.ts decides what to answer; this file decides how it is written.
 *
 * Every delay runs on `exchange.timer` (or `interval`), which the server clears when the
 * connection closes, so a client that leaves or a `close()` never leaves a timer behind.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';

import type { EngineListener, Sequence } from './engine.js';
import type { FaultKind } from './faults.js';
import type { ResolvedOptions } from './options.js';
import type { Random } from './random.js';
import type { RateLimiter } from './rate-limit.js';
import type { MutableLogEntry, SimStats } from './request-log.js';
import { type AnswerKind, errorJson } from './responses.js';

/** What an exchange reads from its server; read on every use because `setOptions` swaps them. */
export interface ExchangeContext {
  readonly options: ResolvedOptions;
  readonly limiter: RateLimiter | undefined;
  readonly stats: SimStats;
}

/** Kinds that change how a real answer is delivered; every other kind replaces the answer. */
const DELIVERY_FAULTS = [
  'slow-headers',
  'slow-body',
  'reset-mid-body',
  'reset-mid-stream',
  'truncate-stream',
  'stall-stream',
  'bad-json-event',
  'huge-sse-line',
] as const satisfies readonly FaultKind[];

type DeliveryFaultKind = (typeof DELIVERY_FAULTS)[number];
const DELIVERY_SET = new Set<FaultKind>(DELIVERY_FAULTS);

/** A delivery fault with its parameters filled in. */
export interface DeliveryFault {
  kind: DeliveryFaultKind;
  slowMs: number;
  keepaliveMs: number;
}

/** Whether `kind` alters delivery (as opposed to replacing the answer). */
export function isDeliveryFault(kind: FaultKind): kind is DeliveryFaultKind {
  return DELIVERY_SET.has(kind);
}

/** The response header (JSON) and SSE comment (streams) carrying an engine-timed answer's truth. */
export const TIMING_HEADER = 'x-volley-sim-timing';

const JSON_TYPE = 'application/json';
const SSE_TYPE = 'text/event-stream; charset=utf-8';

// [status, type, code, message], modelled on what OpenAI (and, for 529, overloaded gateways) send.
const STATUS_FAULTS = {
  'status-429': [429, 'requests', 'rate_limit_exceeded', 'Rate limit reached for requests.'],
  'status-500': [
    500,
    'server_error',
    null,
    'The server had an error while processing your request.',
  ],
  'status-502': [502, 'server_error', null, 'Bad gateway.'],
  'status-503': [503, 'server_error', null, 'The server is overloaded or not ready yet.'],
  'status-504': [504, 'server_error', null, 'Gateway timeout.'],
  'status-529': [529, 'overloaded_error', null, 'Overloaded'],
  'status-400-context-length': [
    400,
    'invalid_request_error',
    'context_length_exceeded',
    "This model's maximum context length is 128000 tokens. Please reduce the length of the messages.",
  ],
  'status-401': [401, 'invalid_request_error', 'invalid_api_key', 'Incorrect API key provided.'],
  'status-403': [403, 'invalid_request_error', 'permission_denied', 'Not allowed.'],
  'status-404': [404, 'invalid_request_error', 'model_not_found', 'The model does not exist.'],
  'status-422': [422, 'invalid_request_error', 'unprocessable_entity', 'Unprocessable request.'],
  'insufficient-quota': [
    429,
    'insufficient_quota',
    'insufficient_quota',
    'You exceeded your current quota, please check your plan and billing details.',
  ],
  'should-not-retry': [500, 'server_error', null, 'The server had an error.'],
} as const satisfies Partial<Record<FaultKind, readonly [number, string, string | null, string]>>;

type StatusFaultKind = keyof typeof STATUS_FAULTS;

/** Kinds answered with a canned response instead of the real answer. */
export type AnswerFaultKind = Exclude<FaultKind, DeliveryFaultKind>;

function isStatusFault(kind: AnswerFaultKind): kind is StatusFaultKind {
  return Object.hasOwn(STATUS_FAULTS, kind);
}

const HTML_BODY =
  '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n' +
  '<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';
const ERROR_200_BODY = errorJson('The server had an error.', 'server_error', null, null);
const BAD_JSON_EVENT = 'data: {"id":"broken","choices":[{"delta":{"content":"unterminated\n\n';
const HUGE_LINE_BYTES = 10 * 1024 * 1024;
let hugeText: string | undefined;

/** 10 MB of padding, built once on first use and shared. */
function padding(): string {
  hugeText ??= 'x'.repeat(HUGE_LINE_BYTES);
  return hugeText;
}

/** A valid, empty chunk padded past 10 MB: a client must either buffer it or fail cleanly. */
function hugeEvent(kind: AnswerKind): string {
  const chunk =
    kind === 'chat'
      ? '"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":""},"finish_reason":null}]'
      : kind === 'completion'
        ? '"object":"text_completion","choices":[{"text":"","index":0,"finish_reason":null}]'
        : '"type":"response.output_text.delta","output_index":0,"content_index":0,"delta":""';
  return `data: {"id":"huge","created":0,"model":"volley-sim",${chunk},"padding":"${padding()}"}\n\n`;
}

/** One request in flight and the response being written for it. */
export class Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly entry: MutableLogEntry;
  readonly #context: ExchangeContext;
  timer: NodeJS.Timeout | undefined = undefined;
  interval: NodeJS.Timeout | undefined = undefined;
  /** Seeded per request (from seed and seq) when faults or jitter need randomness. */
  random: Random | undefined = undefined;
  fault: DeliveryFault | undefined = undefined;
  /** Generation and embeddings routes carry `x-ratelimit-*` headers. */
  limited = false;
  /** A reset we caused is a fault, not a client abort. */
  resetByServer = false;
  /** When the request arrived, on the engine's clock (performance.now). */
  readonly arrivedAt = performance.now();
  /** The engine sequence answering this request, when the engine times it. */
  sequence: Sequence | undefined = undefined;
  /** The engine truth a JSON answer's headers carry. */
  #timing: string | undefined = undefined;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    entry: MutableLogEntry,
    context: ExchangeContext,
  ) {
    this.req = req;
    this.res = res;
    this.entry = entry;
    this.#context = context;
  }

  /** A complete response in one write. */
  send(
    status: number,
    type: string,
    body: string,
    model?: string,
    extra?: readonly string[],
  ): void {
    const headers = this.#headers(type, model);
    if (extra !== undefined) headers.push(...extra);
    headers.push('content-length', String(Buffer.byteLength(body)));
    this.#writeHead(status, headers);
    this.res.end(body);
  }

  /** An OpenAI error envelope. */
  error(
    status: number,
    message: string,
    type: string,
    code: string | null,
    param: string | null = null,
    extra?: readonly string[],
  ): void {
    this.send(status, JSON_TYPE, errorJson(message, type, param, code), undefined, extra);
  }

  /** Answers with a fault that replaces the response. */
  answerWithFault(kind: AnswerFaultKind, retryAfterMs: number): void {
    if (isStatusFault(kind)) {
      const [status, type, code, message] = STATUS_FAULTS[kind];
      if (kind === 'status-429') this.entry.retryAfterMs = Math.ceil(retryAfterMs);
      const extra =
        kind === 'status-429'
          ? [
              'retry-after',
              String(Math.ceil(retryAfterMs / 1000)),
              'retry-after-ms',
              String(Math.ceil(retryAfterMs)),
            ]
          : kind === 'should-not-retry'
            ? ['x-should-retry', 'false']
            : undefined;
      this.error(
        status,
        message,
        type,
        code,
        kind === 'status-400-context-length' ? 'messages' : null,
        extra,
      );
      return;
    }
    switch (kind) {
      case 'reset-before-headers':
        this.reset();
        return;
      case 'html-200':
        this.send(200, 'text/html', HTML_BODY);
        return;
      case 'empty-200':
        this.send(200, JSON_TYPE, '');
        return;
      case 'error-200':
        // Mid-stream errors arrive as an SSE event, so a streaming request gets one.
        if (this.entry.stream) this.send(200, SSE_TYPE, `data: ${ERROR_200_BODY}\n\n`);
        else this.send(200, JSON_TYPE, ERROR_200_BODY);
        return;
      case 'redirect':
        // The target does not exist: a client that follows redirects shows up as a 404 in the log.
        this.send(307, JSON_TYPE, '', undefined, ['location', `/redirected${this.entry.path}`]);
        return;
    }
  }

  /** A 200 JSON answer after the headers delay plus `generationMs`. */
  deliverJson(body: string, model: string | undefined, generationMs: number): void {
    const delayMs = this.#headersDelayMs() + generationMs;
    if (delayMs > 0) this.timer = setTimeout(() => this.#sendJson(body, model), delayMs);
    else this.#sendJson(body, model);
  }

  /** An SSE answer (frames from `streamFrames`) after the headers delay, paced by tokens per second. */
  deliverStream(frames: string[], steps: number, kind: AnswerKind, model: string): void {
    const delayMs = this.#headersDelayMs();
    if (delayMs > 0)
      this.timer = setTimeout(() => this.#stream(frames, steps, kind, model), delayMs);
    else this.#stream(frames, steps, kind, model);
  }

  /** A TCP reset (RST, not FIN): the client sees ECONNRESET, the ambiguous case. */
  reset(): void {
    this.resetByServer = true;
    if (this.entry.status === 0) this.#count(0);
    const socket = this.req.socket;
    if (!socket.destroyed) socket.resetAndDestroy();
  }

  #headersDelayMs(): number {
    const { headersSampler, headersMs } = this.#context.options;
    const base =
      headersSampler !== undefined && this.random !== undefined
        ? headersSampler(this.random)
        : headersMs;
    return this.fault?.kind === 'slow-headers' ? base + this.fault.slowMs : base;
  }

  /** The JSON answer, or its delivery fault (stream-only kinds get their JSON analogue). */
  #sendJson(body: string, model: string | undefined): void {
    const fault = this.fault;
    switch (fault?.kind) {
      case undefined:
      case 'slow-headers':
        this.send(200, JSON_TYPE, body, model);
        return;
      case 'bad-json-event':
        // A trailing comma: the body looks complete and fails to parse.
        this.send(200, JSON_TYPE, `${body.slice(0, -1)},}`, model);
        return;
      case 'huge-sse-line':
        this.send(200, JSON_TYPE, `{"padding":"${padding()}",${body.slice(1)}`, model);
        return;
      case 'reset-mid-body':
      case 'reset-mid-stream':
      case 'truncate-stream':
      case 'stall-stream':
      case 'slow-body':
        this.#sendHalfJson(fault.kind, fault.slowMs, Buffer.from(body), model);
    }
  }

  /** Sends the first half of the body, then ends, resets, stalls or pauses as the fault says. */
  #sendHalfJson(kind: HalfBodyKind, slowMs: number, body: Buffer, model: string | undefined): void {
    const { res } = this;
    const headers = this.#headers(JSON_TYPE, model);
    // truncate-stream ends cleanly, so it must be chunked: a content-length would give it away.
    if (kind !== 'truncate-stream') headers.push('content-length', String(body.length));
    this.#writeHead(200, headers);
    const half = body.subarray(0, body.length >> 1);
    switch (kind) {
      case 'truncate-stream':
        res.end(half);
        return;
      case 'stall-stream':
        res.write(half);
        return;
      case 'slow-body':
        res.write(half);
        this.timer = setTimeout(() => res.end(body.subarray(half.length)), slowMs);
        return;
      case 'reset-mid-body':
      case 'reset-mid-stream':
        res.write(half, () => this.reset());
    }
  }

  /**
   * Writes SSE frames paced by tokens per second. Frames already due are coalesced into one write,
   * so a late timer never turns into a burst of tiny writes, and an unpaced stream is a single
   * write with no timer at all. Faults cut the frames at the middle token or drop the tail.
   */
  #stream(frames: string[], steps: number, kind: AnswerKind, model: string): void {
    const { res, fault } = this;
    const { tokensPerSecond, interTokenJitter } = this.#context.options;
    const { ending, pauseAt } = this.#applyStreamFault(frames, steps, kind);
    this.#writeSseHead(model);

    const gapMs = tokensPerSecond > 0 ? 1000 / tokensPerSecond : 0;
    const random = this.random;
    const gapBefore = (frame: number): number => {
      let gap = 0;
      if (gapMs > 0 && frame >= 1 && frame <= steps) {
        gap =
          interTokenJitter > 0 && random !== undefined
            ? gapMs * (1 + interTokenJitter * (2 * random() - 1))
            : gapMs;
      }
      return frame === pauseAt && fault !== undefined ? gap + fault.slowMs : gap;
    };
    const start = gapMs > 0 || pauseAt >= 0 ? performance.now() : 0;
    let next = 0;
    let due = 0;
    const pump = (): void => {
      this.timer = undefined;
      const elapsed = due > 0 ? performance.now() - start : 0;
      let chunk = '';
      while (next < frames.length && due <= elapsed) {
        chunk += frames[next];
        next++;
        if (next < frames.length) due += gapBefore(next);
      }
      if (next < frames.length) {
        res.write(chunk);
        this.timer = setTimeout(pump, due - elapsed);
      } else {
        this.#endStream(chunk, ending);
      }
    };
    pump();
  }

  /**
   * Cuts `frames` (in place) as this exchange's delivery fault says: at the middle token for
   * resets and stalls, without the tail for truncation, or with a bad or huge event in front of
   * the first token. Returns how the stream ends and the frame a `slow-body` pause comes before.
   */
  #applyStreamFault(frames: string[], steps: number, kind: AnswerKind): StreamPlan {
    const middle = 1 + (steps >> 1);
    switch (this.fault?.kind) {
      case undefined:
      case 'slow-headers':
        break;
      case 'reset-mid-stream':
      case 'reset-mid-body':
        frames.length = middle;
        return { ending: 'reset', pauseAt: -1 };
      case 'stall-stream':
        frames.length = middle;
        return { ending: 'stall', pauseAt: -1 };
      case 'truncate-stream':
        frames.length = steps + 1;
        break;
      case 'slow-body':
        return { ending: 'end', pauseAt: middle };
      case 'bad-json-event':
        frames[1] = BAD_JSON_EVENT + frames[1];
        break;
      case 'huge-sse-line':
        frames[1] = hugeEvent(kind) + frames[1];
        break;
    }
    return { ending: 'end', pauseAt: -1 };
  }

  #writeSseHead(model: string): void {
    const headers = this.#headers(SSE_TYPE, model);
    headers.push('cache-control', 'no-cache');
    this.#writeHead(200, headers);
  }

  /** Writes the last frames, then ends, resets or stalls (with `: ping` keep-alives if asked). */
  #endStream(chunk: string, ending: StreamEnding): void {
    const { res } = this;
    if (ending === 'end') {
      res.end(chunk);
    } else if (ending === 'reset') {
      res.write(chunk, () => this.reset());
    } else {
      res.write(chunk);
      const keepaliveMs = this.fault?.keepaliveMs ?? 0;
      if (keepaliveMs > 0) this.interval = setInterval(() => res.write(': ping\n\n'), keepaliveMs);
    }
  }

  /**
   * The JSON answer of an engine-timed request, sent when its last token is decoded (after a
   * `slow-headers` pause), with the engine's truth in `x-volley-sim-timing`.
   */
  engineJson(body: string, model: string): EngineListener {
    const send = (): void => {
      this.timer = undefined;
      this.#timing = this.#recordTiming();
      this.#sendJson(body, model);
    };
    return {
      onTokens: noop,
      onDone: () => {
        const fault = this.fault;
        if (fault?.kind === 'slow-headers') this.timer = setTimeout(send, fault.slowMs);
        else send();
      },
    };
  }

  /**
   * An engine-timed SSE answer: headers at once, then each token's frame as the engine decodes it
   * (the chat `role` event goes with the first token, as vLLM sends it), and the engine's truth as
   * the comment `: x-volley-sim-timing {...}` just before `data: [DONE]`. Delivery faults cut or
   * pause the frames as they do for `latency` streams; a pause holds frames back while the engine
   * keeps decoding, and the held frames go out together.
   */
  engineStream(frames: string[], steps: number, kind: AnswerKind, model: string): EngineListener {
    const plan = this.#applyStreamFault(frames, steps, kind);
    const { ending } = plan;
    let { pauseAt } = plan;
    const fault = this.fault;
    const tail = steps + 1;
    let headersSent = false;
    let written = 0;
    let ready = 0;
    let holdUntil = fault?.kind === 'slow-headers' ? performance.now() + fault.slowMs : 0;
    const flush = (): void => {
      this.timer = undefined;
      if (written === frames.length) return;
      const now = performance.now();
      if (now < holdUntil) {
        this.timer ??= setTimeout(flush, Math.ceil(holdUntil - now));
        return;
      }
      const opening = !headersSent;
      if (opening) {
        headersSent = true;
        this.#writeSseHead(model);
      }
      let chunk = '';
      while (written < ready) {
        if (written === pauseAt) {
          pauseAt = -1;
          holdUntil = now + (fault?.slowMs ?? 0);
          this.timer = setTimeout(flush, Math.ceil(fault?.slowMs ?? 0));
          break;
        }
        chunk += written === tail ? this.#withTiming(frames[tail]!) : frames[written]!;
        written++;
      }
      if (written === frames.length) {
        // A fault cut the tail off: the truth is what was written, as of the last frame.
        if (written <= tail) this.entry.engine = this.sequence?.timing(now);
        this.#endStream(chunk, ending);
      } else if (chunk !== '') {
        this.res.write(chunk);
      } else if (opening) {
        // Node holds headers back until the first body write; a queued request gets them now.
        this.res.flushHeaders();
      }
    };
    if (holdUntil === 0) flush();
    else this.timer = setTimeout(flush, fault?.slowMs ?? 0);
    return {
      onTokens: (decoded) => {
        // Frames 0..decoded: the opening events travel with the first token.
        ready = Math.min(frames.length, decoded + 1);
        if (this.timer === undefined) flush();
      },
      onDone: () => {
        ready = frames.length;
        if (this.timer === undefined) flush();
      },
    };
  }

  /**
   * The tail frame with the truth comment before its last event: `data: [DONE]` for chat and
   * completions, `response.completed` for the Responses API.
   */
  #withTiming(tailFrame: string): string {
    const timing = this.#recordTiming();
    const previous = tailFrame.lastIndexOf('\n\n', tailFrame.length - 3);
    const last = previous === -1 ? 0 : previous + 2;
    return `${tailFrame.slice(0, last)}: ${TIMING_HEADER} ${timing}\n\n${tailFrame.slice(last)}`;
  }

  /** Records this answer's engine truth in the log, as of now, and returns it as JSON. */
  #recordTiming(): string {
    const timing = this.sequence?.timing(performance.now());
    this.entry.engine = timing;
    return JSON.stringify(timing);
  }

  /** Headers every answer carries, as the flat array `writeHead` takes without building an object. */
  #headers(type: string, model: string | undefined): string[] {
    const { options, limiter } = this.#context;
    const now = options.clock();
    const headers = [
      'content-type',
      type,
      'x-request-id',
      this.entry.requestId,
      'openai-processing-ms',
      String(Math.round(now - this.entry.receivedAt)),
    ];
    if (model !== undefined) headers.push('openai-model', model);
    if (this.limited && limiter !== undefined) limiter.appendHeaders(headers, now);
    if (this.#timing !== undefined) headers.push(TIMING_HEADER, this.#timing);
    return headers;
  }

  #writeHead(status: number, headers: string[]): void {
    this.entry.status = status;
    this.entry.headersSentAt = this.#context.options.clock();
    this.#count(status);
    this.res.writeHead(status, STATUS_CODES[status] ?? 'Site Overloaded', headers);
  }

  #count(status: number): void {
    const { byStatus } = this.#context.stats;
    byStatus[status] = (byStatus[status] ?? 0) + 1;
  }
}

type StreamEnding = 'end' | 'reset' | 'stall';

/** How a stream's frames end and where a `slow-body` pause goes (-1: none). */
interface StreamPlan {
  ending: StreamEnding;
  pauseAt: number;
}

function noop(): void {}

/** Delivery faults whose JSON analogue sends half the body and then misbehaves. */
type HalfBodyKind =
  | 'reset-mid-body'
  | 'reset-mid-stream'
  | 'truncate-stream'
  | 'stall-stream'
  | 'slow-body';
