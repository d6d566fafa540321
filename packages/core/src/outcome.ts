/**
 * Outcome classification: the one table that says what a failed attempt means. Workers turn wire
 * events into coded errors; this decides what the supervisor does with them.
 *
 * | code                          | class          | why                                             |
 * |-------------------------------|----------------|-------------------------------------------------|
 * | RATE_LIMITED (429)            | retry          | honour retry-after; the lane cools down         |
 * | HTTP 408/409/5xx/529          | retry          | transient by contract                           |
 * | HTTP with x-should-retry:false| fatal          | the server said so                              |
 * | HTTP 400/404/422, other 4xx   | fatal          | the same request can never succeed              |
 * | AUTH (401/403), QUOTA         | stop-endpoint  | every request to that endpoint would fail       |
 * | CONNECT                       | retry          | nothing was sent                                |
 * | any answer with `notApi`      | retry          | the URL or server is wrong, not the request     |
 * | CONNECTION_LOST, TIMEOUT sent | ambiguous      | may have been processed and billed              |
 * | TRUNCATED_STREAM, BAD_RESPONSE| retry          | the server answered, but not completely         |
 * | WORKER_CRASHED                | ambiguous      | we cannot know whether it was sent              |
 * | RESPONSE_TOO_LARGE, ABORTED   | fatal          | retrying returns the same, or nobody wants it   |
 */
import type { SerializedError } from './errors.js';
import { ErrorCode } from './errors.js';

/** The facts about a failure that decide what it means; a `VolleyError` and a `SerializedError` both have them. */
export type FailureFacts = Pick<
  SerializedError,
  'code' | 'status' | 'retryable' | 'sent' | 'notApi' | 'localResource'
>;

export type OutcomeClass = 'retry' | 'ambiguous' | 'fatal' | 'stop-endpoint';

/** Statuses that say "not now" rather than "not this request": the only such list in Volley. */
const TRANSIENT_STATUS = new Set([408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529]);

function isTransientStatus(status: number | undefined): boolean {
  return status !== undefined && (TRANSIENT_STATUS.has(status) || status >= 500);
}

export function classifyFailure(error: FailureFacts): OutcomeClass {
  // Whatever the status says, it came from something that is not the API: the request is not at fault.
  if (error.notApi !== undefined) return 'retry';
  if (error.retryable === false)
    return error.code === ErrorCode.AUTH || error.code === ErrorCode.QUOTA
      ? 'stop-endpoint'
      : 'fatal';
  switch (error.code) {
    case ErrorCode.AUTH:
    case ErrorCode.QUOTA:
      return 'stop-endpoint';
    case ErrorCode.RATE_LIMITED:
    case ErrorCode.CONNECT:
    case ErrorCode.TRUNCATED_STREAM:
    case ErrorCode.BAD_RESPONSE:
      return 'retry';
    case ErrorCode.CONNECTION_LOST:
    case ErrorCode.WORKER_CRASHED:
      return error.sent === false ? 'retry' : 'ambiguous';
    case ErrorCode.TIMEOUT:
      // Unknown counts as sent, as in mayHaveBeenBilled: the two must agree.
      return error.sent === false ? 'retry' : 'ambiguous';
    case ErrorCode.HTTP:
      return isTransientStatus(error.status) ? 'retry' : 'fatal';
    default:
      return 'fatal';
  }
}

/**
 * Whether a failed attempt may have been billed: the server did (or may have done) the work but
 * we could not use the result. Summed into the run's "extra billed calls".
 */
export function mayHaveBeenBilled(error: FailureFacts): boolean {
  switch (error.code) {
    case ErrorCode.CONNECTION_LOST:
    case ErrorCode.WORKER_CRASHED:
    case ErrorCode.TIMEOUT:
      return error.sent !== false;
    case ErrorCode.TRUNCATED_STREAM:
    case ErrorCode.BAD_RESPONSE:
      return true;
    default:
      return false;
  }
}

/**
 * Whether a failure says the endpoint itself is unwell, for its circuit breaker: server errors,
 * connections that fail or die, garbage and truncated answers. Not the request's fault (4xx), not
 * pacing (429), not ours (a crashed worker, a caller's abort).
 */
export function isEndpointFault(error: FailureFacts): boolean {
  if (error.notApi !== undefined) return true;
  // This machine ran out of sockets or files: opening the circuit would stop a healthy endpoint.
  if (error.localResource === true) return false;
  switch (error.code) {
    case ErrorCode.CONNECT:
    case ErrorCode.CONNECTION_LOST:
    case ErrorCode.TIMEOUT:
    case ErrorCode.BAD_RESPONSE:
    case ErrorCode.TRUNCATED_STREAM:
      return true;
    case ErrorCode.HTTP:
      return error.status !== undefined && error.status >= 500;
    default:
      return false;
  }
}

/**
 * Whether a call's final failure could go differently if the same request were sent again later
 * (by `--resume`, or a later run): everything that is about the moment (429, 5xx, timeouts,
 * connections, a crashed worker), about the endpoint (a key or quota that can be fixed, every
 * endpoint down) or about this run (aborted, stopped). Not a failure that is about the request
 * itself (400, 404, 422, a response too large): sending it again gives the same answer.
 *
 * The supervisor stamps the verdict on the error a call rejects with (`error.transient`), so
 * callers never re-derive it.
 */
export function isTransient(error: FailureFacts): boolean {
  if (error.notApi !== undefined) return true;
  if (error.retryable === false) return false;
  switch (error.code) {
    // Retries are made only for transient failures, so running out of them is transient too.
    case ErrorCode.RETRIES_EXHAUSTED:
    case ErrorCode.RATE_LIMITED:
    case ErrorCode.CONNECT:
    case ErrorCode.CONNECTION_LOST:
    case ErrorCode.TRUNCATED_STREAM:
    case ErrorCode.BAD_RESPONSE:
    case ErrorCode.TIMEOUT:
    case ErrorCode.WORKER_CRASHED:
    case ErrorCode.AUTH:
    case ErrorCode.QUOTA:
    case ErrorCode.NO_ENDPOINT:
    case ErrorCode.ENDPOINT_DOWN:
    case ErrorCode.ABORTED:
    case ErrorCode.STOPPED:
      return true;
    case ErrorCode.HTTP:
      return isTransientStatus(error.status);
    default:
      return false;
  }
}

/**
 * Whether a failure says the endpoint cannot be used at all: nothing answers at its address
 * (refused, DNS, TLS, connect timeout), or what answers is not an OpenAI-compatible API. A few of
 * these in a row, with nothing else in between, mark the endpoint down (see EndpointHealth).
 */
export function isUnreachable(error: FailureFacts): boolean {
  return error.code === ErrorCode.CONNECT || error.notApi !== undefined;
}

/** Statuses with which a server refuses what a request contains (bad input, too large, unprocessable). */
const REFUSED_CONTENT_STATUS = new Set([400, 413, 422]);

/**
 * Whether the server refused the request for what it contains, so that a smaller request (one
 * input of a refused embeddings batch) may pass where the whole did not.
 */
export function isRefusedContent(error: FailureFacts): boolean {
  return (
    error.code === ErrorCode.HTTP &&
    error.status !== undefined &&
    REFUSED_CONTENT_STATUS.has(error.status)
  );
}
