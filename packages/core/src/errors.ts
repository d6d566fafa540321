/**
 * Coded errors. Every error Volley raises carries a stable string `code` (tests and callers branch
 * on it, never on message text), an optional `cause`, and the LLM details that decide what happens
 * next (`status`, `retryAfterMs`). They cross the worker-thread boundary through
 * `serializeError`/`deserializeError`, because structured clone (and comlink's default handler)
 * keeps only `message`, `name` and `stack`.
 */

export const ErrorCode = {
  /** Options failed validation at the edge. */
  INVALID_OPTIONS: 'VOLLEY_ERR_INVALID_OPTIONS',
  /** The endpoint answered with an HTTP status that is not success. */
  HTTP: 'VOLLEY_ERR_HTTP',
  /** 429 from the endpoint. */
  RATE_LIMITED: 'VOLLEY_ERR_RATE_LIMITED',
  /** 401/403: the key is wrong or lacks permission. Dispatch to that endpoint stops. */
  AUTH: 'VOLLEY_ERR_AUTH',
  /** The account has no quota left. Dispatch to that endpoint stops. */
  QUOTA: 'VOLLEY_ERR_QUOTA',
  /** Could not connect (refused, DNS, connect timeout). Nothing was sent. */
  CONNECT: 'VOLLEY_ERR_CONNECT',
  /** The request was sent, then the connection died before a complete response. */
  CONNECTION_LOST: 'VOLLEY_ERR_CONNECTION_LOST',
  /** A 200 whose body is not a usable response (HTML, empty, `{"error":..}`, bad JSON). */
  BAD_RESPONSE: 'VOLLEY_ERR_BAD_RESPONSE',
  /** An SSE stream that closed cleanly without `[DONE]` or a final `finish_reason`. */
  TRUNCATED_STREAM: 'VOLLEY_ERR_TRUNCATED_STREAM',
  /** The response exceeded the configured size cap. */
  RESPONSE_TOO_LARGE: 'VOLLEY_ERR_RESPONSE_TOO_LARGE',
  /** An attempt or the whole call ran out of time. */
  TIMEOUT: 'VOLLEY_ERR_TIMEOUT',
  /** The caller aborted (signal) or the runtime was destroyed. */
  ABORTED: 'VOLLEY_ERR_ABORTED',
  /** Retries ran out; `cause` is the last attempt's error. */
  RETRIES_EXHAUSTED: 'VOLLEY_ERR_RETRIES_EXHAUSTED',
  /** A worker thread died; past the restart budget this escalates to the caller. */
  WORKER_CRASHED: 'VOLLEY_ERR_WORKER_CRASHED',
  /** An actor's bounded mailbox is full. */
  MAILBOX_FULL: 'VOLLEY_ERR_MAILBOX_FULL',
  /** The actor (or the runtime) is stopped and takes no more work. */
  STOPPED: 'VOLLEY_ERR_STOPPED',
  /** Every endpoint that could serve the call has been stopped (auth, quota). */
  NO_ENDPOINT: 'VOLLEY_ERR_NO_ENDPOINT',
  /**
   * The endpoint cannot be reached (connection refused, DNS, TLS) or does not answer as an
   * OpenAI-compatible API, attempt after attempt; calls no other endpoint can take fail with it at
   * once, the last failure as `cause`. The endpoint is probed again later.
   */
  ENDPOINT_DOWN: 'VOLLEY_ERR_ENDPOINT_DOWN',
  /** The Redis of a cluster (shared limits) could not be reached at start. */
  CLUSTER_UNAVAILABLE: 'VOLLEY_ERR_CLUSTER_UNAVAILABLE',
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

const kVolleyError = Symbol.for('volley.error');

/** What a coded error can say beyond its code and message. Plain data: it crosses threads as is. */
export interface ErrorDetailFields {
  /** HTTP status of the response that caused the error, if any. */
  status?: number;
  /** How long the server asked us to wait before retrying, already parsed and capped. */
  retryAfterMs?: number;
  /** The server said not to retry (`x-should-retry: false`), or the error can never succeed. */
  retryable?: boolean;
  /** The request reached the server (so it may have been billed) before the failure. */
  sent?: boolean;
  /** The server's error `type`/`code` fields, e.g. `insufficient_quota`. */
  errorType?: string;
  /** Index of the endpoint that produced the error. */
  endpoint?: number;
  /** Attempts the call made before it failed (set on the error a call rejects with). */
  attempts?: number;
  /**
   * Whether the same request, sent again later (a `--resume`, a later run), could plausibly
   * succeed: the verdict of `isTransient`, set on the error a call rejects with.
   */
  transient?: boolean;
  /**
   * The answer is not an OpenAI-compatible API's (an HTML page, a 404/405/501 without the API's
   * JSON error): what came back, e.g. `501 text/html`. A wrong URL or server, not a bad request.
   */
  notApi?: string;
  /**
   * This machine ran out of something a connection needs (file descriptors, socket buffers,
   * local ports): the request never left, and the endpoint is not at fault.
   */
  localResource?: boolean;
}

/**
 * The detail fields, listed once: the class, `serializeError` and `deserializeError` all copy
 * exactly these, so adding a field is one edit here and one in the interface above.
 */
const DETAIL_KEYS = [
  'status',
  'retryAfterMs',
  'retryable',
  'sent',
  'errorType',
  'endpoint',
  'attempts',
  'transient',
  'notApi',
  'localResource',
] as const satisfies ReadonlyArray<keyof ErrorDetailFields>;

export interface VolleyErrorDetails extends ErrorDetailFields {
  cause?: unknown;
}

function copyDetails(from: ErrorDetailFields, to: ErrorDetailFields): void {
  for (const key of DETAIL_KEYS) {
    const value = from[key];
    if (value !== undefined) (to as Record<string, unknown>)[key] = value;
  }
}

/** The one base error. `instanceof` works across copies of the package (branded by a global symbol). */
export class VolleyError extends Error implements Readonly<ErrorDetailFields> {
  readonly code: ErrorCodeValue;
  declare readonly status?: number;
  declare readonly retryAfterMs?: number;
  declare readonly retryable?: boolean;
  declare readonly sent?: boolean;
  declare readonly errorType?: string;
  declare readonly endpoint?: number;
  declare readonly attempts?: number;
  declare readonly transient?: boolean;
  declare readonly notApi?: string;
  declare readonly localResource?: boolean;

  constructor(code: ErrorCodeValue, message: string, details: VolleyErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'VolleyError';
    this.code = code;
    copyDetails(details, this);
  }

  /** The same error with more details: a call's final error gets its own copy, never a shared one. */
  withDetails(details: ErrorDetailFields): VolleyError {
    const merged: VolleyErrorDetails = {};
    copyDetails(this, merged);
    copyDetails(details, merged);
    if (this.cause !== undefined) merged.cause = this.cause;
    const copy = new VolleyError(this.code, this.message, merged);
    if (this.stack !== undefined) copy.stack = this.stack;
    return copy;
  }

  get [kVolleyError](): true {
    return true;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[kVolleyError] === true
    );
  }
}

