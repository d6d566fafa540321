/**
 * What happens to each input line, decided once by the preflight pass (files) or line by line as
 * the data arrives (standard input), with the same rules either way.
 *
 *   raw line ─► framing issue? ─► parseBatchLine ─► prompt-token cap ─► duplicate custom_id?
 *                                                                        ─► already finished?
 *
 * The preflight pass reads the whole file before anything is sent: counts, bytes, every bad line
 * with its code, duplicates, token estimates for `--dry-run`, and on `--resume` which lines are
 * already done. It leaves one byte per line (its disposition) for the sending pass, so the sending
 * pass needs neither the duplicate tracker nor a second token count, and memory during the run no
 * longer grows with the number of distinct ids.
 */

import type { Readable } from 'node:stream';
import type { CountTokens } from '@volley/core';
import { DEFAULT_OUTPUT_TOKEN_ESTIMATE, estimateRequestPromptTokens } from '@volley/core';
import type { BatchLineDefaults, BatchRequest } from '../jsonl/batch-line.js';
import { duplicateCustomIdIssue, parseBatchLine, withPlaceholderId } from '../jsonl/batch-line.js';
import type { DuplicateTracker } from '../jsonl/duplicate-tracker.js';
import { createDuplicateTracker } from '../jsonl/duplicate-tracker.js';
import type { InputIssue, RawLine, ReaderStats, ReadJsonlOptions } from '../jsonl/reader.js';
import { readJsonlBatches } from '../jsonl/reader.js';
import { makeSnippet } from '../text.js';
import type { FinishedSet } from './finished-set.js';
import { RecordKind } from './finished-set.js';
import { recordId } from './record.js';

/** What the sending pass does with a line, as decided by the preflight pass (one byte a line). */
export const Disposition = {
  /** Parse and send it (or report it, if it is invalid). */
  SEND: 0,
  /** Its custom_id was used by an earlier line: an error record. */
  DUPLICATE: 1,
  /** A previous run finished it (same request): nothing to do. */
  DONE: 2,
  /** A previous run finished it and the record waits in the reorder spill: write it. */
  SPILLED: 3,
  /** A previous run answered a different request under this custom_id; kept (`--force-resume`). */
  KEPT_CHANGED: 4,
  /** Its estimated prompt is over `--max-prompt-tokens`: an error record. */
  PROMPT_TOO_LONG: 5,
  /** A previous run failed it for good (400, 422, ...): nothing to send; its retry line is rewritten. */
  DONE_FAILED: 6,
} as const;

/** One of {@link Disposition}. */
export type DispositionValue = (typeof Disposition)[keyof typeof Disposition];

/** Validation rules from the flags. */
export interface LineRules {
  defaults: BatchLineDefaults;
  /** Refuse lines whose estimated prompt is longer (`VOLLEY_INPUT_PROMPT_TOO_LONG`). */
  maxPromptTokens?: number | undefined;
  /** Needed with `maxPromptTokens`. */
  countTokens?: CountTokens | undefined;
  /** How input lines are read; default `jsonl`. */
  inputFormat?: RunInputFormat | undefined;
}

/**
 * How `volley run` reads its input: JSONL (batch or convenience lines), or plain text, one
 * prompt per line (as `volley embed` reads `.txt`), the default for `.txt` files.
 */
export type RunInputFormat = 'jsonl' | 'text';

/**
 * The input's lines, framed by the JSONL reader, a read chunk at a time (see `readJsonlBatches`).
 * In `text` format each line becomes the convenience line `{"prompt": <the line>}`: its custom_id
 * is then `line-<n>` (n = its line number), its model the `--model` default, and every later step
 * (validation, record ids, resume, the retry file, which so holds JSONL) works on it unchanged.
 *
 * @example
 * for await (const batch of readRunBatches('prompts.txt', { stats }, 'text')) {
 *   for (const raw of batch) judge(raw);
 * }
 */
