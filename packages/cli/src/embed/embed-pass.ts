/**
 * The sending pass of `volley embed`: input lines to vectors, with bounded memory.
 *
 *   reader ─► LineJudge ─► texts ─► volley.embedStream ─► vectors in input order ─► VectorSink
 *     ▲        (bad, duplicate      (packed batches,        │
 *     │         or done lines        sliding window)        └─ a batch rejected as a whole (400,
 *     │         never reach it)                                413, 422): each input again alone
 *     └── pulled only as the window has room
 *
 * `embedStream` pulls texts only while its window of batches has room, so at most a window of
 * texts sits between the reader and the sink. Lines stopped by an auth or quota failure, an
 * interrupt or a write failure get no record: they stay pending for `--resume`.
 */

import type { Readable } from 'node:stream';
import { isRefusedContent } from '@volley/core';
import type { EmbedOptions, Volley } from 'volley';
import { ErrorCode, isVolleyError } from 'volley';
import { failureDetails, leavesLinePending } from '../batch/failure.js';
import type { DuplicateTracker } from '../jsonl/duplicate-tracker.js';
import { createDuplicateTracker } from '../jsonl/duplicate-tracker.js';
import type { JournalFile } from '../jsonl/journal.js';
import type { InputIssue, RawLine, RawTextLine, ReaderStats } from '../jsonl/reader.js';
import { readJsonlLines } from '../jsonl/reader.js';
import type { ProgressReporter, ProgressSnapshot, RunSummary } from '../progress.js';
import type { FinishedSet } from '../run/finished-set.js';
import { RecordKind } from '../run/finished-set.js';
import { PassLedger, progressSnapshot, SameErrorRule } from '../run/pass-common.js';
import { badLineRecord, errorRecord, recordId } from '../run/record.js';
import type { SignalGate } from '../run/signals.js';
import type { RunStatus } from '../run/state.js';
import type { EmbedInputFormat, EmbedLine } from './input.js';
import { duplicateIdIssue, parseEmbedLine } from './input.js';
import type { VectorSink } from './vector-output.js';

/** What one input line calls for. */
export type LineVerdict =
  | { kind: 'send'; line: EmbedLine }
  | { kind: 'invalid'; issue: InputIssue; text: string | undefined }
  | { kind: 'done' }
  | { kind: 'done-failed' };

/**
 * Judges input lines in order: parses them, refuses repeated ids (the first line wins) and knows
 * what an earlier run finished. Both passes use a fresh one, so they agree on every line.
 */
export class LineJudge {
  readonly #ids: DuplicateTracker = createDuplicateTracker();
  readonly #format: EmbedInputFormat;
  readonly #model: string;
  readonly #finished: FinishedSet | undefined;

  constructor(format: EmbedInputFormat, model: string, finished: FinishedSet | undefined) {
    this.#format = format;
    this.#model = model;
    this.#finished = finished;
  }

