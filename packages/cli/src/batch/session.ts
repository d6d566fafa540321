/**
 * The life of a batch command, written once for `volley run` and `volley embed`:
 *
 *   signal gate ─► lock ─► state: fresh, resume or refuse ─► (the command's preflight)
 *     ─► runtime, then files ─► state + sync timer ─► the pass ─► teardown
 *
 * Teardown: stop the timer, end every call, final metrics, close every file (the first failure
 * wins), and when a close fails after a pass that wrote everything, the outcome becomes
 * `write-failed` as a whole (status, exit code 4 and the summary's status together), then the
 * final state. What each command writes and how it reads its input stay in the command.
 */

import type { Volley } from 'volley';
import { CliError, ExitCode, printJsonError } from '../exit-codes.js';
import type { JournalFile } from '../jsonl/journal.js';
import { createSyncTimer } from '../jsonl/journal.js';
import type { InputIssue } from '../jsonl/reader.js';
import type { MetricsExposure } from '../metrics-server.js';
import { exposeMetrics } from '../metrics-server.js';
import type { ProgressMode, ProgressReporter, RunSummary } from '../progress.js';
import { createProgressReporter } from '../progress.js';
import { acquireRunLock } from '../run/lock.js';
import { isBrokenPipe } from '../run/pass-common.js';
import type { SignalGate } from '../run/signals.js';
import { createSignalGate } from '../run/signals.js';
import { nonEmptyFiles, recordedNothing, shouldResume } from '../run/start.js';
import type { RunState, RunStatus } from '../run/state.js';
import { newRunId, readRunState } from '../run/state.js';
import type { RuntimeFlags } from '../runtime.js';
import { createCliVolley } from '../runtime.js';
import type { StateWriter } from './state-writer.js';

/** The batch commands; a state file names the one that wrote it. */
export type BatchCommand = 'run' | 'embed';

/** The flags `volley run` and `volley embed` share, beside the runtime's. */
export interface BatchFlags extends RuntimeFlags {
  input: string;
  errors?: string | undefined;
  progress: ProgressMode;
  /** `--quiet`: no progress display and no information lines; warnings and the summary stay. */
  quiet?: boolean | undefined;
  /** Render interval of the progress display. */
  progressIntervalMs?: number | undefined;
  json: boolean;
  overwrite: boolean;
  resume?: boolean | undefined;
  /** Resume although the configuration (or, for run, some lines) changed; keeps earlier records. */
  forceResume?: boolean | undefined;
  /** Any bad line stops the run (before anything is sent, for files). */
  strict?: boolean | undefined;
  maxLineBytes?: number | undefined;
  /** How long the first Ctrl-C waits for in-flight lines before giving up on them. */
  graceMs: number;
  /** Stop once the first this many lines answered all failed alike (0: never). Default 20. */
  stopAfterSameError?: number | undefined;
  /** Longest a written record waits for fdatasync. */
  syncIntervalMs?: number | undefined;
}

/**
 * Runs a command's body inside one signal gate; with `json`, an error that ends it is also
 * printed as a JSON object on stdout (the message goes to stderr from main.ts).
 */
export async function withSignalGate(
  json: boolean,
  body: (signals: SignalGate) => Promise<number>,
): Promise<number> {
  const signals = createSignalGate();
  try {
    return await body(signals);
  } catch (error) {
    if (json) printJsonError(error);
    throw error;
  } finally {
    signals.dispose();
  }
}

/** The progress display of a batch command; `--quiet` keeps only warnings and the summary. */
export function createBatchProgress(options: {
  progress: ProgressMode;
  quiet?: boolean | undefined;
  progressIntervalMs?: number | undefined;
}): ProgressReporter {
  return createProgressReporter({
    mode: options.quiet === true ? 'none' : options.progress,
    keepSummary: options.quiet === true,
    ...(options.progressIntervalMs === undefined ? {} : { intervalMs: options.progressIntervalMs }),
  });
}

/** Holds the output's lock (none for `-o -`) while `body` runs; a stale lock is broken. */
export async function withRunLock<T>(
  lockPath: string | undefined,
  progress: ProgressReporter,
  body: () => Promise<T>,
): Promise<T> {
  const lock =
    lockPath === undefined ? undefined : await acquireRunLock(lockPath, (m) => progress.log(m));
  try {
    return await body();
  } finally {
    await lock?.release();
  }
}

