/**
 * Turning what went wrong on the wire into coded errors. Only facts are recorded here (status,
 * server hints, whether the request had left); what to do about them is decided in one place,
 * `classifyFailure` in @volley/core.
 */
import type { HeaderMap, SerializedError } from '@volley/core';
import {
  ErrorCode,
  headerValue,
  parseRetryAfterMs,
  scrubSecrets,
  serializeError,
  VolleyError,
} from '@volley/core';

/** Longest excerpt of a server's error body kept in a message, when the body is not the API's JSON. */
const MESSAGE_EXCERPT_CHARS = 500;

/** Longest message from the API's JSON error kept (whole in practice; bounded against abuse). */
const SERVER_MESSAGE_CHARS = 16 * 1024;

/**
 * What may be kept of a server's text: secrets scrubbed from the whole text first, then cut. Cut
 * first, a key echoed across the cut would lose its tail and no longer match (most of it leaked).
 */
export function serverExcerpt(text: string, maxChars: number): string {
  return scrubSecrets(text).slice(0, maxChars);
}

interface ErrorEnvelope {
  error?: { message?: unknown; type?: unknown; code?: unknown } | string;
  message?: unknown;
}

/** Reads `{"error":{"message","type","code"}}` (or the looser shapes local servers use). */
export function readErrorEnvelope(text: string): {
  message: string | undefined;
  type: string | undefined;
  /** The body is a JSON object, as every OpenAI-compatible server's errors are. */
  json: boolean;
} {
  let body: ErrorEnvelope;
  try {
    body = JSON.parse(text) as ErrorEnvelope;
  } catch {
    return { message: undefined, type: undefined, json: false };
  }
  if (typeof body !== 'object' || body === null)
    return { message: undefined, type: undefined, json: false };
  if (typeof body.error === 'string') return { message: body.error, type: undefined, json: true };
  const message = body.error?.message ?? body.message;
  const code = body.error?.code;
  const type =
    typeof code === 'string'
      ? code
      : typeof body.error?.type === 'string'
        ? body.error.type
        : undefined;
  return { message: typeof message === 'string' ? message : undefined, type, json: true };
}

/** Statuses a web server gives a POST to a path it does not serve. */
const NOT_SERVED_STATUS = new Set([404, 405, 501]);

/**
 * What came back, when it is not an OpenAI-compatible API's answer: a page (HTML) with a status up
 * to 400 (a web site, a redirect, "plain HTTP sent to an HTTPS port"), or "not served here" without
 * the API's JSON error. Pages with other statuses are left alone: gateways in front of real APIs
 * answer 401, 429 and 5xx with pages of their own. `undefined` when it may well be the API.
 */
export function notApiAnswer(
  status: number,
  headers: HeaderMap,
  isJson: boolean,
): string | undefined {
  if (isJson) return undefined;
  const contentType = headerValue(headers, 'content-type')?.split(';')[0]?.trim();
  const page = contentType === 'text/html' && status <= 400;
  if (!page && !NOT_SERVED_STATUS.has(status)) return undefined;
  return `${status} ${contentType || 'without a content type'}`;
}

/** A non-2xx response. */
export function httpFailure(status: number, headers: HeaderMap, text: string): SerializedError {
  const { message, type, json } = readErrorEnvelope(text);
  const notApi = notApiAnswer(status, headers, json);
  const detail = (
    message === undefined
      ? serverExcerpt(text, MESSAGE_EXCERPT_CHARS)
      : serverExcerpt(message, SERVER_MESSAGE_CHARS)
  )
    .replace(/\s+/g, ' ')
    .trim();
  const retryAfterMs = parseRetryAfterMs(headers);
  const shouldRetry = headerValue(headers, 'x-should-retry');
  let code: VolleyError['code'] = ErrorCode.HTTP;
  if (type === 'insufficient_quota') code = ErrorCode.QUOTA;
  else if (status === 429) code = ErrorCode.RATE_LIMITED;
  else if (status === 401 || status === 403) code = ErrorCode.AUTH;
  const error = new VolleyError(code, `HTTP ${status}${detail === '' ? '' : `: ${detail}`}`, {
    status,
    sent: true,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    ...(type === undefined ? {} : { errorType: type }),
    ...(shouldRetry === 'false' ? { retryable: false } : {}),
    ...(notApi === undefined ? {} : { notApi }),
  });
  return withoutStack(serializeError(error));
}

/**
 * A 2xx whose body is unusable: the server answered, but not with a result. `notApi` says what
 * came back when it is plainly not the API (a page where JSON was due).
 */
export function badResponse(message: string, cause?: unknown, notApi?: string): SerializedError {
  return withoutStack(
    serializeError(
      new VolleyError(ErrorCode.BAD_RESPONSE, scrubSecrets(message), {
        sent: true,
        cause,
        ...(notApi === undefined ? {} : { notApi }),
      }),
    ),
  );
}

