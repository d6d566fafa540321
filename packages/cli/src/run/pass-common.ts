/**
 * What the sending passes of `volley run` and `volley embed` do alike: their reaction to stop
 * signals and to a failed write, and the runtime's share of their progress and summary.
 */

import { isTransient } from '@volley/core';
import type { Volley, VolleyError } from 'volley';
import { ErrorCode, isVolleyError } from 'volley';
import type { ProgressReporter, ProgressSnapshot, RunSummary } from '../progress.js';
import type { StopSignal } from './signals.js';

/** What a pass hands to the shared reactions. */
export interface PassRuntime {
  volley: Volley;
  progress: ProgressReporter;
}

/**
 * Endpoints going out of use, each said once on stderr: stopped for good (auth, quota) or down
 * (nothing, or not the API, at the address). `onOut` gets a one-line reason and whether any
 * endpoint is left to send to.
 */
export function watchEndpoints(
  pass: PassRuntime,
  onOut: (event: { reason: string; kind: 'stopped' | 'down'; allOut: boolean }) => void,
): void {
  const { volley, progress } = pass;
  const report = (endpoint: number, error: VolleyError, kind: 'stopped' | 'down'): void => {
    progress.log(`endpoint ${endpoint} ${kind}: ${error.message}`);
    // A down endpoint's message names its address already.
    const reason =
      kind === 'down' ? error.message : `${volley.endpoints[endpoint]}: ${error.message}`;
    onOut({ reason, kind, allOut: allEndpointsOut(volley) });
  };
  volley.on('endpointStopped', ({ endpoint, error }) => report(endpoint, error, 'stopped'));
  volley.on('endpointDown', ({ endpoint, error }) => report(endpoint, error, 'down'));
}

/** No endpoint is left to send to: every one is stopped or down. */
export function allEndpointsOut(volley: Volley): boolean {
  return volley.stats().byEndpoint.every((endpoint) => endpoint.stopped || endpoint.down);
}

/** A call failed because no endpoint could take it: its line stays pending for `--resume`. */
export function failedForLackOfEndpoint(code: string): boolean {
  return code === ErrorCode.NO_ENDPOINT || code === ErrorCode.ENDPOINT_DOWN;
}

/** How often a drain checks whether anything is still on the wire. */
const IDLE_CHECK_MS = 50;

/**
 * First signal: `stopReading`, then give the requests in flight `graceMs` before aborting them
 * (they stay pending). A second signal aborts at once. Returns what cancels the drain's timers.
 */
export function onStopSignal(
  pass: PassRuntime & { graceMs: number },
  signal: StopSignal,
  count: number,
  stopReading: () => void,
): (() => void) | undefined {
  const { progress, volley } = pass;
  if (count > 1) {
    progress.log(`${signal} again: aborting the requests in flight (they stay pending)`);
    volley.destroy().catch(() => undefined);
    return undefined;
  }
  const again = `${signal === 'SIGINT' ? 'Ctrl-C' : signal} again to abort`;
  return drainInFlight(pass, `${signal}: reading no more lines`, again, stopReading);
}

/**
 * stdout or stderr was closed by its reader (EPIPE: `volley run … | head -1`). Nobody reads the
 * progress any more, but the run is resumable: stop as on a first signal (drain, save the state,
 * release the lock), and end with exit 3. Returns what cancels the drain's timers.
 */
export function onOutputClosed(
  pass: PassRuntime & { graceMs: number },
  stream: 'stdout' | 'stderr',
  stopReading: () => void,
): () => void {
  return drainInFlight(
    pass,
    `${stream} was closed by its reader: reading no more lines`,
    'Ctrl-C to abort',
    stopReading,
  );
}

/** A write failed because the reader of stdout went away (`-o - | head -1`), not the disk. */
export function isBrokenPipe(error: unknown): boolean {
  const codes = [
    (error as { osCode?: unknown } | null)?.osCode,
    (error as { code?: unknown } | null)?.code,
  ];
  return codes.includes('EPIPE') || codes.includes('ERR_STREAM_DESTROYED');
}

/**
 * `stopReading`, let the attempts on the wire finish within `graceMs`, and abort the rest (they
 * stay pending). Calls not on the wire (queued, waiting on a rate limit or a retry delay) are not
 * worth waiting for: once nothing is on the wire, they are aborted at once, so an interrupt with
 * nothing in flight ends the run at once instead of waiting out the grace period.
 */
