/**
 * `volley embed <input> --output <file>`: texts to vectors, resumable, with bounded memory.
 *
 *   1. check the flags and the input file          a problem ─► exit 2, nothing sent
 *   2. take the output's lock                      another live run ─► exit 2
 *   3. --resume: read what earlier runs wrote (repair torn tails; keep only rows whose id and
 *      vector are both whole), check the configuration
 *   4. preflight pass over the whole input         counts, bad lines, duplicate ids, what is done
 *   5. open the outputs, write the state file
 *   6. sending pass (embed/embed-pass.ts)          signals, stops, write failures end it early
 *   7. sync, final `.npy` header and state, summary, exit code
 *
 * The exit codes, the errors file and `--resume` work as in `volley run` (see the README).
 */

import { hash } from 'node:crypto';
import { stat, unlink } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { VolleyMode } from 'volley';
import { SIMULATOR_EMBEDDING_MODEL } from 'volley';
import type { EmbedOutcome, EmbedSurvey } from '../embed/embed-pass.js';
import { EmbedPass, LineJudge, surveyInput } from '../embed/embed-pass.js';
import type { EmbedInputFormat } from '../embed/input.js';
import { inputFormatOf } from '../embed/input.js';
import type { VectorFormat, VectorPaths, VectorSink } from '../embed/vector-output.js';
import {
  loadVectorOutput,
  openVectorSink,
  vectorFormatOf,
  vectorPaths,
} from '../embed/vector-output.js';
import { CliError, ExitCode, printJsonError } from '../exit-codes.js';
import type { JournalFile } from '../jsonl/journal.js';
import { createSyncTimer, openJournalFile } from '../jsonl/journal.js';
import { DEFAULT_MAX_LINE_BYTES, inspectInputFile } from '../jsonl/reader.js';
import { assertDistinctPaths } from '../jsonl/writer.js';
import type { MetricsExposure } from '../metrics-server.js';
import { exposeMetrics } from '../metrics-server.js';
import type { ProgressMode, ProgressReporter, RunSummary } from '../progress.js';
import { createProgressReporter, summaryForJson } from '../progress.js';
import { resumeCommandLine, shouldHintResume } from '../resume-hint.js';
import type { FinishedSet } from '../run/finished-set.js';
import { createFinishedSet } from '../run/finished-set.js';
import { acquireRunLock } from '../run/lock.js';
import { DEFAULT_STOP_AFTER_SAME_ERROR } from '../run/pass-common.js';
import { compactErrors, compactionTempPath, scanErrorRecords } from '../run/resume.js';
import type { SignalGate } from '../run/signals.js';
import { createSignalGate } from '../run/signals.js';
import { nonEmptyFiles, recordedNothing, shouldResume } from '../run/start.js';
import type { RunState, RunStatus } from '../run/state.js';
import { displayEndpoint, newRunId, readRunState, writeRunState } from '../run/state.js';
import type { RuntimeFlags } from '../runtime.js';
import { createCliVolley } from '../runtime.js';

/** Options of {@link embedCommand}, from the flags. */
export interface EmbedCommandOptions extends RuntimeFlags {
  input: string;
  output: string;
  format?: VectorFormat;
  /** Ids file of a binary output (default `<output stem>.ids.jsonl`). */
  ids?: string;
  errors?: string;
  inputFormat?: EmbedInputFormat;
  dimensions?: number;
  /** Inputs per request. */
  batchSize?: number;
  /** Estimated tokens per request. */
  maxTokensPerRequest?: number;
  mode?: VolleyMode;
  progress: ProgressMode;
  /** `--quiet`: no progress display and no information lines; warnings and the summary stay. */
  quiet?: boolean;
  progressIntervalMs?: number;
  json: boolean;
  overwrite: boolean;
  resume?: boolean;
  /** Resume although the configuration changed; keeps the earlier vectors. */
  forceResume?: boolean;
  /** Any bad line stops the run before anything is sent. */
  strict?: boolean;
  maxLineBytes?: number;
  graceMs: number;
  /** Stop once the first this many texts answered all failed alike (0: never). Default 20. */
  stopAfterSameError?: number;
  syncIntervalMs?: number;
}