export function readRunBatches(
  source: string,
  options: ReadJsonlOptions,
  format: RunInputFormat = 'jsonl',
): AsyncGenerator<RawLine[], ReaderStats, undefined> {
  const batches = readJsonlBatches(source, options);
  // The reader itself, not a generator around it: a layer of async generator costs promises.
  return format === 'jsonl' ? batches : asTextLines(batches);
}

async function* asTextLines(
  batches: AsyncGenerator<RawLine[], ReaderStats, undefined>,
): AsyncGenerator<RawLine[], ReaderStats, undefined> {
  let next = await batches.next();
  while (next.done !== true) {
    // Line 1 may start with a BOM; a CRLF file leaves a \r on every line.
    yield next.value.map((raw) =>
      'issue' in raw
        ? raw
        : {
            ...raw,
            text: JSON.stringify({ prompt: raw.text.replace(/^\uFEFF/, '').replace(/\r$/, '') }),
          },
    );
    next = await batches.next();
  }
  return next.value;
}

/** What a previous run left, for `--resume`. */
export interface ResumeIndex {
  runId: string;
  finished: FinishedSet;
  /** `--force-resume`: keep records of changed lines instead of refusing. */
  force: boolean;
}

/** A line after parsing: a request, or a coded problem. */
export type ParsedLine =
  | { ok: true; request: BatchRequest; text: string; warnings?: InputIssue[] | undefined }
  | { ok: false; issue: InputIssue; text?: string | undefined };

/** Parses and validates one framed line (everything but duplicates and resume state). */
export function parseLine(raw: RawLine, rules: LineRules): ParsedLine {
  if ('issue' in raw) return { ok: false, issue: withPlaceholderId(raw.issue) };
  const parsed = parseBatchLine(raw, rules.defaults);
  if (!parsed.ok) return { ok: false, issue: parsed.issue, text: raw.text };
  if (rules.maxPromptTokens !== undefined && rules.countTokens !== undefined) {
    const { body } = parsed.request;
    const prompt = promptTokens(body, rules.countTokens);
    if (prompt > rules.maxPromptTokens) {
      return {
        ok: false,
        issue: promptTooLongIssue(raw, parsed.request.customId, prompt, rules.maxPromptTokens),
        text: raw.text,
      };
    }
  }
  return { ok: true, request: parsed.request, text: raw.text, warnings: parsed.warnings };
}

/** The issue for a line over `--max-prompt-tokens`; `prompt` may be unknown (-1). */
export function promptTooLongIssue(
  line: { lineNo: number; offset: number; text: string },
  customId: string,
  prompt: number,
  max: number,
): InputIssue {
  return {
    code: 'VOLLEY_INPUT_PROMPT_TOO_LONG',
    message: `line ${line.lineNo}: the prompt is ${prompt >= 0 ? `about ${prompt} tokens` : 'estimated'} over the --max-prompt-tokens limit of ${max}`,
    lineNo: line.lineNo,
    offset: line.offset,
    snippet: makeSnippet(line.text),
    customId,
  };
}

/** Output tokens a request may produce: max_completion_tokens, max_tokens or max_output_tokens (or 256), times n. */
export function maxOutputTokens(body: Record<string, unknown>, url: string): number {
  if (url.endsWith('/embeddings')) return 0;
  const int = (v: unknown): number | undefined =>
    typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : undefined;
  const max =
    int(body.max_completion_tokens) ??
    int(body.max_tokens) ??
    int(body.max_output_tokens) ??
    DEFAULT_OUTPUT_TOKEN_ESTIMATE;
  return max * (int(body.n) ?? 1);
}

function promptTokens(body: Record<string, unknown>, count: CountTokens): number {
  return estimateRequestPromptTokens(body, count);
}

/** What the resume index says about a line that would be sent. */
export type ResumeVerdict =
  | { disposition: typeof Disposition.SEND; stale: boolean }
  | { disposition: typeof Disposition.DONE | typeof Disposition.DONE_FAILED }
  | { disposition: typeof Disposition.SPILLED; slot: number }
  | { disposition: typeof Disposition.KEPT_CHANGED }
  | { conflict: true };