  judge(raw: RawLine): LineVerdict {
    const parsed = parseEmbedLine(raw, this.#format, this.#model);
    const text = 'text' in raw ? raw.text : undefined;
    if (!parsed.ok) return { kind: 'invalid', issue: parsed.issue, text };
    const { line } = parsed;
    if (!this.#ids.add(line.id)) {
      // Only a framed text line parses, so `raw` is one here.
      return { kind: 'invalid', issue: duplicateIdIssue(raw as RawTextLine, line.id), text };
    }
    switch (this.#finished?.kindOf(line.id) ?? 0) {
      case RecordKind.SUCCESS:
        return { kind: 'done' };
      case RecordKind.FINAL_ERROR:
        return { kind: 'done-failed' };
      default:
        return { kind: 'send', line };
    }
  }
}

/** Counts of a whole input, from the preflight pass. */
export interface EmbedSurvey {
  lines: number;
  blankLines: number;
  bytes: number;
  valid: number;
  invalid: number;
  toSend: number;
  alreadyDone: number;
  alreadyFailed: number;
  /** The first few bad lines, for messages. */
  firstIssues: InputIssue[];
}

const MAX_LISTED_ISSUES = 10;

/** Reads the whole input once, judging every line, before anything is sent. */
export async function surveyInput(
  input: string,
  judge: LineJudge,
  /** `head`: the file's first bytes, already read by the file check. */
  options: { maxLineBytes: number; signal?: AbortSignal; head?: Uint8Array | undefined },
): Promise<EmbedSurvey> {
  const stats: ReaderStats = { lines: 0, blankLines: 0, issues: 0, bytesRead: 0 };
  const survey: EmbedSurvey = {
    lines: 0,
    blankLines: 0,
    bytes: 0,
    valid: 0,
    invalid: 0,
    toSend: 0,
    alreadyDone: 0,
    alreadyFailed: 0,
    firstIssues: [],
  };
  for await (const raw of readJsonlLines(input, { ...options, stats })) {
    const verdict = judge.judge(raw);
    if (verdict.kind === 'invalid') {
      survey.invalid++;
      if (survey.firstIssues.length < MAX_LISTED_ISSUES) survey.firstIssues.push(verdict.issue);
      continue;
    }
    survey.valid++;
    if (verdict.kind === 'send') survey.toSend++;
    else survey.alreadyDone++;
    if (verdict.kind === 'done-failed') survey.alreadyFailed++;
  }
  survey.lines = stats.lines;
  survey.blankLines = stats.blankLines;
  survey.bytes = stats.bytesRead;
  return survey;
}

/** Everything the sending pass needs. */
export interface EmbedPassContext {
  volley: Volley;
  input: string;
  stdin?: Readable | undefined;
  judge: LineJudge;
  /** Model, dimensions and packing of every request. */
  embed: EmbedOptions;
  maxLineBytes: number;
  strict: boolean;
  graceMs: number;
  /** `--stop-after-same-error`: 0 disables the rule (see {@link SameErrorRule}). */
  stopAfterSameError: number;
  runId: string;
  sink: VectorSink;
  errors: JournalFile;
  /** Undefined for standard input (no preflight pass). */
  survey: EmbedSurvey | undefined;
  progress: ProgressReporter;
  signals: SignalGate;
}

/** How the pass ended. */
export interface EmbedOutcome {
  exitCode: number;
  status: RunStatus;
  summary: RunSummary;
}

interface Pending {
  id: string;
  text: string;
  lineNo: number;
}

/** Bytes queued for the disk past which the pass waits for the writer. */
const MAX_QUEUED_BYTES = 16 * 1024 * 1024;
const PROGRESS_UPDATE_MS = 200;

/**
 * Runs the sending pass to its end (every line done, an interrupt, a stop or a write failure).
 *
 * @example
 * const outcome = await new EmbedPass(ctx).run();
 * process.exitCode = outcome.exitCode;
 */
export class EmbedPass {
  readonly #ctx: EmbedPassContext;
  readonly #abortReader = new AbortController();
  readonly #ledger: PassLedger;
  /** Texts handed to embedStream, in order, until their vector or error comes back. */
  readonly #waiting: Pending[] = [];
  #waitingHead = 0;
  /** Results consumed so far: the index the next one must carry. */
  #yielded = 0;
  /** Consecutive failed items that share one error object: one batch. */
  #failedBatch: { error: Error; items: Pending[] } | undefined;
  /** Writes and single-input retries not yet settled. */
  readonly #unsettled = new Set<Promise<void>>();
  #isolated = 0;

  constructor(ctx: EmbedPassContext) {
    this.#ctx = ctx;
    this.#ledger = new PassLedger(ctx, () => this.#abortReader.abort());
  }