/**
 * Runs `volley embed` and returns its exit code. Usage and input problems throw a
 * {@link CliError} (exit 2) before anything is sent; with `json`, they are also printed as a
 * JSON object on stdout.
 */
export async function embedCommand(options: EmbedCommandOptions): Promise<number> {
  const signals = createSignalGate();
  try {
    return await embedWithSignals(options, signals);
  } catch (error) {
    if (options.json) printJsonError(error);
    throw error;
  } finally {
    signals.dispose();
  }
}

/** Everything decided before the lock is taken. */
interface EmbedSetup {
  format: VectorFormat;
  inputFormat: EmbedInputFormat;
  model: string;
  paths: VectorPaths;
  statePath: string;
  maxLineBytes: number;
  configHash: string;
  progress: ProgressReporter;
  signals: SignalGate;
}

async function embedWithSignals(
  options: EmbedCommandOptions,
  signals: SignalGate,
): Promise<number> {
  const usage = (message: string): CliError =>
    new CliError(message, ExitCode.USAGE, 'VOLLEY_ERR_USAGE');
  if ((options.resume === true || options.forceResume === true) && options.overwrite) {
    throw usage('--resume and --overwrite contradict each other: choose one');
  }
  if (options.input === '-' || options.output === '-') {
    throw usage('volley embed reads and writes files (a run must be resumable); use a path, not -');
  }
  const format = options.format ?? vectorFormatOf(options.output);
  if (options.ids !== undefined && format === 'jsonl') {
    throw usage('--ids names the ids file of a binary output (.npy or .f32); JSONL holds its ids');
  }
  const issue = await inspectInputFile(options.input);
  if (issue !== undefined) throw new CliError(issue.message, ExitCode.USAGE, issue.code);

  const endpoints = options.baseUrl ?? [];
  if (endpoints.length > 0 && options.model === undefined) {
    throw usage('--model is required with --base-url (the embedding model to use)');
  }
  const model = options.model ?? SIMULATOR_EMBEDDING_MODEL;
  const inputFormat = options.inputFormat ?? inputFormatOf(options.input);
  const paths = vectorPaths(options.output, format, { ids: options.ids, errors: options.errors });
  const statePath = `${options.output}.volley-state.json`;
  const lockPath = `${options.output}.volley-lock`;
  // A path no flag named is derived from --output, and messages say so.
  const outputFlag = '-o/--output';
  const idsFlag = options.ids === undefined ? outputFlag : '--ids';
  const errorsFlag = options.errors === undefined ? outputFlag : '-e/--errors';
  const derived = (flag: string, what: string) => (flag === outputFlag ? { derived: what } : {});
  await assertDistinctPaths(options.input, [
    { path: paths.output, flag: outputFlag },
    ...(paths.ids === undefined
      ? []
      : [{ path: paths.ids, flag: idsFlag, ...derived(idsFlag, 'its ids file') }]),
    { path: paths.errors, flag: errorsFlag, ...derived(errorsFlag, 'its errors file') },
    { path: statePath, flag: outputFlag, derived: 'its state file' },
    { path: lockPath, flag: outputFlag, derived: 'its lock file' },
    {
      path: compactionTempPath(paths.errors),
      flag: errorsFlag,
      derived: 'the temporary copy of its errors file',
    },
  ]);
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const setup: EmbedSetup = {
    format,
    inputFormat,
    model,
    paths,
    statePath,
    maxLineBytes,
    // What decides the vectors: a resume with another of these would mix two configurations.
    configHash: hash(
      'sha256',
      JSON.stringify({
        command: 'embed',
        endpoints: endpoints.length === 0 ? ['embedded-simulator'] : [...endpoints].sort(),
        model,
        dimensions: options.dimensions ?? null,
        format,
        inputFormat,
        maxLineBytes,
      }),
    ),
    progress: createProgressReporter({
      mode: options.quiet === true ? 'none' : options.progress,
      keepSummary: options.quiet === true,
      ...(options.progressIntervalMs === undefined
        ? {}
        : { intervalMs: options.progressIntervalMs }),
    }),
    signals,
  };
  const lock = await acquireRunLock(lockPath, (m) => setup.progress.log(m));
  try {
    return await embedLocked(options, setup);
  } finally {
    await lock.release();
  }
}