/**
 * Looks a line up in what the previous run wrote. A failure or a spilled record for a changed
 * line is marked stale (dropped, and the line is sent again); a success for a changed line is a
 * conflict: refused, or kept with `force`.
 */
export function judgeResume(resume: ResumeIndex, customId: string, id: string): ResumeVerdict {
  const hit = resume.finished.lookup(customId, id);
  if (!hit.found) return { disposition: Disposition.SEND, stale: false };
  if (hit.sameRequest) {
    return hit.kind === RecordKind.SPILLED
      ? { disposition: Disposition.SPILLED, slot: hit.slot }
      : {
          disposition:
            hit.kind === RecordKind.FINAL_ERROR ? Disposition.DONE_FAILED : Disposition.DONE,
        };
  }
  if (hit.kind === RecordKind.SUCCESS) {
    return resume.force ? { disposition: Disposition.KEPT_CHANGED } : { conflict: true };
  }
  resume.finished.markStale(hit.slot);
  return { disposition: Disposition.SEND, stale: true };
}

/** Tokens the preflight pass estimated (`--dry-run`). */
export interface TokenEstimate {
  prompt: number;
  /** Upper bound: max_tokens (or the default allowance) of every line. */
  maxOutput: number;
  byModel: Map<string, { lines: number; prompt: number; maxOutput: number }>;
}

/** What the preflight pass found. */
export interface PreflightResult {
  stats: ReaderStats;
  /** Lines that are valid requests (first occurrences of their custom_id). */
  valid: number;
  /** Lines that get an error record (bad lines, duplicates, prompts over the cap). */
  invalid: number;
  duplicates: number;
  byCode: Record<string, number>;
  /** The first 20 problems, for messages. */
  firstIssues: InputIssue[];
  /** One example of each warning code (unknown fields). */
  warnings: InputIssue[];
  /** Index: physical line number. Lines past the end were not there at preflight time. */
  dispositions: Uint8Array;
  /** Lines to send in this run. */
  toSend: number;
  /** Lines a previous run finished (including spilled and kept-changed ones). */
  alreadyDone: number;
  /** Of those, lines that failed for good (their records stay in the errors file). */
  alreadyFailed: number;
  /** Records of the previous run that will be written from the spill. */
  spilled: number;
  /** Failed or spilled records of changed lines, dropped and redone. */
  stale: number;
  /** Lines whose earlier success answered a different request (refused unless forced). */
  conflicts: { count: number; first: Array<{ lineNo: number; customId: string }> };
  tokens?: TokenEstimate;
}

/** Options of {@link preflight}. */
export interface PreflightOptions {
  rules: LineRules;
  maxLineBytes: number;
  resume?: ResumeIndex | undefined;
  /** Count tokens of every valid line (`--dry-run`). */
  estimateTokens?: CountTokens | undefined;
  signal?: AbortSignal | undefined;
  /** The stream `'-'` reads (standard input, already sampled). */
  stdin?: Readable | undefined;
  /** The file's first bytes, already read by the file check (see `ReadJsonlOptions.head`). */
  head?: Uint8Array | undefined;
}

const FIRST_ISSUES = 20;

/**
 * Reads the whole input file once and decides every line; sends nothing. Memory: the duplicate
 * tracker (about 30 bytes per distinct id, freed when this returns) and one byte per line.
 *
 * @example
 * const pre = await preflight('batch.jsonl', { rules, maxLineBytes });
 * if (pre.valid === 0) refuse();
 */
