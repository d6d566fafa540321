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
 * | CONNECTION_LOST, TIMEOUT sent | ambiguous      | may have been processed and billed              |
 * | TRUNCATED_STREAM, BAD_RESPONSE| retry          | the server answered, but not completely         |
 * | WORKER_CRASHED                | ambiguous      | we cannot know whether it was sent              |
 * | RESPONSE_TOO_LARGE, ABORTED   | fatal          | retrying returns the same, or nobody wants it   |
 */
import type { SerializedError } from './errors.js';
import { ErrorCode } from './errors.js';

export type OutcomeClass = 'retry' | 'ambiguous' | 'fatal' | 'stop-endpoint';

const RETRYABLE_STATUS = new Set([408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529]);

export function classifyFailure(error: SerializedError): OutcomeClass {
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
      return error.status !== undefined &&
        (RETRYABLE_STATUS.has(error.status) || error.status >= 500)
        ? 'retry'
        : 'fatal';
    default:
      return 'fatal';
  }
}

/**
 * Whether a failed attempt may have been billed: the server did (or may have done) the work but
 * we could not use the result. Summed into the run's "extra billed calls".
 */
export function mayHaveBeenBilled(error: SerializedError): boolean {
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
export function isEndpointFault(error: SerializedError): boolean {
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
