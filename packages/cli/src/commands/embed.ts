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
import { SIMULATOR_EMBEDDING_MODEL } from 'volley';
import type { BatchFlags } from '../batch/session.js';
import {
  createBatchProgress,
  openBatch,
  refuseUnusableInput,
  runPass,
  startBatch,
  withRunLock,
  withSignalGate,
} from '../batch/session.js';
import { createStateWriter } from '../batch/state-writer.js';
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
import { CliError, ExitCode } from '../exit-codes.js';
import { openJournalFile } from '../jsonl/journal.js';
import { DEFAULT_MAX_LINE_BYTES, inspectInput } from '../jsonl/reader.js';
import { assertDistinctPaths } from '../jsonl/writer.js';
import type { ProgressReporter, RunSummary } from '../progress.js';
import { summaryForJson } from '../progress.js';
import { resumeCommandLine, shouldHintResume } from '../resume-hint.js';
import type { FinishedSet } from '../run/finished-set.js';
import { createFinishedSet } from '../run/finished-set.js';
import { DEFAULT_STOP_AFTER_SAME_ERROR } from '../run/pass-common.js';
import { compactErrors, compactionTempPath, scanErrorRecords } from '../run/resume.js';
import type { SignalGate } from '../run/signals.js';
import type { RunState } from '../run/state.js';
import { displayEndpoint } from '../run/state.js';

/** Options of {@link embedCommand}, from the flags. */
export interface EmbedCommandOptions extends BatchFlags {
  output: string;
  format?: VectorFormat;
  /** Ids file of a binary output (default `<output stem>.ids.jsonl`). */
  ids?: string;
  inputFormat?: EmbedInputFormat;
  dimensions?: number;
  /** Inputs per request. */
  batchSize?: number;
  /** Estimated tokens per request. */
  maxTokensPerRequest?: number;
}

/**
 * Runs `volley embed` and returns its exit code. Usage and input problems throw a
 * {@link CliError} (exit 2) before anything is sent; with `json`, they are also printed as a
 * JSON object on stdout.
 */
export function embedCommand(options: EmbedCommandOptions): Promise<number> {
  return withSignalGate(options.json, (signals) => embedWithSignals(options, signals));
}

/** Everything decided before the lock is taken. */
interface EmbedSetup {
  format: VectorFormat;
  inputFormat: EmbedInputFormat;
  model: string;
  paths: VectorPaths;
  statePath: string;
  maxLineBytes: number;
  /** The input's first bytes, read by the file check; the preflight pass starts from them. */
  head: Buffer | undefined;
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
  const { issue, head } = await inspectInput(options.input);
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
    head,
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
    progress: createBatchProgress(options),
    signals,
  };
  return withRunLock(lockPath, setup.progress, () => embedLocked(options, setup));
}

async function embedLocked(options: EmbedCommandOptions, setup: EmbedSetup): Promise<number> {
  const { paths, progress, signals, format } = setup;
  const { prior, resuming, runId } = await startBatch({
    command: 'embed',
    statePath: setup.statePath,
    outputs: [paths.output, paths.ids, paths.errors],
    resume: options.resume === true,
    forceResume: options.forceResume === true,
    overwrite: options.overwrite,
    configHash: setup.configHash,
    describePrior: (earlier) =>
      `endpoints ${earlier.config.endpoints.join(', ')}, model ${earlier.config.model ?? '(none)'}`,
    alsoCovered: 'the dimensions, input format or line limit',
    mixes: 'vectors',
    checkPrior: (earlier) => {
      if (earlier.vectors !== undefined && earlier.vectors.format !== format) {
        throw new CliError(
          `cannot resume: the run wrote ${earlier.vectors.format}, not ${format}`,
          ExitCode.USAGE,
          'VOLLEY_ERR_RESUME_FORMAT_CHANGED',
        );
      }
    },
    progress,
  });

  // What earlier runs left.
  let finished: FinishedSet | undefined;
  let rows = 0;
  let dimensions = options.dimensions;
  if (resuming && prior !== undefined) {
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

  const opened = await openBatch(options, progress, async () => {
    const sink = await openVectorSink({
      paths,
      format,
      dimensions,
      rows,
      resuming,
      overwrite: options.overwrite,
    });
    try {
      const errors = await openJournalFile(
        paths.errors,
        resuming ? { append: true } : { overwrite: options.overwrite },
      );
      return { sink, errors };
    } catch (error) {
      await sink.close().catch(() => undefined);
      throw error;
    }
  });
  const { volley } = opened;
  const { sink, errors } = opened.files;

  const { size, mtimeMs } = await stat(options.input);
  const state = newState(options, setup, runId, prior, survey, sink);
  state.input = { path: options.input, size, mtimeMs };
  let summarySoFar: RunSummary | undefined;
  const stateWriter = createStateWriter(
    setup.statePath,
    state,
    (s) => {
      if (summarySoFar !== undefined) {
        s.counts = {
          succeeded: summarySoFar.succeeded,
          failed: summarySoFar.failed,
          invalid: summarySoFar.skipped,
          pending: summarySoFar.pending ?? null,
        };
      }
      s.committed = {
        results: sink.files[0]?.syncedBytes ?? 0,
        errors: errors.syncedBytes,
        retry: 0,
        spill: 0,
      };
      s.vectors = {
        format,
        dimensions: sink.dimensions ?? null,
        ids: paths.ids === undefined ? null : resolve(paths.ids),
      };
    },
    (m) => progress.log(m),
  );

  const outcome = await runPass(
    {
      opened,
      progress,
      state: stateWriter,
      syncFiles: () => [...sink.files, errors],
      syncIntervalMs: options.syncIntervalMs,
      beforeCheckpoint: () => sink.checkpoint(),
      closers: [() => sink.close(), () => errors.close()],
      afterClose: async (ended) => {
        summarySoFar = ended?.summary;
      },
    },
    async (): Promise<EmbedOutcome> => {
      const ended = await new EmbedPass({
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
      summarySoFar = ended.summary;
      return ended;
    },
  );
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
      { maxLineBytes: setup.maxLineBytes, signal: interrupted.signal, head: setup.head },
    );
  } catch (error) {
    if (interrupted.signal.aborted) {
      setup.progress.log('interrupted during the preflight pass: nothing was sent');
      return undefined;
    }
    throw error;
  }
  refuseUnusableInput(options.input, survey, options.strict === true, {
    noneValid: 'holds a text to embed',
  });
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