export async function preflight(path: string, options: PreflightOptions): Promise<PreflightResult> {
  const stats: ReaderStats = { lines: 0, blankLines: 0, issues: 0, bytesRead: 0 };
  const ids: DuplicateTracker = createDuplicateTracker();
  let dispositions = new Uint8Array(1024);
  const result: PreflightResult = {
    stats,
    valid: 0,
    invalid: 0,
    duplicates: 0,
    byCode: {},
    firstIssues: [],
    warnings: [],
    dispositions,
    toSend: 0,
    alreadyDone: 0,
    alreadyFailed: 0,
    spilled: 0,
    stale: 0,
    conflicts: { count: 0, first: [] },
  };
  const tokens: TokenEstimate | undefined =
    options.estimateTokens === undefined
      ? undefined
      : { prompt: 0, maxOutput: 0, byModel: new Map() };
  if (tokens !== undefined) result.tokens = tokens;
  const warned = new Set<string>();
  const issue = (found: InputIssue): void => {
    result.invalid++;
    result.byCode[found.code] = (result.byCode[found.code] ?? 0) + 1;
    if (result.firstIssues.length < FIRST_ISSUES) result.firstIssues.push(found);
  };
  const set = (lineNo: number, disposition: DispositionValue): void => {
    if (lineNo >= dispositions.length) {
      const bigger = new Uint8Array(Math.max(lineNo + 1, dispositions.length * 2));
      bigger.set(dispositions);
      dispositions = bigger;
    }
    dispositions[lineNo] = disposition;
  };
  const { resume } = options;

  const batches = readRunBatches(
    path,
    {
      stats,
      maxLineBytes: options.maxLineBytes,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
      head: options.head,
    },
    options.rules.inputFormat,
  );
  /** One line's verdict, counted in `result`. */
  const judge = (raw: RawLine): void => {
    const parsed = parseLine(raw, options.rules);
    if (!parsed.ok) {
      if (parsed.issue.code === 'VOLLEY_INPUT_PROMPT_TOO_LONG') {
        set(raw.lineNo, Disposition.PROMPT_TOO_LONG);
      }
      issue(parsed.issue);
      return;
    }
    if (parsed.warnings !== undefined) {
      for (const warning of parsed.warnings) {
        if (!warned.has(warning.code)) {
          warned.add(warning.code);
          result.warnings.push(warning);
        }
      }
    }
    const { customId } = parsed.request;
    if (!ids.add(customId)) {
      result.duplicates++;
      set(raw.lineNo, Disposition.DUPLICATE);
      issue(
        duplicateCustomIdIssue(raw as { lineNo: number; offset: number; text: string }, customId),
      );
      return;
    }
    result.valid++;
    if (tokens !== undefined && options.estimateTokens !== undefined) {
      addTokens(tokens, parsed.request, options.estimateTokens);
    }
    if (resume === undefined) {
      result.toSend++;
      return;
    }
    const verdict = judgeResume(resume, customId, recordId(resume.runId, customId, parsed.text));
    if ('conflict' in verdict) {
      noteConflict(result, raw.lineNo, customId);
      return;
    }
    set(raw.lineNo, verdict.disposition);
    switch (verdict.disposition) {
      case Disposition.SEND:
        result.toSend++;
        if (verdict.stale) result.stale++;
        break;
      case Disposition.SPILLED:
        result.spilled++;
        result.alreadyDone++;
        // The sending pass counts spilled failures (it learns which they are when it reads them).
        break;
      case Disposition.DONE_FAILED:
        result.alreadyFailed++;
        result.alreadyDone++;
        break;
      case Disposition.DONE:
      case Disposition.KEPT_CHANGED:
        result.alreadyDone++;
        break;
    }
  };
  for await (const batch of batches) {
    for (const raw of batch) judge(raw);
  }
  result.dispositions = dispositions;
  return result;
}

function noteConflict(result: PreflightResult, lineNo: number, customId: string): void {
  result.conflicts.count++;
  if (result.conflicts.first.length < 5) result.conflicts.first.push({ lineNo, customId });
}

function addTokens(tokens: TokenEstimate, request: BatchRequest, count: CountTokens): void {
  const output = maxOutputTokens(request.body, request.url);
  const prompt = promptTokens(request.body, count);
  tokens.prompt += prompt;
  tokens.maxOutput += output;
  const model = typeof request.body.model === 'string' ? request.body.model : '';
  const entry = tokens.byModel.get(model) ?? { lines: 0, prompt: 0, maxOutput: 0 };
  entry.lines++;
  entry.prompt += prompt;
  entry.maxOutput += output;
  tokens.byModel.set(model, entry);
}
