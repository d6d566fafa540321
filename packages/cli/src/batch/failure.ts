/**
 * What a failed call means for its input line, decided here once for every pass that sends
 * lines: `volley run` (run/batch-run.ts), each sample of a line under `--samples`
 * (run/samples/sampler.ts) and `volley embed` (embed/embed-pass.ts).
 *
 *   failure ─► belongs to the run, not the line? ─► no record; the line stays pending (--resume)
 *                   (no endpoint left, the runtime stopped, or aborted while the run stops)
 *          └─► otherwise ─► an error record; `retryable` says whether --resume sends it again,
 *                           which is core's verdict (`error.transient`, stamped on the final error)
 *
 * The CLI keeps no status list of its own: what is transient, and what a server refused for its
 * content, are decided in @volley/core (outcome.ts).
 */

import { isTransient } from '@volley/core';
import { ErrorCode, isVolleyError } from 'volley';
import type { CliErrorCode } from '../codes.js';

/** A call failed because no endpoint could take it: its line stays pending for `--resume`. */
export function failedForLackOfEndpoint(code: string): boolean {
  return code === ErrorCode.NO_ENDPOINT || code === ErrorCode.ENDPOINT_DOWN;
}

/**
 * True when a failure belongs to the run, not to the line, so the line gets no record and stays
 * pending: every endpoint gone (stopped for auth or quota, or down), the runtime stopped, or the
 * call aborted while the run is stopping (an interrupt, a failed write, `--stop-after-same-error`).
 *
 * @example
 * if (leavesLinePending(error, this.#shouldStop())) this.#leftPending++;
 * else writeErrorRecord(failureDetails(error));
 */
export function leavesLinePending(error: unknown, runStopping: boolean): boolean {
  if (!isVolleyError(error)) return false;
  return (
    failedForLackOfEndpoint(error.code) ||
    error.code === ErrorCode.STOPPED ||
    (error.code === ErrorCode.ABORTED && runStopping)
  );
}

/**
 * Whether `--resume` should send a failed line again: the failure was transient. The runtime
 * stamps its verdict on the error a call rejects with; errors from elsewhere are judged by the
 * same rule (`isTransient`).
 */
export function isRetryable(error: unknown): boolean {
  if (!isVolleyError(error)) return false;
  return error.transient ?? isTransient(error);
}

/** What an error record says about a failed call. */
export interface FailureDetails {
  code: string;
  message: string;
  /** The HTTP status, or the first one found among its causes. */
  status: number | undefined;
  /** Attempts the call made (the runtime counts them on the final error). */
  attempts: number | undefined;
  retryable: boolean;
  /** The server's own error type (`invalid_request_error`, ...). */
  serverCode: string | undefined;
}

/** The fields of a failed call's error record, from the error the call rejected with. */
export function failureDetails(error: unknown): FailureDetails {
  const coded = isVolleyError(error) ? error : undefined;
  return {
    code: coded?.code ?? ('VOLLEY_ERR_INTERNAL' satisfies CliErrorCode),
    message: error instanceof Error ? error.message : String(error),
    status: coded === undefined ? undefined : (coded.status ?? firstStatus(coded)),
    attempts: coded?.attempts,
    retryable: isRetryable(error),
    serverCode: coded?.errorType,
  };
}

/** An HTTP status carried by a cause (a wrapped failure), a few levels deep at most. */
function firstStatus(error: Error): number | undefined {
  let cause: unknown = error.cause;
  for (let depth = 0; depth < 4 && cause instanceof Error; depth++) {
    const status = (cause as { status?: unknown }).status;
    if (typeof status === 'number') return status;
    cause = cause.cause;
  }
  return undefined;
}
