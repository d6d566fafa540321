/**
 * The sending pass of `volley run`: input lines to requests to records, with bounded memory.
 *
 *   reader ─► disposition (preflight) ─► volley.request ─┬─► results ─┐  completion order: straight
 *      ▲          or live checks (stdin)   (window of    └─► errors  ─┤  to the journal files
 *      │                                    lines)                    │  input order: through the
 *      └──── pulled only while the window has room ◄─────────────────┘  reorder buffer
 *
 * The window counts lines between being read and their record being written (not just requests
 * in flight), so memory is bounded from the reader to the writer. Lines stopped by an auth or
 * quota failure, an interrupt or a write failure get no record: they stay pending for `--resume`.
 */

import { createHistogram } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { CallResult, Volley } from 'volley';
import { failureDetails, leavesLinePending } from '../batch/failure.js';
import { ExitCode } from '../exit-codes.js';
import type { BatchRequest } from '../jsonl/batch-line.js';
import { duplicateCustomIdIssue, parseBatchLine } from '../jsonl/batch-line.js';
import type { DuplicateTracker } from '../jsonl/duplicate-tracker.js';
import { createDuplicateTracker } from '../jsonl/duplicate-tracker.js';
import type { JournalFile, LineText } from '../jsonl/journal.js';
import type { InputIssue, RawLine, RawTextLine, ReaderStats } from '../jsonl/reader.js';
import type { ProgressReporter, ProgressSnapshot, RunSummary } from '../progress.js';
import type { LineRules, PreflightResult, ResumeIndex } from './lines.js';
import {
  Disposition,
  judgeResume,
  parseLine,
  promptTooLongIssue,
  readRunBatches,
} from './lines.js';
import { PassLedger, progressSnapshot, SameErrorRule } from './pass-common.js';

import type { PriceTable } from './prices.js';
import { badLineRecord, errorRecord, recordId, successRecordPieces } from './record.js';
import type { OrderedRecord, ReorderBuffer } from './reorder-buffer.js';
import { readSpillRecord } from './resume.js';
import type { SampleMeta, Spend } from './samples/sampler.js';
import { LineSampler } from './samples/sampler.js';
import type { SamplingSettings } from './samples/settings.js';
import type { SignalGate } from './signals.js';
import type { RunStatus } from './state.js';

/** The files a run writes. `errors` may be the same object as `results` (stdout). */
export interface BatchRunFiles {
  results: JournalFile;
  errors: JournalFile;
  retry: JournalFile | undefined;
  /** The reorder spill, and on resume the previous run's. */
  spill: JournalFile | undefined;
}

/** Everything the sending pass needs. */
export interface BatchRunContext {
  volley: Volley;
  input: string;
  stdin?: Readable | undefined;
  /** Rules for the sending pass (the prompt-token cap only when there was no preflight). */
  rules: LineRules;
  /** `--samples`: each line sent that many times, one record made of the samples. */
  sampling?: SamplingSettings | undefined;
  maxLineBytes: number;
  concurrency: number;
  strict: boolean;
  graceMs: number;
  /** `--stop-after-same-error`: 0 disables the rule (see {@link SameErrorRule}). */
  stopAfterSameError: number;
  runId: string;
  files: BatchRunFiles;
  reorder: ReorderBuffer | undefined;
  /** Undefined for standard input: lines are then judged as they arrive. */
  pre: PreflightResult | undefined;
  resume: ResumeIndex | undefined;
  progress: ProgressReporter;
  prices: PriceTable | undefined;
  signals: SignalGate;
  /** Hook: lines go to a cluster's workers instead of `volley` (run/cluster-batch.ts). */
  caller?: LineCaller | undefined;
}

/** Where lines go instead of the local runtime; `written` once a line's record is written. */
export interface LineCaller {
  call(lineNo: number, request: BatchRequest): Promise<LineAnswer>;
  written(lineNo: number): void;
  /** The pass reads no more lines (a signal, a stop): take no more work in this process. */
  stopping(): void;
}

/** How the pass ended. */
export interface BatchOutcome {
  exitCode: number;
  status: RunStatus;
  summary: RunSummary;
  /** Every expected record was written and nothing is pending: the spill can go. */
  complete: boolean;
}