async function embedLocked(options: EmbedCommandOptions, setup: EmbedSetup): Promise<number> {
  const { paths, progress, signals, format } = setup;
  const prior = await readRunState(setup.statePath);
  const existing = await nonEmptyFiles([paths.output, paths.ids, paths.errors]);
  const resuming = shouldResume({
    resume: options.resume === true || options.forceResume === true,
    overwrite: options.overwrite,
    statePath: setup.statePath,
    prior,
    existing,
  });
  const runId = resuming && prior !== undefined ? prior.runId : newRunId();

  // What earlier runs left.
  let finished: FinishedSet | undefined;
  let rows = 0;
  let dimensions = options.dimensions;
  if (resuming && prior !== undefined) {
    const configChangeOk = options.forceResume === true || recordedNothing(prior, existing);
    checkResumable(prior, setup, configChangeOk, progress);
    finished = createFinishedSet();
    const kept = await loadVectorOutput(
      paths,
      format,
      prior.vectors?.dimensions ?? undefined,
      finished,
    );
    rows = kept.rows;
    dimensions ??= kept.dimensions;
    const errors = await scanErrorRecords(paths.errors, finished);
    const repaired = kept.repairedBytes + errors.repairedBytes;
    if (repaired > 0) progress.log(`repaired the outputs: cut ${repaired} bytes of torn tails`);
    if (errors.droppedErrors > 0) await compactErrors(paths.errors, finished);
  } else if (options.overwrite) {
    await unlink(setup.statePath).catch(() => undefined);
  }

  // Preflight: the whole input, before anything is sent.
  const survey = await preflight(options, setup, finished);
  if (survey === undefined) return signals.exitCode ?? ExitCode.INTERRUPTED;

  // The runtime before the files: a bad option must not leave files behind.
  const volley = await createCliVolley(options);
  let sink: VectorSink;
  let errors: JournalFile;
  let metrics: MetricsExposure | undefined;
  try {
    metrics = await exposeMetrics(volley, options, (m) => progress.log(m));
    sink = await openVectorSink({
      paths,
      format,
      dimensions,
      rows,
      resuming,
      overwrite: options.overwrite,
    });
    try {
      errors = await openJournalFile(
        paths.errors,
        resuming ? { append: true } : { overwrite: options.overwrite },
      );
    } catch (error) {
      await sink.close().catch(() => undefined);
      throw error;
    }
  } catch (error) {
    await volley.destroy().catch(() => undefined);
    await metrics?.finish();
    throw error;
  }
  if (volley.simulator !== undefined) {
    progress.log(`no endpoint configured: using the embedded simulator at ${volley.simulator.url}`);
  }

  const { size, mtimeMs } = await stat(options.input);
  const state = newState(options, setup, runId, prior, survey, sink);
  state.input = { path: options.input, size, mtimeMs };
  let stateWrites = Promise.resolve();
  let stateWarned = false;
  let outcome: EmbedOutcome | undefined;
  const saveState = (status: RunStatus): Promise<void> => {
    stateWrites = stateWrites.then(async () => {
      state.status = status;
      state.updatedAt = new Date().toISOString();
      const summary = outcome?.summary;
      if (summary !== undefined) {
        state.counts = {
          succeeded: summary.succeeded,
          failed: summary.failed,
          invalid: summary.skipped,
          pending: summary.pending ?? null,
        };
      }
      state.committed = {
        results: sink.files[0]?.syncedBytes ?? 0,
        errors: errors.syncedBytes,
        retry: 0,
        spill: 0,
      };
      state.vectors = {
        format,
        dimensions: sink.dimensions ?? null,
        ids: paths.ids === undefined ? null : resolve(paths.ids),
      };
      try {
        await writeRunState(setup.statePath, state);
      } catch (error) {
        // The previous state stays valid: resuming reads the outputs, not these counts.
        if (!stateWarned) {
          stateWarned = true;
          progress.log(`cannot update the state file: ${(error as Error).message}`);
        }
      }
    });
    return stateWrites;
  };

  const syncTimer = createSyncTimer({
    files: () => [...sink.files, errors],
    ...(options.syncIntervalMs === undefined ? {} : { intervalMs: options.syncIntervalMs }),
    onSync: async () => {
      await sink.checkpoint().catch(() => undefined);
      await saveState('running');
    },
    onError: () => undefined, // Sticky in the file; the next append reports it.
  });
  try {
    await saveState('running');
    outcome = await new EmbedPass({
      volley,
      input: options.input,
      judge: new LineJudge(setup.inputFormat, setup.model, finished),
      embed: {
        model: setup.model,
        ...(options.dimensions === undefined ? {} : { dimensions: options.dimensions }),
        ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
        ...(options.maxTokensPerRequest === undefined
          ? {}
          : { maxTokensPerRequest: options.maxTokensPerRequest }),
      },
      maxLineBytes: setup.maxLineBytes,
      strict: options.strict === true,
      graceMs: options.graceMs,
      stopAfterSameError: options.stopAfterSameError ?? DEFAULT_STOP_AFTER_SAME_ERROR,
      runId,
      sink,
      errors,
      survey,
      progress,
      signals,
    }).run();
  } finally {
    syncTimer.stop();
    await volley.destroy().catch(() => undefined);
    // Every call has ended: the final scrape matches the summary.
    await metrics?.finish();
    const closed = await Promise.allSettled([sink.close(), errors.close()]);
    const closeError = closed.find((r) => r.status === 'rejected');
    if (closeError !== undefined && outcome !== undefined && outcome.status !== 'write-failed') {
      progress.log(
        `${((closeError as PromiseRejectedResult).reason as Error).message}; run the same command with --resume once it can be written`,
      );
      outcome = {
        ...outcome,
        status: 'write-failed',
        exitCode: ExitCode.WRITE_FAILED,
        summary: { ...outcome.summary, status: 'write-failed' },
      };
    }
    await saveState(outcome?.status ?? 'stopped');
  }
  const summary: RunSummary = {
    ...outcome.summary,
    outputPath: paths.output,
    errorsPath: paths.errors,
  };
  if (shouldHintResume(summary)) summary.resumeCommand = resumeCommandLine(process.argv.slice(2));
  progress.finish(summary);
  if (options.json) {
    const vectors = {
      format,
      dimensions: sink.dimensions ?? null,
      rows: sink.rows,
      ...(paths.ids === undefined ? {} : { idsPath: paths.ids }),
    };
    process.stdout.write(
      `${JSON.stringify({ version: 1, exitCode: outcome.exitCode, ...summaryForJson(summary), vectors })}\n`,
    );
  }
  return outcome.exitCode;
}

