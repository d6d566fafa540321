/**
 * What the sending passes of `volley run` and `volley embed` do alike: their reaction to stop
 * signals and to a failed write, and the runtime's share of their progress and summary.
 */

import type { Volley } from 'volley';
import type { ProgressReporter, ProgressSnapshot, RunSummary } from '../progress.js';
import type { StopSignal } from './signals.js';

/** What a pass hands to the shared reactions. */
export interface PassRuntime {
  volley: Volley;
  progress: ProgressReporter;
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