/** What a line's successful call (or samples) gives its record and the run's counters. */
export interface LineAnswer {
  response: Pick<CallResult, 'status' | 'requestId' | 'body' | 'bodyText'>;
  /** A sampled line's `volley` record field. */
  volley?: SampleMeta;
  latencyMs: number;
  /** Completed calls, priced for the cost estimate. */
  spend: Spend[];
}

/** Lines in the window per unit of concurrency: enough to keep every slot busy while results drain. */
const WINDOW_PER_SLOT = 2;
const PROGRESS_UPDATE_MS = 200;

/**
 * Runs the sending pass to its end (all lines done, an interrupt, a stop or a write failure).
 *
 * @example
 * const outcome = await new BatchRun(ctx).run();
 * process.exitCode = outcome.exitCode;
 */
export class BatchRun {
  readonly #ctx: BatchRunContext;
  readonly #ledger: PassLedger;
  readonly #latency = createHistogram();
  readonly #warned = new Set<string>();
  readonly #abortReader = new AbortController();
  readonly #stats: ReaderStats = { lines: 0, blankLines: 0, issues: 0, bytesRead: 0 };
  #ids: DuplicateTracker | undefined;
  #changedKept = 0;
  #costUsd = 0;
  #inWindow = 0;
  #slotFreed: (() => void) | undefined;
  #stopped: Promise<void>;
  #stop!: () => void;
  readonly #sampler: LineSampler | undefined;