function drainInFlight(
  pass: PassRuntime & { graceMs: number },
  what: string,
  abortHint: string,
  stopReading: () => void,
): () => void {
  const { progress, volley, graceMs } = pass;
  const inFlight = volley.stats().inFlight;
  progress.log(
    `${what}; finishing ${inFlight} in flight within ${Math.round(graceMs / 1000)} s (${abortHint})`,
  );
  stopReading();
  const abort = (): void => {
    clearTimeout(grace);
    clearInterval(idle);
    volley.destroy().catch(() => undefined);
  };
  const grace = setTimeout(() => {
    progress.log('grace period over: aborting the requests still in flight (they stay pending)');
    abort();
  }, graceMs);
  const idle = setInterval(() => {
    if (volley.stats().inFlight === 0) abort();
  }, IDLE_CHECK_MS);
  grace.unref();
  idle.unref();
  if (inFlight === 0) abort();
  return () => {
    clearTimeout(grace);
    clearInterval(idle);
  };
}

/** `--stop-after-same-error`'s default. */
export const DEFAULT_STOP_AFTER_SAME_ERROR = 20;

/**
 * `--stop-after-same-error N`: when the first N lines answered all failed with the same permanent
 * error (same code, HTTP status and message: a model the server does not have, a parameter it
 * refuses), every other line would fail the same way; the pass stops and leaves them pending.
 * Any other outcome among the first N (a success, another error, a transient failure) disarms it.
 *
 * @example
 * const rule = new SameErrorRule(20);
 * const reason = rule.observe(error); // a string once the 20th identical failure arrives
 */
export class SameErrorRule {
  readonly #limit: number;
  #key: string | undefined;
  #count = 0;
  #armed: boolean;

  /** `limit` 0 disables the rule. */
  constructor(limit: number) {
    this.#limit = limit;
    this.#armed = limit > 0;
  }

  /** Records a line's outcome (`undefined` for a success); returns the stop reason, once. */
  observe(error: unknown): string | undefined {
    if (!this.#armed) return undefined;
    const key = isVolleyError(error) && !isRetryable(error) ? sameErrorKey(error) : undefined;
    if (key === undefined || (this.#key !== undefined && key !== this.#key)) {
      this.#armed = false;
      return undefined;
    }
    this.#key = key;
    this.#count++;
    if (this.#count < this.#limit) return undefined;
    this.#armed = false;
    const message = (error as Error).message.replace(/\.$/, '');
    return `the first ${this.#count} answered lines all failed with ${message}`;
  }
}

function sameErrorKey(error: VolleyError): string {
  return JSON.stringify([error.code, error.status ?? null, error.message]);
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

/**
 * A write failed: say what to do, `stopReading`, and abort what is in flight (results that
 * cannot be written are not worth paying for). Returns the failure as an Error.
 */
export function onWriteFailure(pass: PassRuntime, error: unknown, stopReading: () => void): Error {
  const failure = error instanceof Error ? error : new Error(String(error));
  pass.progress.log(
    `${failure.message}; every record written so far is whole. Free space (or fix the disk) and run the same command with --resume`,
  );
  stopReading();
  pass.volley.destroy().catch(() => undefined);
  return failure;
}

/** A progress snapshot: the pass's line counts and the runtime's figures. */
export function progressSnapshot(
  volley: Volley,
  lines: { succeeded: number; failed: number; invalid: number },
  startedAt: number,
): ProgressSnapshot {
  const stats = volley.stats();
  return {
    done: lines.succeeded + lines.failed + lines.invalid,
    succeeded: lines.succeeded,
    failed: lines.failed + lines.invalid,
    inFlight: stats.inFlight,
    queued: stats.queued,
    retries: stats.retries,
    rateLimited: stats.waitingOnRateLimit,
    promptTokens: stats.promptTokens,
    completionTokens: stats.completionTokens,
    elapsedMs: performance.now() - startedAt,
  };
}

/** The runtime's figures in a summary. */
export function runtimeSummary(
  volley: Volley,
): Pick<
  RunSummary,
  'retries' | 'extraBilledCalls' | 'promptTokens' | 'completionTokens' | 'byEndpoint'
> {
  const stats = volley.stats();
  return {
    retries: stats.retries,
    extraBilledCalls: stats.extraBilledCalls,
    promptTokens: stats.promptTokens,
    completionTokens: stats.completionTokens,
    byEndpoint: Object.fromEntries(
      stats.byEndpoint.map((endpoint, i) => [
        volley.endpoints[i] ?? String(i),
        { succeeded: endpoint.succeeded, failed: endpoint.failed },
      ]),
    ),
  };
}
