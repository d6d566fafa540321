/**
 * OpenTelemetry tracing through `@opentelemetry/api` only: one CLIENT span per call, named and
 * attributed after the GenAI semantic conventions (`gen_ai.*`), with the call's life as events
 * (rate-limit waits, the hand-off to the executor, each attempt's outcome, retries).
 *
 * An application that registers no SDK gets the API's no-op tracer: `start` then costs one
 * non-recording span and returns `undefined`, and every later hook returns on its first line.
 * Attributes are only built for spans that record.
 *
 * Nothing here reads request messages or headers: spans carry models, counts, codes and the
 * endpoint's address, never a prompt, an answer or a key.
 */
import type { Attributes, Span, SpanOptions } from '@opentelemetry/api';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { VolleyError } from './errors.js';
import { scrubSecrets } from './logger.js';
import type { Usage } from './protocol/openai.js';
import { ENDPOINT_PATHS } from './protocol/openai.js';

const TRACER_NAME = 'volley';
const TRACER_VERSION = '0.1.0';

/** A proxy tracer: an SDK registered after Volley was loaded is still picked up. */
const tracer = trace.getTracer(TRACER_NAME, TRACER_VERSION);
const CLIENT_SPAN: SpanOptions = { kind: SpanKind.CLIENT };

/** `gen_ai.operation.name` for each path Volley calls. */
function operationOf(path: string): string {
  switch (path) {
    case ENDPOINT_PATHS.chat:
      return 'chat';
    case ENDPOINT_PATHS.embedding:
      return 'embeddings';
    case ENDPOINT_PATHS.completion:
      return 'text_completion';
    default:
      return path;
  }
}

/**
 * The endpoint's `server.*` and provider attributes, from its base URL (which never holds
 * credentials). Every OpenAI-compatible server speaks OpenAI's API, so the provider is `openai`
 * except on Azure OpenAI.
 */
function endpointAttributes(baseUrl: string): EndpointAttributes {
  if (!URL.canParse(baseUrl)) return { server: {}, provider: {} };
  const url = new URL(baseUrl);
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  const provider = url.hostname.endsWith('.openai.azure.com') ? 'azure.ai.openai' : 'openai';
  return {
    server: { 'server.address': url.hostname, 'server.port': port },
    // `gen_ai.system` is the attribute's name before semantic conventions 1.37; backends still use it.
    provider: { 'gen_ai.provider.name': provider, 'gen_ai.system': provider },
  };
}

interface EndpointAttributes {
  server: Attributes;
  provider: Attributes;
}

/** The supervisor's tracing hooks: each takes the call's span, `undefined` when nothing records. */
export class CallTracing {
  readonly #endpoints: EndpointAttributes[];
  readonly #mode: string | undefined;

  constructor(endpointLabels: readonly string[], mode: string | undefined) {
    this.#endpoints = endpointLabels.map(endpointAttributes);
    this.#mode = mode;
  }

