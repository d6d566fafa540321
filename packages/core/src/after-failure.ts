/**
 * What happens after a failed attempt: a pure function of the failure, the call's counts, the
 * policy, the time and a random draw. It returns a decision as data, and the supervisor carries
 * it out (like an xstate transition, which records effects instead of running them), so every
 * rule below is testable without a runtime.
 *
 * | failure                                  | next                                   | counts against            |
 * |------------------------------------------|----------------------------------------|---------------------------|
 * | 503 from a slot-limited endpoint         | requeue (+ lane cool-down)             | nothing: backpressure     |
 * | 429                                      | retry after max(backoff, retry-after)  | only the deadline         |
 * |                                          |   (+ lane cool-down)                   |                           |
 * | auth / quota (stop-endpoint)             | requeue, endpoint stopped              | nothing                   |
 * | fatal (400, 404, x-should-retry: false…) | fail                                   |                           |
 * | retry (5xx, connect, truncated…)         | retry after backoff                    | maxRetries                |
 * | unreachable (connect, not the API)       | as retry; a few rounds mark the        | maxRetries                |
 * |                                          |   endpoint down (EndpointHealth)       |                           |
 * | ambiguous (sent, then lost)              | retry after backoff                    | maxRetries and the        |
 * |                                          |                                        |   ambiguous budget        |
 * | a retry that would end past the deadline | fail with TIMEOUT (cause: the failure) |                           |
 */
import type { BackoffPolicy } from './backoff.js';
import { capServerWaitMs, retryDelayMs } from './backoff.js';
import type { SerializedError } from './errors.js';
import { deserializeError, ErrorCode, VolleyError } from './errors.js';
import { classifyFailure, isEndpointFault, isUnreachable, mayHaveBeenBilled } from './outcome.js';

export interface RetryPolicy {
  /** Retries after failures; 429s and backpressure do not count (the deadline bounds them). */
  maxRetries: number;
  /** Separate, small budget for attempts that may have been processed (sent, then lost). */
  maxAmbiguousRetries: number;
  backoff: BackoffPolicy;
  /** Longest wait a server's `retry-after` (or a cool-down) may impose. */
  retryAfterCapMs: number;
}

/** What the decision needs to know about the call. */
export interface CallCounts {
  /** Attempts made, the failed one included. */
  attempts: number;
  /** Failures counted against `maxRetries` before this one. */
  failures: number;
  /** Ambiguous failures before this one. */
  ambiguousAttempts: number;
  deadlineAt: number;
  /** Total budget of the call, for the timeout message. */
  timeoutMs: number;
}

export type Next =
  /** The call fails with this error. */
  | { do: 'fail'; error: VolleyError }
  /** Back to the head of the line without using up an attempt. */
  | { do: 'requeue' }
  /** Another attempt after `delayMs`. */
  | { do: 'retry'; delayMs: number; ambiguous: boolean };

export interface AfterFailure {
  next: Next;
  /** The failure as the caller will see it (the endpoint index added). */
  error: VolleyError;
  /** Cool the lane down for this long before anyone else is admitted (a 429, slot backpressure). */
  cooldownMs?: number;
  /** What the failure says about the endpoint: unwell (circuit breaker), stop it for good, or nothing. */
  endpoint: 'fault' | 'stop' | 'fine';
  /**
   * Whether the attempt reached an OpenAI-compatible API: it answered as one (an HTTP error with
   * the API's JSON, a 429), it did not (`isUnreachable`: nothing or something else answers), or
   * unknown (lost, timed out, a crashed worker).
   */
  reached: 'api' | 'not-api' | 'unknown';
  /** Why the server refused to take the attempt now, if it did: counted and reported apart. */
  pacing?: 'rate-limited' | 'backpressure';
  /** This attempt may have been processed and billed although its result is not used. */
  billed: boolean;
  /** The failure uses up one of `maxRetries` (the supervisor adds it to the call's count). */
  countsAsFailure: boolean;
  /** The failure uses up one of `maxAmbiguousRetries`. */
  countsAsAmbiguous: boolean;
  /** The attempt's estimated tokens were not spent: the lane gets them back. */
  refundTokens: boolean;
}