  constructor(ctx: BatchRunContext) {
    this.#ctx = ctx;
    this.#ledger = new PassLedger(ctx, () => this.#requestStop());
    this.#sampler =
      ctx.sampling === undefined
        ? undefined
        : new LineSampler(ctx.volley, ctx.sampling, () => this.#ledger.shouldStop());
    this.#ledger.counts.alreadyDone = ctx.pre?.alreadyDone ?? 0;
    this.#ledger.counts.alreadyFailed = ctx.pre?.alreadyFailed ?? 0;
    this.#stopped = new Promise<void>((resolve) => {
      this.#stop = resolve;
    });
    if (ctx.pre === undefined) this.#ids = createDuplicateTracker();
  }

  /** Records written in this run so far, for the state file's checkpoints. */
  get counts(): { succeeded: number; failed: number; invalid: number } {
    return {
      succeeded: this.#ledger.counts.succeeded,
      failed: this.#ledger.counts.failed,
      invalid: this.#ledger.counts.invalid,
    };
  }

  async run(): Promise<BatchOutcome> {
    const { volley, progress, signals } = this.#ctx;
    const ticker = setInterval(() => progress.update(this.#snapshot()), PROGRESS_UPDATE_MS);
    ticker.unref();
    this.#ledger.watch(signals);
    volley.on('error', (error) => progress.log(`giving up: ${error.message}`));
    try {
      await this.#feed();
      while (this.#inWindow > 0) await this.#nextSlot();
      try {
        await this.#ctx.reorder?.settle();
      } catch (error) {
        this.#ledger.onWriteError(error);
      }
      await volley.close();
    } finally {
      clearInterval(ticker);
      this.#ledger.dispose();
    }
    return this.#finish();
  }

  // -------------------------------------------------------------------------------------------
  // Intake

  async #feed(): Promise<void> {
    const { pre, reorder, maxLineBytes, input } = this.#ctx;
    // The window bounds requests, not lines: a sampled line sends several at once.
    const requestsPerLine = this.#ctx.sampling?.samples ?? 1;
    const window = Math.max(
      1,
      Math.ceil((this.#ctx.concurrency * WINDOW_PER_SLOT) / requestsPerLine),
    );
    const lines = readRunBatches(
      input,
      {
        signal: this.#abortReader.signal,
        maxLineBytes,
        stats: this.#stats,
        ...(this.#ctx.stdin === undefined ? {} : { stdin: this.#ctx.stdin }),
      },
      this.#ctx.rules.inputFormat,
    );
    try {
      reading: for await (const batch of lines) {
        for (const raw of batch) {
          if (this.#ledger.shouldStop()) break reading;
          if (pre !== undefined && raw.lineNo > pre.stats.lines) {
            this.#ledger.leftUnread = true;
            break reading;
          }
          const room = reorder?.waitForRoom(raw.lineNo);
          if (room !== undefined) await Promise.race([room, this.#stopped]);
          if (this.#ledger.shouldStop()) break reading;
          this.#handle(raw);
          while (this.#inWindow >= window) await this.#nextSlot();
        }
      }
    } catch (error) {
      if (!this.#abortReader.signal.aborted) throw error;
    }
  }

  /** Synchronous: a line costs the feed loop no promise of its own. */
  #handle(raw: RawLine): void {
    const { pre, rules, reorder } = this.#ctx;
    const disposition = pre?.dispositions[raw.lineNo] ?? Disposition.SEND;
    switch (disposition) {
      case Disposition.DONE:
      case Disposition.KEPT_CHANGED:
        reorder?.skip(raw.lineNo);
        return;
      case Disposition.DONE_FAILED:
        reorder?.skip(raw.lineNo);
        this.#writeRetryOf(raw);
        return;
      case Disposition.SPILLED:
        this.#placeSpilled(raw);
        return;
      case Disposition.DUPLICATE:
      case Disposition.PROMPT_TOO_LONG: {
        const parsed = parseBatchLine(raw as RawTextLine, rules.defaults);
        if (parsed.ok) {
          const text = (raw as RawTextLine).text;
          const issue =
            disposition === Disposition.DUPLICATE
              ? duplicateCustomIdIssue(raw as RawTextLine, parsed.request.customId)
              : promptTooLongIssue(
                  raw as RawTextLine,
                  parsed.request.customId,
                  -1,
                  rules.maxPromptTokens ?? 0,
                );
          this.#reject(raw.lineNo, issue, text);
          return;
        }
        break; // The line changed since the preflight pass: judge it afresh.
      }
    }
    const parsed = parseLine(raw, rules);
    if (!parsed.ok) {
      this.#reject(raw.lineNo, parsed.issue, parsed.text);
      return;
    }
    // The preflight pass has already shown each kind of warning once.
    if (parsed.warnings !== undefined && pre === undefined) this.#warn(parsed.warnings);
    const { request } = parsed;
    if (pre === undefined && !this.#judgeLive(raw, request, parsed.text)) return;
    this.#send(raw.lineNo, request, parsed.text);
  }

  /** Standard input: duplicates and resume state are judged as lines arrive. True to send. */
  #judgeLive(raw: RawLine, request: BatchRequest, text: string): boolean {
    const { resume, reorder } = this.#ctx;
    if (this.#ids !== undefined && !this.#ids.add(request.customId)) {
      this.#reject(raw.lineNo, duplicateCustomIdIssue(raw as RawTextLine, request.customId), text);
      return false;
    }
    if (resume === undefined) return true;
    const verdict = judgeResume(
      resume,
      request.customId,
      recordId(resume.runId, request.customId, text),
    );
    if ('conflict' in verdict || verdict.disposition === Disposition.KEPT_CHANGED) {
      // Without a preflight pass there is no refusing up front: keep the earlier result.
      this.#changedKept++;
      this.#ledger.counts.alreadyDone++;
      reorder?.skip(raw.lineNo);
      return false;
    }
    switch (verdict.disposition) {
      case Disposition.SEND:
        return true;
      case Disposition.DONE:
        this.#ledger.counts.alreadyDone++;
        reorder?.skip(raw.lineNo);
        return false;
      case Disposition.DONE_FAILED:
        this.#ledger.counts.alreadyDone++;
        this.#ledger.counts.alreadyFailed++;
        reorder?.skip(raw.lineNo);
        this.#writeRetry(text, request.customId, raw.lineNo);
        return false;
      case Disposition.SPILLED:
        this.#ledger.counts.alreadyDone++;
        this.#queueSpilled(raw.lineNo, verdict.slot, text, request.customId);
        return false;
    }
  }

  #warn(warnings: InputIssue[]): void {
    for (const warning of warnings) {
      if (this.#warned.has(warning.code)) continue;
      this.#warned.add(warning.code);
      this.#ctx.progress.log(
        `warning: ${warning.message} (${warning.code}; further ones not shown)`,
      );
    }
  }

  // -------------------------------------------------------------------------------------------
  // Records

  #send(lineNo: number, request: BatchRequest, text: string): void {
    const { reorder, runId } = this.#ctx;
    const id = recordId(runId, request.customId, text);
    this.#inWindow++;
    reorder?.expect(lineNo);
    void this.#settle(lineNo, id, request, text);
  }

  /**
   * A sent line to its end: its record (or its pending state), then its window slot back. One
   * async function rather than a `.then/.catch/.finally` chain: three promises and four closures
   * less per line, all of which lived as long as the request.
   */
  async #settle(lineNo: number, id: string, request: BatchRequest, text: string): Promise<void> {
    try {
      let answer: LineAnswer;
      try {
        answer = await this.#call(lineNo, request);
      } catch (error) {
        await this.#onFailure(lineNo, id, request, text, error);
        return;
      }
      await this.#onSuccess(lineNo, id, request, answer);
    } catch (error) {
      this.#ledger.onWriteError(error);
    } finally {
      this.#ctx.caller?.written(lineNo);
      this.#release();
    }
  }

  /** A line's request, or its samples (`--samples`). */
  async #call(lineNo: number, request: BatchRequest): Promise<LineAnswer> {
    if (this.#ctx.caller !== undefined) return this.#ctx.caller.call(lineNo, request);
    if (this.#sampler !== undefined) return this.#sampler.sample(request);
    const result = await this.#ctx.volley.request({
      path: request.url,
      body: request.body,
      raw: true,
    });
    const model = typeof request.body.model === 'string' ? request.body.model : '';
    return {
      response: result,
      latencyMs: result.latencyMs,
      spend: [{ model, usage: result.usage }],
    };
  }

  async #onSuccess(
    lineNo: number,
    id: string,
    request: BatchRequest,
    answer: LineAnswer,
  ): Promise<void> {
    await this.#put(
      lineNo,
      'results',
      successRecordPieces(id, request.customId, answer.response, answer.volley),
    );
    this.#ledger.counts.succeeded++;
    this.#ledger.observe(undefined);
    this.#latency.record(Math.max(1, Math.round(answer.latencyMs)));
    const { prices } = this.#ctx;
    if (prices === undefined) return;
    for (const { model, usage } of answer.spend) {
      if (usage === undefined) continue;
      this.#costUsd +=
        prices.cost(model, usage.prompt_tokens ?? 0, usage.completion_tokens ?? 0) ?? 0;
    }
  }

  async #onFailure(
    lineNo: number,
    id: string,
    request: BatchRequest,
    text: string,
    error: unknown,
  ): Promise<void> {
    if (leavesLinePending(error, this.#ledger.shouldStop())) {
      this.#ledger.counts.leftPending++;
      return;
    }
    const { code, message, status, ...details } = failureDetails(error);
    const record = errorRecord(id, request.customId, {
      code,
      message,
      status,
      ...details,
      line: lineNo,
    });
    this.#writeRetry(text, request.customId, lineNo);
    this.#ledger.observe(error);
    await this.#put(lineNo, 'errors', record);
    this.#ledger.counts.failed++;
    this.#ledger.countError({ code, status, message, customId: request.customId });
  }

  /** A bad input line: its error record goes through the window like a request's. */
  #reject(lineNo: number, issue: InputIssue, text: string | undefined): void {
    const { customId, record } = badLineRecord(this.#ctx.runId, lineNo, issue, text);
    this.#inWindow++;
    this.#put(lineNo, 'errors', record)
      .then(() => {
        this.#ledger.counts.invalid++;
        this.#ledger.countError({ code: issue.code, message: issue.message, customId });
      })
      .catch((error: unknown) => this.#ledger.onWriteError(error))
      .finally(() => this.#release());
    if (this.#ctx.strict && this.#ledger.strictIssue === undefined) {
      this.#ledger.strictIssue = issue;
      this.#ctx.progress.log(`--strict: stopping at line ${lineNo} (${issue.code})`);
      this.#requestStop();
    }
  }

  #put(lineNo: number, target: 'results' | 'errors', record: LineText): Promise<void> {
    const { reorder, files } = this.#ctx;
    if (reorder !== undefined) {
      // The reorder buffer keeps and spills whole records.
      const whole = typeof record === 'string' ? record : record.join('');
      return reorder.complete(lineNo, { target, record: whole });
    }
    return (target === 'results' ? files.results : files.errors).append(record).written;
  }

  /** A record finished by an earlier run and left in the spill: write it now. */
  #placeSpilled(raw: RawLine): void {
    const { resume } = this.#ctx;
    if (resume === undefined || 'issue' in raw) return;
    const parsed = parseBatchLine(raw, this.#ctx.rules.defaults);
    if (!parsed.ok) return;
    const hit = resume.finished.lookup(
      parsed.request.customId,
      recordId(resume.runId, parsed.request.customId, raw.text),
    );
    if (!hit.found) return;
    this.#queueSpilled(raw.lineNo, hit.slot, raw.text, parsed.request.customId);
  }

  #queueSpilled(lineNo: number, slot: number, text: string, customId: string): void {
    const { resume, reorder, files } = this.#ctx;
    if (resume === undefined || files.spill === undefined) return;
    const offset = resume.finished.extraA(slot);
    // A negative length marks a failure (resume.ts): its input line belongs in the retry file.
    const signedLength = resume.finished.extraB(slot);
    const length = Math.abs(signedLength);
    if (signedLength < 0) {
      this.#ledger.counts.alreadyFailed++;
      this.#writeRetry(text, customId, lineNo);
    }
    if (reorder !== undefined) {
      reorder.completeSpilled(lineNo, offset, length);
      return;
    }
    // Completion order (the earlier run used input order): copy it across now.
    this.#inWindow++;
    readSpillRecord(files.spill.path, offset, length)
      .then(
        (record: OrderedRecord) =>
          (record.target === 'results' ? files.results : files.errors).append(record.record)
            .written,
      )
      .catch((error: unknown) => this.#ledger.onWriteError(error))
      .finally(() => this.#release());
  }

  /** The retry line of a line that failed for good in an earlier run (the file is rewritten). */
  #writeRetryOf(raw: RawLine): void {
    if (this.#ctx.files.retry === undefined || 'issue' in raw) return;
    const parsed = parseBatchLine(raw, this.#ctx.rules.defaults);
    if (parsed.ok) this.#writeRetry(raw.text, parsed.request.customId, raw.lineNo);
  }

  #writeRetry(text: string, customId: string, lineNo: number): void {
    const { retry } = this.#ctx.files;
    if (retry === undefined) return;
    retry
      .append(retryLine(text, customId, lineNo))
      .written.catch((error: unknown) => this.#ledger.onWriteError(error));
  }

  // -------------------------------------------------------------------------------------------
  // Flow control

  #release(): void {
    this.#inWindow--;
    this.#slotFreed?.();
  }

  #nextSlot(): Promise<void> {
    return new Promise((resolve) => {
      this.#slotFreed = resolve;
    });
  }

  #requestStop(): void {
    this.#abortReader.abort();
    this.#stop();
    this.#ctx.caller?.stopping();
  }

  // -------------------------------------------------------------------------------------------
  // Reporting

  #snapshot(): ProgressSnapshot {
    const { pre } = this.#ctx;
    const snapshot = progressSnapshot(this.#ctx.volley, this.counts, this.#ledger.startedAt);
    if (pre !== undefined) snapshot.total = pre.toSend + pre.invalid;
    if (this.#ctx.prices !== undefined) snapshot.costUsd = this.#costUsd;
    return snapshot;
  }

  #finish(): BatchOutcome {
    const { pre, progress, reorder } = this.#ctx;
    if (this.#changedKept > 0) {
      progress.log(
        `${this.#changedKept} lines changed since the earlier run; their earlier results were kept`,
      );
    }
    if (this.#ledger.leftUnread) {
      progress.log(
        'the input grew during the run; lines added after the preflight pass were not read',
      );
    }
    const { status, exitCode, summary } = this.#ledger.end(pre);
    if (this.#ctx.prices !== undefined) summary.costUsd = this.#costUsd;
    if (this.#sampler !== undefined) summary.sampleCalls = this.#sampler.calls;
    if (this.#ledger.counts.succeeded > 0) {
      const ms = (p: number): number => this.#latency.percentile(p);
      summary.latencyMs = { p50: ms(50), p90: ms(90), p99: ms(99), max: this.#latency.max };
    }
    const complete =
      exitCode === ExitCode.OK || exitCode === ExitCode.SOME_FAILED
        ? (reorder?.pending ?? 0) === 0
        : false;
    return { exitCode, status, summary, complete };
  }
}

/**
 * The retry-file line for a failed line: the input line as written, so it can be fed back. A
 * convenience line without a `custom_id` gets its implicit one (`line-<n>`) written in, so the
 * retried result keeps the id the first run reported.
 */
export function retryLine(text: string, customId: string, lineNo: number): string {
  if (customId !== `line-${lineNo}`) return text;
  try {
    const value = JSON.parse(text) as Record<string, unknown>;
    if (Object.hasOwn(value, 'custom_id')) return text;
  } catch {
    return text;
  }
  const brace = text.indexOf('{');
  return `${text.slice(0, brace + 1)}"custom_id":${JSON.stringify(customId)},${text.slice(brace + 1)}`;
}