  async run(): Promise<EmbedOutcome> {
    const { volley, progress, signals } = this.#ctx;
    const ticker = setInterval(() => progress.update(this.#snapshot()), PROGRESS_UPDATE_MS);
    ticker.unref();
    this.#ledger.watch(signals);
    try {
      for await (const item of volley.embedStream(this.#texts(), this.#ctx.embed)) {
        const pending = this.#waiting[this.#waitingHead];
        // embedStream yields every text once, in the order it was read: the queue mirrors that.
        if (pending === undefined || item.index !== this.#yielded++) {
          throw new Error(`embed pass: result ${item.index} does not match the texts sent`);
        }
        this.#advanceWaiting();
        if ('error' in item) {
          if (this.#failedBatch?.error === item.error) this.#failedBatch.items.push(pending);
          else {
            this.#settleFailedBatch();
            this.#failedBatch = { error: item.error, items: [pending] };
          }
          continue;
        }
        this.#settleFailedBatch();
        await this.#onVector(pending, item.vector);
      }
      this.#settleFailedBatch();
      while (this.#unsettled.size > 0) await Promise.all(this.#unsettled);
      await volley.close();
    } finally {
      clearInterval(ticker);
      this.#ledger.dispose();
    }
    return this.#finish();
  }

  /** The texts to embed, read as embedStream asks for them. */
  async *#texts(): AsyncGenerator<string> {
    const { input, stdin, maxLineBytes, judge } = this.#ctx;
    const lines = readJsonlLines(input, {
      signal: this.#abortReader.signal,
      maxLineBytes,
      ...(stdin === undefined ? {} : { stdin }),
    });
    try {
      for await (const raw of lines) {
        if (this.#ledger.shouldStop()) return;
        const verdict = judge.judge(raw);
        switch (verdict.kind) {
          case 'invalid':
            this.#reject(raw.lineNo, verdict.issue, verdict.text);
            break;
          case 'done':
            this.#ledger.counts.alreadyDone++;
            break;
          case 'done-failed':
            this.#ledger.counts.alreadyDone++;
            this.#ledger.counts.alreadyFailed++;
            break;
          case 'send':
            this.#waiting.push({ ...verdict.line, lineNo: raw.lineNo });
            yield verdict.line.text;
        }
      }
    } catch (error) {
      if (!this.#abortReader.signal.aborted) throw error;
    }
  }

  #advanceWaiting(): void {
    this.#waitingHead++;
    // Drop the consumed head now and then, not on every item (shift is O(n)).
    if (this.#waitingHead >= 4096 && this.#waitingHead * 2 >= this.#waiting.length) {
      this.#waiting.splice(0, this.#waitingHead);
      this.#waitingHead = 0;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Records

  async #onVector(item: Pending, vector: Float32Array): Promise<void> {
    const { sink } = this.#ctx;
    const problem = sink.problemWith(vector);
    if (problem !== undefined) {
      this.#recordFailure(item, {
        code: ErrorCode.BAD_RESPONSE,
        message: `line ${item.lineNo}: ${problem}`,
        retryable: false,
      });
      return;
    }
    this.#ledger.observe(undefined);
    const written = sink.write(item.id, vector).then(
      () => {
        this.#ledger.counts.succeeded++;
      },
      (error: unknown) => this.#ledger.onWriteError(error),
    );
    this.#track(written);
    if (sink.queuedBytes > MAX_QUEUED_BYTES) await written;
  }

  /**
   * A batch that failed as a whole. When the server refused what it held (one text too long, an
   * input it cannot tokenize), every input of it is sent again on its own, so one bad text costs
   * one error record, not a whole batch of them.
   */
  #settleFailedBatch(): void {
    const batch = this.#failedBatch;
    if (batch === undefined) return;
    this.#failedBatch = undefined;
    const { error, items } = batch;
    const isolate =
      items.length > 1 &&
      isVolleyError(error) &&
      isRefusedContent(error) &&
      !this.#ledger.shouldStop();
    for (const item of items) {
      if (isolate) this.#embedAlone(item);
      else this.#onFailure(item, error);
    }
  }

  #embedAlone(item: Pending): void {
    this.#isolated++;
    const { volley, embed } = this.#ctx;
    const settled = volley
      .embed([item.text], { ...embed, batchSize: 1 })
      .then(async (result) => {
        const failure = result.errors[0];
        if (failure !== undefined) this.#onFailure(item, failure.error);
        else await this.#onVector(item, result.vectors[0] as Float32Array);
      })
      .catch((error: unknown) => this.#onFailure(item, error));
    this.#track(settled);
  }

  #onFailure(item: Pending, error: unknown): void {
    if (leavesLinePending(error, this.#ledger.shouldStop())) {
      this.#ledger.counts.leftPending++;
      return;
    }
    // Embed records name no attempts: a text's calls are its batch's, shared with other texts.
    const { code, message, status, retryable, serverCode } = failureDetails(error);
    this.#recordFailure(item, { code, message, status, retryable, serverCode });
    this.#ledger.observe(error);
  }

  /** Appends an error record for a line that was sent (or whose vector was unusable). */
  #recordFailure(
    item: Pending,
    details: {
      code: string;
      message: string;
      status?: number | undefined;
      retryable: boolean;
      serverCode?: string | undefined;
    },
  ): void {
    const { runId, errors } = this.#ctx;
    const record = errorRecord(recordId(runId, item.id, item.text), item.id, {
      ...details,
      line: item.lineNo,
    });
    this.#track(
      errors.append(record).written.then(
        () => {
          this.#ledger.counts.failed++;
          this.#ledger.countError({ ...details, customId: item.id });
        },
        (error: unknown) => this.#ledger.onWriteError(error),
      ),
    );
  }

  /** A bad input line: its record goes to the errors file and is derived afresh by every run. */
  #reject(lineNo: number, issue: InputIssue, text: string | undefined): void {
    const { customId: id, record } = badLineRecord(this.#ctx.runId, lineNo, issue, text);
    this.#track(
      this.#ctx.errors.append(record).written.then(
        () => {
          this.#ledger.counts.invalid++;
          this.#ledger.countError({ code: issue.code, message: issue.message, customId: id });
        },
        (error: unknown) => this.#ledger.onWriteError(error),
      ),
    );
    if (this.#ctx.strict && this.#ledger.strictIssue === undefined) {
      this.#ledger.strictIssue = issue;
      this.#ctx.progress.log(`--strict: stopping at line ${lineNo} (${issue.code})`);
      this.#abortReader.abort();
    }
  }

  #track(promise: Promise<void>): void {
    this.#unsettled.add(promise);
    promise.finally(() => this.#unsettled.delete(promise)).catch(() => undefined);
  }

  // -------------------------------------------------------------------------------------------
  // Flow control

  // -------------------------------------------------------------------------------------------
  // Reporting

  #snapshot(): ProgressSnapshot {
    const { survey } = this.#ctx;
    const snapshot = progressSnapshot(
      this.#ctx.volley,
      {
        succeeded: this.#ledger.counts.succeeded,
        failed: this.#ledger.counts.failed,
        invalid: this.#ledger.counts.invalid,
      },
      this.#ledger.startedAt,
    );
    if (survey !== undefined) snapshot.total = survey.toSend + survey.invalid;
    return snapshot;
  }

  #finish(): EmbedOutcome {
    const { survey, progress } = this.#ctx;
    const ending = this.#ledger.end(survey);
    if (this.#isolated > 0) {
      progress.log(
        `${this.#isolated} texts were sent again one by one after the server refused their batch (if it refuses most batches, it may cap the inputs per request: lower --batch-size)`,
      );
    }
    return ending;
  }
}
