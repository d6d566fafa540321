/**
 * Turning what went wrong on the wire into coded errors. Only facts are recorded here (status,
 * server hints, whether the request had left); what to do about them is decided in one place,
 * `classifyFailure` in @volley/core.
 */
import type { HeaderMap, SerializedError } from '@volley/core';
import {
  ErrorCode,
  parseRetryAfterMs,
  scrubSecrets,
  serializeError,
  VolleyError,
} from '@volley/core';

/** Longest excerpt of a server's error body kept in a message. */
const MESSAGE_EXCERPT_CHARS = 500;

interface ErrorEnvelope {
  error?: { message?: unknown; type?: unknown; code?: unknown } | string;
  message?: unknown;
}

function headerValue(headers: HeaderMap, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Reads `{"error":{"message","type","code"}}` (or the looser shapes local servers use). */
export function readErrorEnvelope(text: string): {
  message: string | undefined;
  type: string | undefined;
} {
  try {
    const body = JSON.parse(text) as ErrorEnvelope;
    if (typeof body.error === 'string') return { message: body.error, type: undefined };
    const message = body.error?.message ?? body.message;
    const code = body.error?.code;
    const type =
      typeof code === 'string'
        ? code
        : typeof body.error?.type === 'string'
          ? body.error.type
          : undefined;
    return { message: typeof message === 'string' ? message : undefined, type };
  } catch {
    return { message: undefined, type: undefined };
  }
}

/** A non-2xx response. */
export function httpFailure(status: number, headers: HeaderMap, text: string): SerializedError {
  const { message, type } = readErrorEnvelope(text);
  const detail = scrubSecrets(message ?? text.slice(0, MESSAGE_EXCERPT_CHARS))
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
  });
  return withoutStack(serializeError(error));
}

/** A 2xx whose body is unusable: the server answered, but not with a result. */
export function badResponse(message: string, cause?: unknown): SerializedError {
  return withoutStack(
    serializeError(
      new VolleyError(ErrorCode.BAD_RESPONSE, scrubSecrets(message), { sent: true, cause }),
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

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * A transport error from undici. Connect-phase errors mean nothing was sent; anything later is
 * ambiguous (the server may have processed the request).
 */
export function transportFailure(error: unknown, phase: 'headers' | 'body'): SerializedError {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code === 'string' && CONNECT_CODES.has(code)) {
    return failure(ErrorCode.CONNECT, `could not connect: ${message}`, false, error);
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