function checkResumable(
  prior: RunState,
  setup: EmbedSetup,
  /** `--force-resume`, or nothing recorded yet: a new configuration mixes nothing. */
  configChangeOk: boolean,
  progress: ProgressReporter,
): void {
  if (prior.command !== 'embed') {
    throw new CliError(
      `cannot resume: ${setup.statePath} was written by volley run, not volley embed`,
      ExitCode.USAGE,
      'VOLLEY_ERR_RESUME_CONFIG_CHANGED',
    );
  }
  if (prior.vectors !== undefined && prior.vectors.format !== setup.format) {
    throw new CliError(
      `cannot resume: the run wrote ${prior.vectors.format}, not ${setup.format}`,
      ExitCode.USAGE,
      'VOLLEY_ERR_RESUME_CONFIG_CHANGED',
    );
  }
  if (prior.config.hash === setup.configHash) return;
  const was = `endpoints ${prior.config.endpoints.join(', ')}, model ${prior.config.model ?? '(none)'}`;
  if (!configChangeOk) {
    throw new CliError(
      `cannot resume: the configuration changed since the run began (it used ${was}; or the dimensions, input format or line limit changed). Resuming would mix vectors of two configurations; pass --force-resume to do so anyway, or --overwrite to start over`,
      ExitCode.USAGE,
      'VOLLEY_ERR_RESUME_CONFIG_CHANGED',
    );
  }
  progress.log(`continuing a run that used ${was} with a new configuration`);
}