export function isVolleyError(value: unknown): value is VolleyError {
  return value instanceof VolleyError;
}

/** Plain, cloneable form of an error: what crosses threads and what batch error records hold. */
export interface SerializedError extends ErrorDetailFields {
  name: string;
  message: string;
  code?: string;
  stack?: string;
  cause?: SerializedError;
}

const MAX_CAUSE_DEPTH = 4;

export function serializeError(error: unknown, depth = 0): SerializedError {
  if (!(error instanceof Error)) {
    return { name: 'Error', message: typeof error === 'string' ? error : safeString(error) };
  }
  const out: SerializedError = { name: error.name, message: error.message };
  if (error.stack !== undefined) out.stack = error.stack;
  const coded = error as Error & { code?: unknown };
  if (typeof coded.code === 'string') out.code = coded.code;
  if (isVolleyError(error)) copyDetails(error, out);
  if (error.cause !== undefined && depth < MAX_CAUSE_DEPTH)
    out.cause = serializeError(error.cause, depth + 1);
  return out;
}

export function deserializeError(data: SerializedError): Error {
  const cause = data.cause === undefined ? undefined : deserializeError(data.cause);
  let error: Error;
  if (data.code?.startsWith('VOLLEY_ERR_')) {
    const details: VolleyErrorDetails = {};
    if (cause !== undefined) details.cause = cause;
    copyDetails(data, details);
    error = new VolleyError(data.code as ErrorCodeValue, data.message, details);
  } else {
    error = new Error(data.message, cause === undefined ? undefined : { cause });
    error.name = data.name;
    if (data.code !== undefined) (error as Error & { code: string }).code = data.code;
  }
  if (data.stack !== undefined) error.stack = data.stack;
  return error;
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return 'non-error thrown';
  }
}