/** What {@link startBatch} needs to decide between a fresh run, a resume and a refusal. */
export interface StartSpec {
  command: BatchCommand;
  /** Undefined when the output cannot be resumed (`-o -`). */
  statePath: string | undefined;
  /** The outputs whose content means an earlier run exists. */
  outputs: ReadonlyArray<string | undefined>;
  resume: boolean;
  forceResume: boolean;
  overwrite: boolean;
  configHash: string;
  /** The earlier configuration, for messages: `endpoints ..., model ...`. */
  describePrior(prior: RunState): string;
  /** What else the hash covers, for the refusal: `the line rules`. */
  alsoCovered: string;
  /** What a changed configuration would mix: `results`, `vectors`. */
  mixes: string;
  /** Refusals that come before the configuration's (embed: another vector format). */
  checkPrior?: (prior: RunState) => void;
  progress: ProgressReporter;
}

/** A fresh run or a resume, decided; see {@link startBatch}. */
export interface BatchStart {
  prior: RunState | undefined;
  resuming: boolean;
  runId: string;
}

/**
 * Reads the state, decides whether this is a fresh run or a resume (or refuses: outputs without
 * `--resume`), and checks that a resume continues a run of the same command with the same
 * configuration, unless `--force-resume` (or nothing was recorded yet) allows a new one.
 */
export async function startBatch(spec: StartSpec): Promise<BatchStart> {
  const prior = spec.statePath === undefined ? undefined : await readRunState(spec.statePath);
  const existing = await nonEmptyFiles([...spec.outputs]);
  const resuming = shouldResume({
    resume: spec.resume || spec.forceResume,
    overwrite: spec.overwrite,
    statePath: spec.statePath ?? 'the state file',
    prior,
    existing,
  });
  if (resuming && prior !== undefined) {
    const configChangeOk = spec.forceResume || recordedNothing(prior, existing);
    checkResumable(spec, prior, configChangeOk);
  }
  return { prior, resuming, runId: resuming && prior !== undefined ? prior.runId : newRunId() };
}

function checkResumable(spec: StartSpec, prior: RunState, configChangeOk: boolean): void {
  // Files written before `embed` existed name no command: they are run's.
  const wroteIt = prior.command ?? 'run';
  if (wroteIt !== spec.command) {
    throw new CliError(
      `cannot resume: ${spec.statePath ?? 'the state file'} was written by volley ${wroteIt}, not volley ${spec.command}`,
      ExitCode.USAGE,
      'VOLLEY_ERR_RESUME_WRONG_COMMAND',
    );
  }
  spec.checkPrior?.(prior);
  if (prior.config.hash === spec.configHash) return;
  const was = spec.describePrior(prior);
  if (!configChangeOk) {
    throw new CliError(
      `cannot resume: the configuration changed since the run began (it used ${was}; or ${spec.alsoCovered} changed). Resuming would mix ${spec.mixes} of two configurations; pass --force-resume to do so anyway, or --overwrite to start over`,
      ExitCode.USAGE,
      'VOLLEY_ERR_RESUME_CONFIG_CHANGED',
    );
  }
  spec.progress.log(`continuing a run that used ${was} with a new configuration`);
}

/** What a preflight pass found, as far as the refusals below need. */
export interface InputCounts {
  valid: number;
  invalid: number;
  /** The first problems, for messages. */
  firstIssues: readonly InputIssue[];
}

/**
 * Refuses (exit 2, nothing sent) an input with no line to send: only blank lines, or not one
 * valid line (`noneValid` says what a valid line is, `hint` what to do); and with `--strict`,
 * an input with any bad line.
 */
export function refuseUnusableInput(
  input: string,
  found: InputCounts,
  strict: boolean,
  words: { noneValid: string; listed?: number; hint?: string },
): void {
  if (found.valid + found.invalid === 0) {
    throw new CliError(
      `${JSON.stringify(input)}: holds only blank lines`,
      ExitCode.USAGE,
      'VOLLEY_INPUT_FILE_EMPTY',
    );
  }
  if (found.valid === 0) {
    const first = describeIssues(found.firstIssues.slice(0, words.listed), '; ');
    throw new CliError(
      `${JSON.stringify(input)}: not one of its ${found.invalid} lines ${words.noneValid}; nothing sent (first: ${first})${words.hint === undefined ? '' : `. ${words.hint}`}`,
      ExitCode.USAGE,
      'VOLLEY_INPUT_FILE_NO_VALID_LINES',
    );
  }
  if (strict && found.invalid > 0) {
    throw new CliError(
      `--strict: ${found.invalid} bad lines, nothing sent:\n${describeIssues(found.firstIssues, '\n')}`,
      ExitCode.USAGE,
      'VOLLEY_INPUT_STRICT',
    );
  }
}

/** `CODE message` of each issue, joined. */
function describeIssues(issues: readonly InputIssue[], separator: string): string {
  return issues.map((i) => `${i.code} ${i.message}`).join(separator);
}