export interface FailureContext {
  failure: SerializedError;
  endpoint: number;
  /** The endpoint is a local server with a fixed number of slots: its 503 is backpressure. */
  slotLimited: boolean;
  call: CallCounts;
  policy: RetryPolicy;
  now: number;
  /** A number in [0, 1), for the backoff's jitter. */
  random: number;
}

export function afterFailure(context: FailureContext): AfterFailure {
  const { failure, call, policy } = context;
  const error = deserializeError({ ...failure, endpoint: context.endpoint }) as VolleyError;
  const verdict = classifyFailure(failure);
  const rateLimited = failure.code === ErrorCode.RATE_LIMITED;
  const backpressure = failure.status === 503 && context.slotLimited;
  const decision: AfterFailure = {
    next: { do: 'requeue' },
    error,
    endpoint:
      verdict === 'stop-endpoint'
        ? 'stop'
        : isEndpointFault(failure) && !backpressure
          ? 'fault'
          : 'fine',
    reached: isUnreachable(failure) ? 'not-api' : failure.status !== undefined ? 'api' : 'unknown',
    billed: false,
    countsAsFailure: false,
    countsAsAmbiguous: false,
    // Unsent and refused (429) attempts cost the server nothing; other sent ones may have been
    // counted, so they keep their reservation.
    refundTokens: failure.sent === false || rateLimited,
  };
  if (rateLimited || backpressure) {
    // Only the lane that answered cools down; every call waiting on it waits with this one.
    decision.cooldownMs = capServerWaitMs(
      failure.retryAfterMs ?? policy.backoff.baseDelayMs,
      policy.retryAfterCapMs,
    );
    decision.pacing = rateLimited ? 'rate-limited' : 'backpressure';
    // Backpressure is not a failure of the call: it waits its turn again, bounded only by its deadline.
    if (backpressure) return decision;
  }
  switch (verdict) {
    case 'fatal':
      decision.next = { do: 'fail', error };
      return decision;
    case 'stop-endpoint':
      // The call itself is not at fault: it goes back to wait for another endpoint.
      return decision;
    case 'retry':
    case 'ambiguous': {
      const ambiguous = verdict === 'ambiguous';
      decision.billed = mayHaveBeenBilled(failure);
      decision.countsAsAmbiguous = ambiguous;
      // A 429 is the server pacing us, not the request failing: only the deadline bounds it.
      decision.countsAsFailure = !rateLimited;
      if (
        (ambiguous && call.ambiguousAttempts + 1 > policy.maxAmbiguousRetries) ||
        (decision.countsAsFailure && call.failures + 1 > policy.maxRetries)
      ) {
        decision.next = { do: 'fail', error: exhausted(call.attempts, error) };
        return decision;
      }
      const delayMs = retryDelayMs(
        call.attempts - 1,
        policy.backoff,
        context.random,
        failure.retryAfterMs,
        policy.retryAfterCapMs,
      );
      decision.next =
        context.now + delayMs >= call.deadlineAt
          ? { do: 'fail', error: timeoutError(call.timeoutMs, error) }
          : { do: 'retry', delayMs, ambiguous };
      return decision;
    }
  }
}

export function exhausted(attempts: number, cause: VolleyError): VolleyError {
  return new VolleyError(
    ErrorCode.RETRIES_EXHAUSTED,
    `gave up after ${attempts} attempts: ${cause.message}`,
    { cause, ...(cause.status === undefined ? {} : { status: cause.status }) },
  );
}

export function timeoutError(budgetMs: number, cause?: Error): VolleyError {
  return new VolleyError(
    ErrorCode.TIMEOUT,
    `call did not complete within ${budgetMs} ms`,
    cause ? { cause } : {},
  );
}