/** The preflight pass; undefined when a signal interrupted it (nothing was sent). */
async function preflight(
  options: EmbedCommandOptions,
  setup: EmbedSetup,
  finished: FinishedSet | undefined,
): Promise<EmbedSurvey | undefined> {
  const interrupted = new AbortController();
  setup.signals.setHandler(() => interrupted.abort());
  let survey: EmbedSurvey;
  try {
    survey = await surveyInput(
      options.input,
      new LineJudge(setup.inputFormat, setup.model, finished),
      { maxLineBytes: setup.maxLineBytes, signal: interrupted.signal },
    );
  } catch (error) {
    if (interrupted.signal.aborted) {
      setup.progress.log('interrupted during the preflight pass: nothing was sent');
      return undefined;
    }
    throw error;
  }
  const issues = (separator: string): string =>
    survey.firstIssues.map((i) => `${i.code} ${i.message}`).join(separator);
  if (survey.valid + survey.invalid === 0) {
    throw new CliError(
      `${JSON.stringify(options.input)}: holds only blank lines`,
      ExitCode.USAGE,
      'VOLLEY_INPUT_FILE_EMPTY',
    );
  }
  if (survey.valid === 0) {
    throw new CliError(
      `${JSON.stringify(options.input)}: not one of its ${survey.invalid} lines holds a text to embed; nothing sent (first: ${issues('; ')})`,
      ExitCode.USAGE,
      'VOLLEY_INPUT_FILE_NO_VALID_LINES',
    );
  }
  if (options.strict === true && survey.invalid > 0) {
    throw new CliError(
      `--strict: ${survey.invalid} bad lines, nothing sent:\n${issues('\n')}`,
      ExitCode.USAGE,
      'VOLLEY_INPUT_STRICT',
    );
  }
  if (setup.progress.mode !== 'none') {
    const n = (value: number): string => value.toLocaleString('en-US');
    setup.progress.log(
      `${options.input}: ${n(survey.lines)} lines (${setup.inputFormat}), ${n(survey.valid)} texts, ${n(survey.invalid)} invalid, ${n(survey.alreadyDone)} already done, ${n(survey.toSend)} to embed`,
    );
  }
  return survey;
}

function newState(
  options: EmbedCommandOptions,
  setup: EmbedSetup,
  runId: string,
  prior: RunState | undefined,
  survey: EmbedSurvey,
  sink: VectorSink,
): RunState {
  const { paths } = setup;
  return {
    version: 1,
    tool: 'volley',
    command: 'embed',
    runId,
    createdAt: prior?.createdAt ?? new Date().toISOString(),
    updatedAt: new Date().toISOString(),
    status: 'running',
    order: 'completion',
    config: {
      hash: setup.configHash,
      endpoints: (options.baseUrl ?? ['embedded-simulator']).map((e) =>
        e === 'embedded-simulator' ? e : displayEndpoint(e),
      ),
      model: setup.model,
    },
    // Recorded so a later resume can tell the input changed; filled in by the caller.
    input: { path: options.input, size: null, mtimeMs: null },
    // Absolute: a resume from another directory must find the same files.
    files: {
      results: resolve(paths.output),
      errors: resolve(paths.errors),
      retry: null,
      spill: '',
    },
    counts: { succeeded: 0, failed: 0, invalid: 0, pending: survey.toSend },
    committed: { results: 0, errors: 0, retry: 0, spill: 0 },
    vectors: {
      format: setup.format,
      dimensions: sink.dimensions ?? null,
      ids: paths.ids === undefined ? null : resolve(paths.ids),
    },
  };
}
