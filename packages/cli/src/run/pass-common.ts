/**
 * What the sending passes of `volley run` and `volley embed` do alike: their reaction to stop
 * signals and to a failed write, and the runtime's share of their progress and summary.
 */

import type { Volley, VolleyError } from 'volley';
import { ErrorCode } from 'volley';
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

/**
 * First signal: `stopReading`, then give the requests in flight `graceMs` before aborting them
 * (they stay pending). A second signal aborts at once. Returns the grace timer of a first signal.
 */
export function onStopSignal(
  pass: PassRuntime & { graceMs: number },
  signal: StopSignal,
  count: number,
  stopReading: () => void,
): NodeJS.Timeout | undefined {
  const { progress, volley, graceMs } = pass;
  if (count > 1) {
    progress.log(`${signal} again: aborting the requests in flight (they stay pending)`);
    volley.destroy().catch(() => undefined);
    return undefined;
  }
  progress.log(
    `${signal}: reading no more lines; finishing ${volley.stats().inFlight} in flight within ${Math.round(graceMs / 1000)} s (${signal === 'SIGINT' ? 'Ctrl-C' : signal} again to abort)`,
  );
  stopReading();
  const timer = setTimeout(() => {
    progress.log('grace period over: aborting the requests still in flight (they stay pending)');
    volley.destroy().catch(() => undefined);
  }, graceMs);
  timer.unref();
  return timer;
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
