/**
 * `volley run <input.jsonl> --output <results.jsonl>`: an OpenAI Batch JSONL file through the
 * runtime, resumable, with bounded memory.
 *
 *   1. check the input file as a whole         file-level problem ─► exit 2, nothing sent
 *   2. take the output's lock                  another live run   ─► exit 2
 *   3. --resume: read what the last run wrote (repair torn tails, FinishedSet), check its config
 *   4. preflight pass over the whole file      counts, bad lines, duplicates, what is done
 *   5. tidy the errors file (drop what will be retried), open the journal files, write the state
 *   6. sending pass (batch-run.ts)             signals, stops, write failures end it early
 *   7. sync, final state, summary, exit code
 *
 * Standard input (`-`) cannot be read twice: step 4 is skipped, and lines are judged as they
 * arrive (see the README).
 */

import { mkdtemp, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import type { CountTokens } from '@volley/core';
import { loadTokenCounter } from '@volley/core';
import { DEFAULT_TIMEOUT_MS } from 'volley';
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
import { inputFormatOf } from '../embed/input.js';
import { CliError, ExitCode } from '../exit-codes.js';
import type { JournalFile } from '../jsonl/journal.js';
import { journalOverWriter, openJournalFile } from '../jsonl/journal.js';
import {
  classifySample,
  DEFAULT_MAX_LINE_BYTES,
  inspectInput,
  inspectInputFile,
} from '../jsonl/reader.js';
import { assertDistinctPaths, openJsonlWriter } from '../jsonl/writer.js';
import type { ProgressReporter, RunSummary } from '../progress.js';
import { formatDryRun, summaryForJson } from '../progress.js';
import { resumeCommandLine, shouldHintResume } from '../resume-hint.js';
import type { BatchOutcome } from '../run/batch-run.js';
import { BatchRun } from '../run/batch-run.js';
import type { ClusterBatchRun, ClusterRunFlags } from '../run/cluster-batch.js';
import type { LineRules, PreflightResult, ResumeIndex, RunInputFormat } from '../run/lines.js';
import { preflight } from '../run/lines.js';
import { paceWarning } from '../run/pace-warning.js';
import { DEFAULT_STOP_AFTER_SAME_ERROR } from '../run/pass-common.js';
import type { RunPaths } from '../run/paths.js';
import { runPaths } from '../run/paths.js';
import type { PriceTable } from '../run/prices.js';
import { loadPriceTable } from '../run/prices.js';
import type { ReorderBuffer } from '../run/reorder-buffer.js';
import { createReorderBuffer } from '../run/reorder-buffer.js';
import type { PreviousRun } from '../run/resume.js';
import { compactErrors, loadPreviousRun } from '../run/resume.js';
import { scaleEstimate } from '../run/samples/estimate.js';
import type { SamplingSettings, SelectMode } from '../run/samples/settings.js';
import { describeSampling, resolveSampling } from '../run/samples/settings.js';
import type { SignalGate } from '../run/signals.js';
import type { RunConfig, RunState } from '../run/state.js';
import { configHash, displayEndpoint } from '../run/state.js';
import { inFlightCeiling, operatorLog } from '../runtime.js';

export { errorRecord, successRecord } from '../run/record.js';

/** Options of {@link runCommand}, from the flags. */
export interface RunCommandOptions extends BatchFlags, ClusterRunFlags {
  /** Required unless `dryRun`. */
  output?: string;
  retryFile?: string;
  allowModel?: string[];
  order?: 'completion' | 'input';
  /** `--order input`: most lines between the oldest unwritten one and the newest read. */
  reorderWindow?: number;
  /** Validate and estimate; send nothing, write nothing. */
  dryRun?: boolean;
  maxPromptTokens?: number;
  priceInput?: number;
  priceOutput?: number;
  prices?: string;
  /** Requests per line (`--samples`); see run/samples/settings.ts. */
  samples?: number;
  /** How a sampled line's record is chosen; default `all`. */
  select?: SelectMode;
  /** `--select judge`: the judge's model (default: each line's). */
  judgeModel?: string;
  /** `--select judge`: the judge's system prompt. */
  judgeInstructions?: string;
  /** How input lines are read; default `text` for `.txt`/`.text` files, else `jsonl`. */
  inputFormat?: RunInputFormat;
  /** Tests inject standard input. */
  stdin?: Readable;
}

/** Default `--reorder-window`: 13 bytes a line of bookkeeping, 13.6 MB in all. */
export const DEFAULT_REORDER_WINDOW = 1 << 20;
/** Spilled records also kept in memory (`--order input`). */
const REORDER_CACHE_BYTES = 16 * 1024 * 1024;
const STDIN_SAMPLE_BYTES = 64 * 1024;
/** Emission from the reorder buffer waits for the writer past this many queued bytes. */
const MAX_EMIT_QUEUE_BYTES = 4 * 1024 * 1024;

/**
 * Runs `volley run` and returns its exit code. Usage and input problems throw a {@link CliError}
 * (exit 2) before anything is sent; with `json`, they are also printed as a JSON object on stdout.
 */
export function runCommand(options: RunCommandOptions): Promise<number> {
  return withSignalGate(options.json, (signals) => runWithSignals(options, signals));
}

async function runWithSignals(options: RunCommandOptions, signals: SignalGate): Promise<number> {
  checkFlags(options);
  const sampling = resolveSampling(options);
  const progress = createBatchProgress(options);
  const prices = await loadPriceTable({
    priceInput: options.priceInput,
    priceOutput: options.priceOutput,
    pricesFile: options.prices,
  });
  let stdin: Readable | undefined;
  // The bytes the file check read: the preflight pass starts from them, not from the disk.
  let head: Buffer | undefined;
  if (options.input === '-') {
    const interrupted = new AbortController();
    signals.setHandler(() => interrupted.abort());
    if (signals.first !== undefined) interrupted.abort();
    stdin = await checkStdin(options, interrupted.signal);
    if (stdin === undefined) {
      progress.log('interrupted while reading the first lines of standard input: nothing was sent');
      return signals.exitCode ?? ExitCode.INTERRUPTED;
    }
  } else {
    head = await checkInputFile(options.input);
  }

  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  let countTokens: CountTokens | undefined;
  if (options.maxPromptTokens !== undefined || options.dryRun === true) {
    countTokens = await loadTokenCounter();
  }
  const rules: LineRules = {
    defaults: {
      ...(options.model === undefined ? {} : { model: options.model }),
      ...(options.allowModel === undefined ? {} : { allowedModels: options.allowModel }),
      ...(sampling === undefined
        ? {}
        : { sampling: { samples: sampling.samples, select: sampling.select } }),
    },
    maxPromptTokens: options.maxPromptTokens,
    countTokens,
    inputFormat: inputFormatFor(options),
  };
  const setup: DryRunSetup = {
    rules,
    sampling,
    maxLineBytes,
    stdin,
    head,
    prices,
    signals,
    progress,
  };
  if (options.dryRun === true) return dryRun(options, setup);

  const output = options.output as string;
  const paths = await runPaths(output, { errors: options.errors, retryFile: options.retryFile });
  await assertDistinctPaths(options.input, paths.written);
  if (paths.state === undefined && options.resume === true) {
    throw new CliError(
      `output to ${output === '-' ? 'stdout' : output} cannot be resumed; write to a file`,
      ExitCode.USAGE,
      'VOLLEY_ERR_RESUME_IMPOSSIBLE',
    );
  }
  return withRunLock(paths.lock, progress, () => runLocked(options, { ...setup, paths }));
}

function checkFlags(options: RunCommandOptions): void {
  const usage = (message: string): CliError =>
    new CliError(message, ExitCode.USAGE, 'VOLLEY_ERR_USAGE');
  if (options.dryRun !== true && options.output === undefined) {
    throw usage('an output is required (-o results.jsonl), except with --dry-run');
  }
  if ((options.resume === true || options.forceResume === true) && options.overwrite) {
    throw usage('--resume and --overwrite contradict each other: choose one');
  }
  if (options.output === '-' && options.json) {
    throw usage('--json prints the summary on stdout, which -o - already uses for results');
  }
  if (options.maxPromptTokens !== undefined && options.maxPromptTokens <= 0) {
    throw usage('--max-prompt-tokens must be positive');
  }
  if (inputFormatFor(options) === 'text' && options.model === undefined) {
    throw usage(
      'a plain-text input (one prompt per line) names no model: pass --model, e.g. -m gpt-4o-mini',
    );
  }
}

/** `--input-format`, else what the file name implies (`.txt`: text), as `volley embed` does. */
function inputFormatFor(options: RunCommandOptions): RunInputFormat {
  return options.inputFormat ?? (options.input === '-' ? 'jsonl' : inputFormatOf(options.input));
}

/**
 * Added to "not one valid line": what Volley reads, and the one-liners that convert the usual
 * alternatives. A CSV or a list of prompts was refused with only a JSON syntax error.
 */
const NOT_JSONL_HINT =
  "volley run reads JSONL (one JSON object per line). For one prompt per line, name the file .txt or pass --input-format text with -m <model>, or convert it: jq -Rc '{prompt: .}' prompts.txt > prompts.jsonl";

/** Refuses an input file that cannot be used at all; returns the bytes it read to find out. */
async function checkInputFile(input: string): Promise<Buffer | undefined> {
  const { issue, head } = await inspectInput(input);
  if (issue !== undefined) throw new CliError(issue.message, ExitCode.USAGE, issue.code);
  return head;
}

/**
 * Standard input cannot be read twice, so only its first 64 KiB are checked for file-level
 * problems (gzip, UTF-16, binary) before the first request; the stream is then replayed.
 *
 * A writer may keep the pipe open with little or nothing written: a signal while the sample is
 * read returns undefined (nothing sent), and destroying the replayed stream (the pass stopping)
 * destroys standard input, so neither waits for a line that may never come.
 */
async function checkStdin(
  options: RunCommandOptions,
  interrupted: AbortSignal,
): Promise<Readable | undefined> {
  const source = (options.stdin ?? process.stdin) as Readable;
  const tty = await inspectInputFile('-', { stdin: source as { isTTY?: boolean } });
  if (tty !== undefined) throw new CliError(tty.message, ExitCode.USAGE, tty.code);
  const iterator = (source as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  const toBuffer = (value: Buffer | string): Buffer =>
    typeof value === 'string' ? Buffer.from(value) : value;
  const stop = new Promise<'interrupted'>((resolve) => {
    if (interrupted.aborted) resolve('interrupted');
    interrupted.addEventListener('abort', () => resolve('interrupted'), { once: true });
  });
  const head: Buffer[] = [];
  let size = 0;
  let ended = false;
  while (size < STDIN_SAMPLE_BYTES) {
    const next = await Promise.race([iterator.next(), stop]);
    if (next === 'interrupted') {
      source.destroy();
      return undefined;
    }
    if (next.done === true) {
      ended = true;
      break;
    }
    const chunk = toBuffer(next.value);
    head.push(chunk);
    size += chunk.length;
  }
  const sample = Buffer.concat(head, size);
  const problem = classifySample(sample.subarray(0, STDIN_SAMPLE_BYTES), ended);
  if (problem !== undefined) {
    throw new CliError(`standard input ${problem.detail}`, ExitCode.USAGE, problem.code);
  }
  let sampleSent = false;
  return new Readable({
    read() {
      if (!sampleSent) {
        sampleSent = true;
        if (sample.length > 0) this.push(sample);
        if (ended) this.push(null);
        if (sample.length > 0 || ended) return;
      }
      iterator.next().then(
        (next) => this.push(next.done === true ? null : toBuffer(next.value)),
        (error: unknown) => this.destroy(error as Error),
      );
    },
    destroy(error, callback) {
      // The pass stopped reading: the rest of standard input will never be read.
      source.destroy();
      callback(error);
    },
  });
}

interface RunSetup {
  paths: RunPaths;
  rules: LineRules;
  sampling: SamplingSettings | undefined;
  maxLineBytes: number;
  stdin: Readable | undefined;
  /** The input's first bytes, read by the file check; the preflight pass starts from them. */
  head: Buffer | undefined;
  prices: PriceTable | undefined;
  signals: SignalGate;
  progress: ProgressReporter;
}

async function runLocked(options: RunCommandOptions, setup: RunSetup): Promise<number> {
  const { paths, progress, signals } = setup;
  const order = options.order ?? 'completion';
  const config: RunConfig = {
    endpoints: options.baseUrl ?? ['embedded-simulator'],
    model: options.model ?? null,
    maxLineBytes: setup.maxLineBytes,
    allowedModels: options.allowModel ?? [],
    maxPromptTokens: options.maxPromptTokens ?? null,
    sampling: setup.sampling ?? null,
    ...(setup.rules.inputFormat === 'text' ? { inputFormat: 'text' as const } : {}),
  };
  const hash = configHash(config);

  // Fresh run, resume, or refusal.
  const force = options.forceResume === true;
  const { prior, resuming, runId } = await startBatch({
    command: 'run',
    statePath: paths.state,
    outputs: [paths.output, paths.errors, paths.retry],
    resume: options.resume === true,
    forceResume: force,
    overwrite: options.overwrite,
    configHash: hash,
    describePrior: (earlier) => describePrior(earlier, setup.sampling),
    alsoCovered: 'the line rules',
    mixes: 'results',
    progress,
  });
  if (resuming && prior !== undefined) {
    notePrior(prior, order, progress);
    // The errors file holds the failures that stay failed: reading another one would send
    // those lines again.
    if (prior.files.errors !== resolve(paths.errors) && paths.errors !== paths.output) {
      if (!force) {
        throw new CliError(
          `cannot resume: the run wrote its errors to ${prior.files.errors}, not ${resolve(paths.errors)}; pass -e ${JSON.stringify(prior.files.errors)} (or --force-resume)`,
          ExitCode.USAGE,
          'VOLLEY_ERR_RESUME_ERRORS_PATH',
        );
      }
      progress.log(`--force-resume: failures recorded in ${prior.files.errors} are not read`);
    }
  }

  // What the earlier run left.
  let previous: PreviousRun | undefined;
  let resume: ResumeIndex | undefined;
  if (resuming) {
    previous = await loadPreviousRun({
      results: paths.output,
      errors: paths.errors,
      spill: paths.spill,
    });
    const { repaired } = previous;
    for (const [file, bytes] of Object.entries(repaired)) {
      if (bytes > 0) progress.log(`repaired the ${file} file: cut a torn tail of ${bytes} bytes`);
    }
    if (previous.duplicateSuccesses > 0) {
      progress.log(
        `warning: ${previous.duplicateSuccesses} results repeat a custom_id already in ${paths.output}; the first of each is used`,
      );
    }
    resume = { runId, finished: previous.finished, force };
  }

  // Preflight: the whole file, before anything is sent.
  let pre: PreflightResult | undefined;
  if (setup.stdin === undefined) {
    const interrupted = new AbortController();
    signals.setHandler(() => interrupted.abort());
    try {
      pre = await preflight(options.input, {
        rules: setup.rules,
        maxLineBytes: setup.maxLineBytes,
        head: setup.head,
        resume,
        signal: interrupted.signal,
      });
    } catch (error) {
      if (interrupted.signal.aborted) {
        progress.log('interrupted during the preflight pass: nothing was sent');
        return signals.exitCode ?? ExitCode.INTERRUPTED;
      }
      throw error;
    }
    checkPreflight(options, pre, resuming);
    if (resuming) {
      operatorLog()?.info(
        {
          runId,
          output: paths.output,
          alreadyDone: pre.alreadyDone,
          toSend: pre.toSend,
          invalid: pre.invalid,
        },
        `resuming run ${runId}: ${pre.alreadyDone} lines already done, ${pre.toSend} to send`,
      );
    }
    // Information, not a problem: silenced with the progress display.
    if (progress.mode !== 'none') progress.log(describePreflight(options.input, pre, resuming));
    for (const warning of pre.warnings) {
      progress.log(`warning: ${warning.message} (${warning.code}; further ones not shown)`);
    }
  }
  // With `auto` no fixed number of lines is in flight to warn about: the limits follow the server.
  const pace =
    options.concurrency === 'auto'
      ? undefined
      : paceWarning({
          lines: pre?.toSend,
          concurrency: inFlightCeiling(options, 64),
          rpm: options.rpm,
          tpm: options.tpm,
          endpoints: options.baseUrl?.length ?? 1,
          requestsPerLine: setup.sampling?.samples ?? 1,
          timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        });
  if (pace !== undefined) progress.log(`warning: ${pace}`);

  // Tidy, open, and go.
  if (previous !== undefined && resume !== undefined) {
    if (previous.droppedErrors + (pre?.stale ?? 0) > 0) {
      await compactErrors(paths.errors, resume.finished);
    }
  }
  if (!resuming && options.overwrite) {
    for (const path of [paths.state, paths.spill]) {
      if (path !== undefined) await unlink(path).catch(() => undefined);
    }
  }
  // Cluster hook: `--cluster` spreads the lines over the cluster's workers (run/cluster-batch.ts).
  let clusterRun: ClusterBatchRun | undefined;
  const opened = await openBatch(options, progress, async (volley) => {
    if (options.cluster !== undefined) {
      // Loaded only here: the Redis client costs a plain run ~0.2 s of start-up CPU.
      const { startClusterBatch } = await import('../run/cluster-batch.js');
      clusterRun = await startClusterBatch(
        { ...options, cluster: options.cluster },
        volley,
        runId,
        progress,
      );
    }
    try {
      return await openFiles(options, paths, resuming, order, previous);
    } catch (error) {
      await clusterRun?.finish(false, undefined);
      throw error;
    }
  });
  const { volley, files } = opened;
  let run: BatchRun | undefined;
  const state: RunState | undefined =
    paths.state === undefined
      ? undefined
      : {
          version: 1,
          tool: 'volley',
          runId,
          createdAt: prior?.createdAt ?? new Date().toISOString(),
          updatedAt: new Date().toISOString(),
          status: 'running',
          order,
          config: {
            hash,
            endpoints: config.endpoints.map((e) =>
              e === 'embedded-simulator' ? e : displayEndpoint(e),
            ),
            model: config.model,
            ...(setup.sampling === undefined ? {} : { sampling: describeSampling(setup.sampling) }),
          },
          input: await inputIdentity(options.input),
          // Absolute: a resume from another directory must find the same files.
          files: {
            results: resolve(paths.output),
            errors: resolve(paths.errors),
            retry: paths.retry === undefined ? null : resolve(paths.retry),
            spill: paths.spill === undefined ? '' : resolve(paths.spill),
          },
          counts: { succeeded: 0, failed: 0, invalid: 0, pending: pre?.toSend ?? null },
          committed: { results: 0, errors: 0, retry: 0, spill: 0 },
        };
  const stateWriter = createStateWriter(
    paths.state,
    state,
    (s) => {
      const counts = run?.counts;
      if (counts !== undefined) {
        s.counts = {
          succeeded: counts.succeeded,
          failed: counts.failed,
          invalid: counts.invalid,
          pending:
            pre === undefined ? null : Math.max(0, pre.toSend - counts.succeeded - counts.failed),
        };
      }
      s.committed = {
        results: files.results.syncedBytes,
        errors: files.errors.syncedBytes,
        retry: files.retry?.syncedBytes ?? 0,
        spill: files.spill?.syncedBytes ?? 0,
      };
    },
    (m) => progress.log(m),
  );

  const journal = [files.results, files.errors, files.retry, files.spill].filter(
    (f, i, all): f is JournalFile => f !== undefined && all.indexOf(f) === i,
  );
  let reorder: ReorderBuffer | undefined;
  const outcome = await runPass(
    {
      opened,
      progress,
      state: stateWriter,
      syncFiles: () => journal,
      syncIntervalMs: options.syncIntervalMs,
      beforeTeardown: async (ended) => clusterRun?.finish(ended?.complete === true, ended?.summary),
      closers: [async () => reorder?.close(), ...journal.map((file) => () => file.close())],
      afterClose: async (ended) => {
        if (ended?.complete === true && files.spill !== undefined) {
          await unlink(files.spill.path).catch(() => undefined);
        }
        if (files.tempDir !== undefined) await rm(files.tempDir, { recursive: true, force: true });
      },
    },
    async (): Promise<BatchOutcome> => {
      if (order === 'input' && files.spill !== undefined) {
        const { results, errors } = files;
        reorder = createReorderBuffer({
          windowLines: options.reorderWindow ?? DEFAULT_REORDER_WINDOW,
          cacheBytes: REORDER_CACHE_BYTES,
          spill: files.spill,
          emit: (record) =>
            (record.target === 'results' ? results : errors).append(record.record).written,
          mustWait: () => results.queuedBytes + errors.queuedBytes > MAX_EMIT_QUEUE_BYTES,
        });
      }
      run = new BatchRun({
        volley,
        input: options.input,
        stdin: setup.stdin,
        // The preflight pass already counted prompt tokens; the sending pass need not again.
        rules:
          pre === undefined
            ? setup.rules
            : { defaults: setup.rules.defaults, inputFormat: setup.rules.inputFormat },
        sampling: setup.sampling,
        maxLineBytes: setup.maxLineBytes,
        concurrency: clusterRun?.concurrency ?? inFlightCeiling(options, 64),
        caller: clusterRun?.caller,
        strict: options.strict === true,
        graceMs: options.graceMs,
        stopAfterSameError: options.stopAfterSameError ?? DEFAULT_STOP_AFTER_SAME_ERROR,
        runId,
        files,
        reorder,
        pre,
        resume,
        progress,
        prices: setup.prices,
        signals,
      });
      return run.run();
    },
  );
  finishSummary(options, paths, progress, outcome);
  return outcome.exitCode;
}

/** The earlier run's configuration, for messages. */
function describePrior(prior: RunState, sampling: SamplingSettings | undefined): string {
  const sampledBefore = prior.config.sampling ?? describeSampling(undefined);
  const sampledNow = describeSampling(sampling);
  return (
    `endpoints ${prior.config.endpoints.join(', ')}, model ${prior.config.model ?? '(none)'}, ${sampledBefore}` +
    (sampledBefore === sampledNow ? '' : `; this run asks for ${sampledNow}`)
  );
}

/** What a resume keeps from the earlier run that this one would do otherwise. */
function notePrior(
  prior: RunState,
  order: 'completion' | 'input',
  progress: ProgressReporter,
): void {
  if (prior.order !== order) {
    progress.log(
      `note: the run began with --order ${prior.order}; records already written keep that order`,
    );
  }
  if (prior.status === 'finished' || prior.status === 'finished-with-errors') {
    progress.log('the earlier run finished; checking for lines to retry or added since');
  }
}

function checkPreflight(options: RunCommandOptions, pre: PreflightResult, resuming: boolean): void {
  refuseUnusableInput(options.input, pre, options.strict === true, {
    noneValid: 'is a valid request',
    listed: 3,
    ...(looksNotJsonl(pre) ? { hint: NOT_JSONL_HINT } : {}),
  });
  if (resuming && pre.conflicts.count > 0) {
    const examples = pre.conflicts.first
      .map((c) => `line ${c.lineNo} (${JSON.stringify(c.customId).slice(0, 60)})`)
      .join(', ');
    throw new CliError(
      `cannot resume: ${pre.conflicts.count} lines changed since their results were written (${examples}); a second result for the same custom_id would break exactly-once. Pass --force-resume to keep the earlier results, or --overwrite to start over`,
      ExitCode.USAGE,
      'VOLLEY_ERR_RESUME_CHANGED_LINES',
    );
  }
}

/** Every line failed to parse as JSON: the file is not JSONL at all (CSV, prompts, a log). */
function looksNotJsonl(pre: PreflightResult): boolean {
  return Object.keys(pre.byCode).every((code) => code.startsWith('VOLLEY_INPUT_JSON_'));
}

function describePreflight(input: string, pre: PreflightResult, resuming: boolean): string {
  const mb = (pre.stats.bytesRead / 1e6).toFixed(pre.stats.bytesRead < 1e7 ? 2 : 0);
  const parts = [
    `${input}: ${pre.stats.lines.toLocaleString('en-US')} lines, ${mb} MB`,
    `${pre.valid.toLocaleString('en-US')} valid`,
    `${pre.invalid.toLocaleString('en-US')} invalid`,
  ];
  if (pre.duplicates > 0) parts.push(`${pre.duplicates} duplicate custom_ids`);
  if (pre.stats.blankLines > 0) parts.push(`${pre.stats.blankLines} blank`);
  if (resuming) {
    parts.push(
      `${pre.alreadyDone.toLocaleString('en-US')} already done`,
      `${pre.toSend.toLocaleString('en-US')} to send`,
    );
  }
  return parts.join(', ');
}

interface RunFiles {
  results: JournalFile;
  errors: JournalFile;
  retry: JournalFile | undefined;
  spill: JournalFile | undefined;
  tempDir?: string;
}

async function openFiles(
  options: RunCommandOptions,
  paths: RunPaths,
  resuming: boolean,
  order: 'completion' | 'input',
  previous: PreviousRun | undefined,
): Promise<RunFiles> {
  const opened: JournalFile[] = [];
  const open = async (path: string, mode: { append?: boolean; overwrite?: boolean }) => {
    const file =
      path === '-'
        ? journalOverWriter(await openJsonlWriter('-'))
        : await openJournalFile(path, mode);
    opened.push(file);
    return file;
  };
  try {
    const mode = resuming ? { append: true } : { overwrite: options.overwrite };
    const results = await open(paths.output, mode);
    const errors = paths.errors === paths.output ? results : await open(paths.errors, mode);
    // The retry file is derived: every run rewrites it from the input and the errors.
    const retry =
      paths.retry === undefined
        ? undefined
        : await open(
            paths.retry,
            resuming ? { overwrite: true } : { overwrite: options.overwrite },
          );
    let spill: JournalFile | undefined;
    let tempDir: string | undefined;
    const needSpill = order === 'input' || (previous?.spilled ?? 0) > 0;
    if (needSpill) {
      if (paths.spill !== undefined) {
        spill = await open(paths.spill, resuming ? { append: true } : { overwrite: true });
      } else {
        tempDir = await mkdtemp(join(tmpdir(), 'volley-spill-'));
        spill = await open(join(tempDir, 'spill'), {});
      }
    }
    return { results, errors, retry, spill, ...(tempDir === undefined ? {} : { tempDir }) };
  } catch (error) {
    for (const file of opened) await file.close().catch(() => undefined);
    throw error;
  }
}

async function inputIdentity(input: string): Promise<RunState['input']> {
  if (input === '-') return { path: '-', size: null, mtimeMs: null };
  const st = await stat(input);
  return { path: input, size: st.size, mtimeMs: st.mtimeMs };
}

function finishSummary(
  options: RunCommandOptions,
  paths: RunPaths,
  progress: ProgressReporter,
  outcome: BatchOutcome,
): void {
  const summary: RunSummary = {
    ...outcome.summary,
    outputPath: paths.output,
    ...(paths.errors === paths.output ? {} : { errorsPath: paths.errors }),
    ...(paths.retry === undefined ? {} : { retryPath: paths.retry }),
  };
  // Standard output cannot be resumed (there is no state file): no hint to give.
  if (paths.state !== undefined && shouldHintResume(summary)) {
    summary.resumeCommand = resumeCommandLine(process.argv.slice(2));
  }
  progress.finish(summary);
  if (options.json) {
    process.stdout.write(
      `${JSON.stringify({ version: 1, exitCode: outcome.exitCode, ...summaryForJson(summary) })}\n`,
    );
  }
}

/** What the dry run needs: everything a run does but its output paths. */
type DryRunSetup = Omit<RunSetup, 'paths'>;

/** `--dry-run`: the preflight pass with token estimates; nothing sent, nothing written. */
async function dryRun(options: RunCommandOptions, setup: DryRunSetup): Promise<number> {
  const interrupted = new AbortController();
  setup.signals.setHandler(() => interrupted.abort());
  let pre: PreflightResult;
  try {
    pre = await preflight(options.input, {
      rules: setup.rules,
      maxLineBytes: setup.maxLineBytes,
      head: setup.head,
      estimateTokens: setup.rules.countTokens,
      signal: interrupted.signal,
      ...(setup.stdin === undefined ? {} : { stdin: setup.stdin }),
    });
  } catch (error) {
    if (interrupted.signal.aborted) return setup.signals.exitCode ?? ExitCode.INTERRUPTED;
    throw error;
  }
  const perLine = pre.tokens ?? { prompt: 0, maxOutput: 0, byModel: new Map() };
  const tokens = setup.sampling === undefined ? perLine : scaleEstimate(perLine, setup.sampling);
  let cost: { prompt: number; maxOutput: number } | undefined;
  if (setup.prices !== undefined) {
    cost = { prompt: 0, maxOutput: 0 };
    for (const [model, t] of tokens.byModel) {
      cost.prompt += setup.prices.cost(model, t.prompt, 0) ?? 0;
      cost.maxOutput += setup.prices.cost(model, 0, t.maxOutput) ?? 0;
    }
  }
  const exitCode =
    pre.valid === 0 ? ExitCode.USAGE : pre.invalid > 0 ? ExitCode.SOME_FAILED : ExitCode.OK;
  const report = {
    version: 1,
    dryRun: true,
    exitCode,
    input: options.input,
    lines: pre.stats.lines,
    blankLines: pre.stats.blankLines,
    bytes: pre.stats.bytesRead,
    valid: pre.valid,
    invalid: pre.invalid,
    duplicates: pre.duplicates,
    byCode: pre.byCode,
    issues: pre.firstIssues.map((i) => ({
      code: i.code,
      line: i.lineNo,
      offset: i.offset,
      message: i.message,
      snippet: i.snippet,
    })),
    ...(setup.sampling === undefined ? {} : { sampling: describeSampling(setup.sampling) }),
    promptTokens: tokens.prompt,
    maxCompletionTokens: tokens.maxOutput,
    byModel: Object.fromEntries(tokens.byModel),
    ...(cost === undefined
      ? {}
      : { costUsd: { prompt: cost.prompt, upTo: cost.prompt + cost.maxOutput } }),
  };
  for (const issue of pre.firstIssues) setup.progress.log(`${issue.code} ${issue.message}`);
  if (pre.invalid > pre.firstIssues.length) {
    setup.progress.log(`... and ${pre.invalid - pre.firstIssues.length} more bad lines`);
  }
  process.stderr.write(formatDryRun(report));
  if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  return exitCode;
}
