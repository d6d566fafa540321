/**
 * What the sending passes of `volley run` and `volley embed` do alike: their reaction to stop
 * signals and to a failed write, and the runtime's share of their progress and summary.
 */

import type { Volley, VolleyError } from 'volley';
import { isVolleyError } from 'volley';
import { isRetryable } from '../batch/failure.js';
import type { InputIssue } from '../jsonl/reader.js';
import type { ProgressReporter, ProgressSnapshot, RunSummary } from '../progress.js';
import type { ErrorTally, TalliedError } from './error-tally.js';
import { createErrorTally } from './error-tally.js';
import type { SignalGate, StopSignal } from './signals.js';
import type { RunStatus } from './state.js';
import { runEnding } from './status.js';

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
  const limits = stats.byEndpoint.map((endpoint) => endpoint.concurrencyLimit ?? null);
  return {
    ...(limits.some((limit) => limit !== null) ? { concurrencyLimits: limits } : {}),
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

/** What a pass counted, for its ending. */
export interface PassCounts {
  succeeded: number;
  failed: number;
  /** Bad lines (error records without a request). */
  invalid: number;
  /** Lines a failure left pending; with a preflight pass, pending is counted from it instead. */
  leftPending: number;
  alreadyDone: number;
  alreadyFailed: number;
}

/** Why a pass may have ended early. */
export interface PassStops {
  /** stdout or stderr closed by its reader (EPIPE). */
  outputClosed: 'stdout' | 'stderr' | undefined;
  writeFailed: boolean;
  interrupted: StopSignal | undefined;
  /** `--strict`: the first bad line, which stopped the pass. */
  strictIssue: InputIssue | undefined;
  /** Endpoints out, `--stop-after-same-error`. */
  stopReason: string | undefined;
  /** The pass left lines unread for a reason of its own (run: the input grew). */
  leftUnread?: boolean;
}

/** What the preflight pass found, as far as the ending needs it. */
export interface PassPlan {
  toSend: number;
  valid: number;
  invalid: number;
}

/**
 * How a pass ended: status and exit code (see status.ts), the summary's counts, and on stderr why
 * it stopped, when it did with lines pending.
 */
function endPass(
  pass: PassRuntime & { startedAt: number; byError: Record<string, number>; topErrors: ErrorTally },
  counts: PassCounts,
  plan: PassPlan | undefined,
  stops: PassStops,
): { status: RunStatus; exitCode: number; summary: RunSummary } {
  const processed = counts.succeeded + counts.failed;
  // With a preflight pass every line to send is known, so what was not sent is pending too.
  const pending = plan === undefined ? counts.leftPending : Math.max(0, plan.toSend - processed);
  const { status, exitCode } = runEnding({
    outputClosed: stops.outputClosed !== undefined && pending > 0,
    writeFailed: stops.writeFailed,
    interrupted: stops.interrupted,
    strictStop: stops.strictIssue !== undefined,
    stopped: pending > 0 || stops.stopReason !== undefined || stops.leftUnread === true,
    failures: counts.failed + counts.invalid + counts.alreadyFailed,
  });
  const { progress } = pass;
  if (stops.strictIssue !== undefined) progress.log(stops.strictIssue.message);
  else if (stops.outputClosed !== undefined && pending > 0) {
    progress.log(
      `stopped: ${stops.outputClosed} was closed by its reader; ${pending} lines pending (--resume continues)`,
    );
  } else if (stops.stopReason !== undefined && pending > 0) {
    progress.log(`stopped: ${stops.stopReason}; ${pending} lines pending (--resume continues)`);
  }
  const summary: RunSummary = {
    status,
    total:
      plan === undefined
        ? processed + counts.invalid + pending + counts.alreadyDone
        : plan.valid + plan.invalid,
    succeeded: counts.succeeded,
    failed: counts.failed,
    skipped: counts.invalid,
    pending,
    alreadyDone: counts.alreadyDone,
    alreadyFailed: counts.alreadyFailed,
    ...runtimeSummary(pass.volley),
    wallMs: performance.now() - pass.startedAt,
    byError: pass.byError,
    topErrors: pass.topErrors.top(),
  };
  return { status, exitCode, summary };
}

/**
 * What a sending pass keeps that does not depend on what it sends: its counts, why it may stop,
 * and its reactions to a signal, a closed output, a failed write and `--stop-after-same-error`.
 * run's BatchRun and embed's EmbedPass each own one; what they send, and how, stays theirs.
 *
 * @example
 * const ledger = new PassLedger(ctx, () => reader.abort());
 * signals.setHandler((signal, count) => ledger.onSignal(signal, count));
 * if (ledger.shouldStop()) break;
 * return ledger.end(pre);
 */
export class PassLedger {
  readonly startedAt = performance.now();
  readonly counts: PassCounts = {
    succeeded: 0,
    failed: 0,
    invalid: 0,
    leftPending: 0,
    alreadyDone: 0,
    alreadyFailed: 0,
  };
  readonly byError: Record<string, number> = {};
  readonly topErrors: ErrorTally = createErrorTally();
  interrupted: StopSignal | undefined;
  /** stdout or stderr closed by its reader (EPIPE). */
  outputClosed: 'stdout' | 'stderr' | undefined;
  writeError: Error | undefined;
  /** `--strict`: the first bad line, which stops the pass. */
  strictIssue: InputIssue | undefined;
  /** Endpoints out, or the first lines all failing alike. */
  stopReason: string | undefined;
  /** The first lines answered all failed alike: the rest would too. */
  sameErrorStop = false;
  /** The pass stopped reading for a reason of its own (run: the input grew). */
  leftUnread = false;
  readonly #pass: PassRuntime & { graceMs: number };
  readonly #stopReading: () => void;
  readonly #sameError: SameErrorRule;
  #cancelDrain: (() => void) | undefined;

  /** `stopReading` ends the pass's intake (the reader, and anything waiting on it). */
  constructor(
    pass: PassRuntime & { graceMs: number; stopAfterSameError: number },
    stopReading: () => void,
  ) {
    this.#pass = pass;
    this.#stopReading = stopReading;
    this.#sameError = new SameErrorRule(pass.stopAfterSameError);
  }

  /**
   * Listens for what stops a pass from outside: signals, stdout or stderr closed by its reader,
   * endpoints going out of use (every one out: no point reading more lines); and says when a
   * worker thread crashed.
   */
  watch(signals: SignalGate): void {
    const { volley, progress } = this.#pass;
    signals.setHandler((signal, count) => this.onSignal(signal, count));
    if (signals.first !== undefined) this.onSignal(signals.first, 1);
    signals.setClosedHandler((stream) => this.onOutputClosed(stream));
    if (signals.closed !== undefined) this.onOutputClosed(signals.closed);
    watchEndpoints(this.#pass, ({ reason, kind, allOut }) => {
      // A stopped endpoint stops the run's status; a down one may come back while others serve.
      if (kind === 'stopped' || allOut) this.stopReason ??= reason;
      if (allOut) this.#stopReading();
    });
    volley.on('workerCrash', ({ restarts }) => {
      progress.log(`a worker thread crashed (${restarts} so far); its requests were re-dispatched`);
    });
  }

  /** True once the pass should read no more lines. */
  shouldStop(): boolean {
    return (
      this.interrupted !== undefined ||
      this.outputClosed !== undefined ||
      this.writeError !== undefined ||
      this.strictIssue !== undefined ||
      this.sameErrorStop ||
      this.leftUnread ||
      (this.stopReason !== undefined && allEndpointsOut(this.#pass.volley))
    );
  }

  onSignal(signal: StopSignal, count: number): void {
    const cancelDrain = onStopSignal(this.#pass, signal, count, this.#stopReading);
    if (count === 1) {
      this.interrupted = signal;
      this.#cancelDrain ??= cancelDrain;
    }
  }

  onOutputClosed(stream: 'stdout' | 'stderr'): void {
    if (this.outputClosed !== undefined) return;
    this.outputClosed = stream;
    this.#cancelDrain ??= onOutputClosed(this.#pass, stream, this.#stopReading);
  }

  onWriteError(error: unknown): void {
    if (isBrokenPipe(error)) {
      // `-o -` and its reader went away: what is in flight can no longer be written.
      this.onOutputClosed('stdout');
      this.#pass.volley.destroy().catch(() => undefined);
      return;
    }
    this.writeError ??= onWriteFailure(this.#pass, error, this.#stopReading);
  }

  /** A line answered (`error` undefined for a success): `--stop-after-same-error` may stop. */
  observe(error: unknown): void {
    const reason = this.#sameError.observe(error);
    if (reason === undefined) return;
    this.stopReason ??= reason;
    this.sameErrorStop = true;
    this.#stopReading();
    // The lines in flight would fail the same way: abort them; they stay pending.
    this.#pass.volley.destroy().catch(() => undefined);
  }

  /** Counts an error record by code, and among the most common errors. */
  countError(error: TalliedError): void {
    this.byError[error.code] = (this.byError[error.code] ?? 0) + 1;
    this.topErrors.add(error);
  }

  /** Cancels the drain's timers, if a stop started one. */
  dispose(): void {
    this.#cancelDrain?.();
  }

  /** How the pass ended; `plan` is what its preflight pass found, if it had one. */
  end(plan: PassPlan | undefined): { status: RunStatus; exitCode: number; summary: RunSummary } {
    return endPass(
      {
        ...this.#pass,
        startedAt: this.startedAt,
        byError: this.byError,
        topErrors: this.topErrors,
      },
      this.counts,
      plan,
      {
        outputClosed: this.outputClosed,
        writeFailed: this.writeError !== undefined,
        interrupted: this.interrupted,
        strictIssue: this.strictIssue,
        stopReason: this.stopReason,
        leftUnread: this.leftUnread,
      },
    );
  }
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
        {
          succeeded: endpoint.succeeded,
          failed: endpoint.failed,
          ...(endpoint.concurrencyLimit === undefined
            ? {}
            : { concurrencyLimit: endpoint.concurrencyLimit }),
        },
      ]),
    ),
  };
}