export function failure(
  code: VolleyError['code'],
  message: string,
  sent: boolean,
  cause?: unknown,
): SerializedError {
  return withoutStack(
    serializeError(new VolleyError(code, scrubSecrets(message), { sent, cause })),
  );
}

/** Connect-phase errors, in the words a user would search for. */
const CONNECT_CODES = new Map([
  ['ECONNREFUSED', 'connection refused'],
  ['ENOTFOUND', 'host not found (DNS)'],
  ['EAI_AGAIN', 'host name lookup failed (DNS)'],
  ['EHOSTUNREACH', 'host unreachable'],
  ['ENETUNREACH', 'network unreachable'],
  ['UND_ERR_CONNECT_TIMEOUT', 'connect timed out'],
]);

/** TLS handshake failures: a certificate that does not verify, or TLS spoken to a plain port. */
function isTlsFailure(code: string): boolean {
  return (
    code.startsWith('ERR_TLS_') ||
    code.startsWith('ERR_SSL_') ||
    code.includes('CERT') ||
    code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' ||
    code === 'EPROTO'
  );
}

/**
 * This machine ran out of something a new connection needs: file descriptors, socket buffers,
 * local ports. The request never left, and the endpoint is not at fault: waiting (fewer sockets
 * open) or a lower concurrency helps, so it is retried with backoff and never counted as billed.
 * Seen: `ulimit -n 256` with `-c 300` failed 588 lines and claimed 4,529 extra billed calls.
 */
const LOCAL_RESOURCE_CODES = new Map([
  [
    'EMFILE',
    'too many open files on this machine (EMFILE): lower --concurrency or raise ulimit -n',
  ],
  [
    'ENFILE',
    'too many open files on this machine, system-wide (ENFILE): lower --concurrency or raise the system limit (fs.file-max)',
  ],
  ['ENOBUFS', 'out of socket buffers on this machine (ENOBUFS): lower --concurrency'],
  [
    'EADDRNOTAVAIL',
    'no free local port on this machine (EADDRNOTAVAIL): lower --concurrency, or let closed connections leave TIME_WAIT',
  ],
]);

/** Syscalls on a connected socket: a failure there may come after the request left. */
const SENDING_SYSCALLS = new Set(['write', 'writev', 'read']);

/** The phrase for a local resource error at connect (nothing sent), or `undefined`. */
function localResourcePhrase(error: unknown): string | undefined {
  const { code, syscall } = error as { code?: unknown; syscall?: unknown };
  if (typeof code !== 'string') return undefined;
  if (typeof syscall === 'string' && SENDING_SYSCALLS.has(syscall)) return undefined;
  return LOCAL_RESOURCE_CODES.get(code);
}

function connectPhrase(code: unknown): string | undefined {
  if (typeof code !== 'string') return undefined;
  return CONNECT_CODES.get(code) ?? (isTlsFailure(code) ? 'TLS handshake failed' : undefined);
}

/**
 * A transport error from undici. Connect-phase errors mean nothing was sent, as do local resource
 * errors at connect (EMFILE and kin); anything later is ambiguous (the server may have processed
 * the request).
 */
export function transportFailure(error: unknown, phase: 'headers' | 'body'): SerializedError {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  const local = localResourcePhrase(error);
  if (local !== undefined) {
    // CONNECTION_LOST with sent: false, not CONNECT: CONNECT counts towards marking the endpoint
    // down (isUnreachable), and the endpoint is fine; this machine is what ran out, which
    // `localResource` tells the circuit breaker (isEndpointFault).
    return {
      ...failure(ErrorCode.CONNECTION_LOST, `not sent: ${local}`, false, error),
      localResource: true,
    };
  }
  const phrase = connectPhrase(code);
  if (phrase !== undefined) {
    return failure(ErrorCode.CONNECT, `could not connect: ${phrase} (${message})`, false, error);
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT') {
    return failure(
      ErrorCode.TIMEOUT,
      'no response headers within the headers timeout',
      true,
      error,
    );
  }
  if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') {
    return failure(ErrorCode.RESPONSE_TOO_LARGE, 'response exceeded the size cap', true, error);
  }
  if (code === 'UND_ERR_BODY_TIMEOUT') {
    return failure(ErrorCode.TIMEOUT, 'response body stalled past the idle timeout', true, error);
  }
  const where = phase === 'headers' ? 'before the response' : 'during the response body';
  return failure(ErrorCode.CONNECTION_LOST, `connection lost ${where}: ${message}`, true, error);
}

/** Stacks from the worker thread say nothing useful to the caller and cost clone time. */
function withoutStack(error: SerializedError): SerializedError {
  delete error.stack;
  if (error.cause !== undefined) delete error.cause.stack;
  return error;
}