/** The runtime and the command's files, opened together; see {@link openBatch}. */
export interface OpenedBatch<F> {
  volley: Volley;
  metrics: MetricsExposure | undefined;
  files: F;
}

/**
 * Creates the runtime, then opens the files: a bad option (`VOLLEY_ERR_INVALID_OPTIONS`) must not
 * leave files behind, and a file that cannot be opened ends the runtime again.
 */
export async function openBatch<F>(
  flags: RuntimeFlags,
  progress: ProgressReporter,
  openFiles: (volley: Volley) => Promise<F>,
): Promise<OpenedBatch<F>> {
  const volley = await createCliVolley(flags);
  let metrics: MetricsExposure | undefined;
  let files: F;
  try {
    metrics = await exposeMetrics(volley, flags, (m) => progress.log(m));
    files = await openFiles(volley);
  } catch (error) {
    await volley.destroy().catch(() => undefined);
    await metrics?.finish();
    throw error;
  }
  if (volley.simulator !== undefined) {
    progress.log(`no endpoint configured: using the embedded simulator at ${volley.simulator.url}`);
  }
  return { volley, metrics, files };
}

/** What every pass returns. */
export interface PassOutcome {
  exitCode: number;
  status: RunStatus;
  summary: RunSummary;
  /** Every expected record was written and nothing is pending (run: the spill can go). */
  complete?: boolean;
}

/** What {@link runPass} needs besides the pass itself. */
export interface PassSpec<O extends PassOutcome> {
  opened: OpenedBatch<unknown>;
  progress: ProgressReporter;
  state: StateWriter;
  /** The files the sync timer fdatasyncs. */
  syncFiles: () => readonly JournalFile[];
  syncIntervalMs: number | undefined;
  /** Runs before each checkpoint's state save (embed: the `.npy` header). */
  beforeCheckpoint?: () => Promise<void>;
  /** Runs first once the pass has ended, while the runtime still lives (run: end a cluster batch). */
  beforeTeardown?: (outcome: O | undefined) => Promise<void>;
  /** Closers, run in order once every call has ended; the first failure is reported. */
  closers: ReadonlyArray<() => Promise<void>>;
  /** After the files are closed, before the final state (run: drop the spill). */
  afterClose?: (outcome: O | undefined) => Promise<void>;
}

/**
 * Saves the first state, runs the pass with the sync timer going, and tears down: timer, runtime,
 * metrics, files, final state. Returns the outcome, downgraded to `write-failed` if a close failed.
 */
export async function runPass<O extends PassOutcome>(
  spec: PassSpec<O>,
  pass: () => Promise<O>,
): Promise<O> {
  const { opened, progress, state } = spec;
  const syncTimer = createSyncTimer({
    files: spec.syncFiles,
    ...(spec.syncIntervalMs === undefined ? {} : { intervalMs: spec.syncIntervalMs }),
    onSync: async () => {
      await spec.beforeCheckpoint?.().catch(() => undefined);
      await state.save('running');
    },
    onError: () => undefined, // The failure is sticky in the file; the next append reports it.
  });
  let outcome: O | undefined;
  try {
    await state.save('running');
    outcome = await pass();
  } finally {
    syncTimer.stop();
    await spec.beforeTeardown?.(outcome);
    await opened.volley.destroy().catch(() => undefined);
    // Every call has ended: the final scrape matches the summary.
    await opened.metrics?.finish();
    let closeError: unknown;
    for (const close of spec.closers) {
      try {
        await close();
      } catch (error) {
        closeError ??= error;
      }
    }
    if (
      closeError !== undefined &&
      outcome !== undefined &&
      outcome.status !== 'write-failed' &&
      // `-o -` whose reader went away: the pass has already said so and stopped (exit 3).
      !isBrokenPipe(closeError)
    ) {
      progress.log(
        `${(closeError as Error).message}; run the same command with --resume once it can be written`,
      );
      outcome = withWriteFailed(outcome);
    }
    await spec.afterClose?.(outcome);
    await state.save(outcome?.status ?? 'stopped');
  }
  if (outcome === undefined) throw new Error('the pass ended without an outcome');
  return outcome;
}

/** An outcome whose records could not all be written: every field that says so, together. */
function withWriteFailed<O extends PassOutcome>(outcome: O): O {
  return {
    ...outcome,
    status: 'write-failed',
    exitCode: ExitCode.WRITE_FAILED,
    summary: { ...outcome.summary, status: 'write-failed' },
    ...(outcome.complete === undefined ? {} : { complete: false }),
  };
}