  /** Starts the call's span as a child of the caller's active context. */
  start(callId: number, path: string, body: Record<string, unknown>): Span | undefined {
    const operation = operationOf(path);
    const span = tracer.startSpan(operation, CLIENT_SPAN);
    if (!span.isRecording()) return undefined;
    const model = body.model;
    if (typeof model === 'string') {
      span.updateName(`${operation} ${model}`);
      span.setAttribute('gen_ai.request.model', model);
    }
    span.setAttribute('gen_ai.operation.name', operation);
    span.setAttribute('volley.call.id', callId);
    if (this.#mode !== undefined) span.setAttribute('volley.mode', this.#mode);
    setNumber(span, 'gen_ai.request.max_tokens', body.max_tokens ?? body.max_completion_tokens);
    setNumber(span, 'gen_ai.request.temperature', body.temperature);
    setNumber(span, 'gen_ai.request.top_p', body.top_p);
    return span;
  }

  /** Capacity came after a wait on the endpoint's rate limits. */
  waited(span: Span | undefined, waitedMs: number): void {
    if (span === undefined || waitedMs <= 0) return;
    span.addEvent('volley.rate_limit.wait', { 'volley.wait_ms': waitedMs });
  }

  /** The attempt is handed to its executor: a worker thread in `threads` mode, this loop in `async`. */
  dispatched(span: Span | undefined, endpoint: number, attempt: number): void {
    if (span === undefined) return;
    // On the span, the last attempt's endpoint; on the event, each attempt's (retries may move).
    const attributes = this.#endpoints[endpoint];
    if (attributes === undefined) return;
    span.setAttributes(attributes.provider);
    span.setAttributes(attributes.server);
    span.addEvent('volley.dispatch', { ...attributes.server, 'volley.attempt': attempt });
  }

  /** The attempt's outcome is back; its HTTP time, against the dispatch event, shows the hop. */
  attemptEnded(span: Span | undefined, attempt: number, ok: boolean, latencyMs?: number): void {
    // The call may have ended (aborted, timed out) while this attempt was on the wire.
    if (span === undefined || !span.isRecording()) return;
    const attributes: Attributes = { 'volley.attempt': attempt, 'volley.ok': ok };
    if (latencyMs !== undefined) attributes['volley.latency_ms'] = latencyMs;
    span.addEvent('volley.attempt', attributes);
  }

  /** A 429: the endpoint cools down. */
  rateLimited(span: Span | undefined, retryAfterMs: number | undefined): void {
    if (span === undefined) return;
    span.addEvent(
      'volley.rate_limited',
      retryAfterMs === undefined ? {} : { 'volley.retry_after_ms': retryAfterMs },
    );
  }

  retry(span: Span | undefined, attempt: number, delayMs: number, error: VolleyError): void {
    if (span === undefined) return;
    const attributes: Attributes = {
      'volley.attempt': attempt,
      'volley.retry.delay_ms': delayMs,
      'error.type': error.code,
    };
    if (error.status !== undefined) attributes['http.response.status_code'] = error.status;
    span.addEvent('volley.retry', attributes);
  }

  succeeded(
    span: Span | undefined,
    status: number,
    answer: unknown,
    usage: Usage | undefined,
  ): void {
    if (span === undefined) return;
    // Undefined for raw answers (batch files): parsing them again only for a span is not worth it.
    const body = answer as ResponseBody | undefined;
    if (typeof body?.model === 'string') span.setAttribute('gen_ai.response.model', body.model);
    if (typeof body?.id === 'string') span.setAttribute('gen_ai.response.id', body.id);
    if (Array.isArray(body?.choices)) {
      const reasons: string[] = [];
      for (const choice of body.choices) {
        const reason = (choice as { finish_reason?: unknown } | null)?.finish_reason;
        if (typeof reason === 'string') reasons.push(reason);
      }
      if (reasons.length > 0) span.setAttribute('gen_ai.response.finish_reasons', reasons);
    }
    if (usage !== undefined) {
      span.setAttribute('gen_ai.usage.input_tokens', usage.prompt_tokens);
      setNumber(span, 'gen_ai.usage.output_tokens', usage.completion_tokens);
    }
    span.setAttribute('http.response.status_code', status);
    span.end();
  }

  failed(span: Span | undefined, error: Error): void {
    if (span === undefined) return;
    span.setAttribute('error.type', errorType(error));
    if (error instanceof VolleyError && error.status !== undefined)
      span.setAttribute('http.response.status_code', error.status);
    // Messages can quote a server's answer, which may echo a key back.
    span.setStatus({ code: SpanStatusCode.ERROR, message: scrubSecrets(error.message) });
    span.end();
  }
}

interface ResponseBody {
  id?: unknown;
  model?: unknown;
  choices?: unknown[];
}

function setNumber(span: Span, key: string, value: unknown): void {
  if (typeof value === 'number' && Number.isFinite(value)) span.setAttribute(key, value);
}

/**
 * Runs `fn` inside a new active span, so every call it makes is that span's child: how a pattern
 * (`fanOut`, `vote`...) shows as one parent with its calls. A no-op span without an SDK. What `fn`
 * throws synchronously (invalid options) is still thrown synchronously.
 */
export function withSpan<T>(
  name: string,
  attributes: Attributes,
  fn: () => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(name, (span) => {
    if (span.isRecording()) span.setAttributes(attributes);
    let running: Promise<T>;
    try {
      running = fn();
    } catch (error) {
      endFailed(span, error);
      throw error;
    }
    return running.then(
      (value) => {
        span.end();
        return value;
      },
      (error: unknown) => {
        endFailed(span, error);
        throw error;
      },
    );
  });
}

function endFailed(span: Span, error: unknown): void {
  if (span.isRecording()) {
    span.setAttribute('error.type', errorType(error));
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.end();
}

/** `error.type`: a coded error's code (Volley's, a pattern's), else the error's class name. */
function errorType(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.name : 'Error';
}
