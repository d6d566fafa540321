/**
 * Input lines of `volley embed`: one text and its id per line, or one coded issue.
 *
 * Three shapes are accepted:
 * - `{"id": "doc-1", "text": "..."}`: other fields (a title, a source, any metadata a corpus
 *   carries) are ignored. A numeric id is written back as its decimal string.
 * - OpenAI Batch embedding lines, `{"custom_id", "method": "POST", "url": "/v1/embeddings",
 *   "body": {"model", "input"}}`, as prepared for the OpenAI Batch API; `input` must be one
 *   string (or an array of exactly one), because every id gets exactly one vector.
 * - Plain text (`--input-format text`, the default for `.txt`): every non-blank line is a text,
 *   and its id is its 1-based line number.
 *
 * Ids are compared as strings: a second line with an id already used is a bad line (the first
 * one wins), so the outputs hold at most one vector per id.
 */

import type { EMBED_INPUT_ISSUE_CODES } from '../codes.js';
import type { BatchLineDefaults } from '../jsonl/batch-line.js';
import {
  isPlaceholderForm,
  parseBatchLine,
  placeholderCustomId,
  withPlaceholderId,
} from '../jsonl/batch-line.js';
import type { InputIssue, RawLine, RawTextLine } from '../jsonl/reader.js';
import { makeSnippet } from '../text.js';

/** How input lines are read. */
export type EmbedInputFormat = 'jsonl' | 'text';

/** A line ready to embed. */
export interface EmbedLine {
  id: string;
  text: string;
}

export type ParseEmbedLineResult = { ok: true; line: EmbedLine } | { ok: false; issue: InputIssue };

/** Longest id accepted, as for `custom_id` in `volley run`. */
const MAX_ID_LENGTH = 512;

/** The input format a path implies when `--input-format` is not given. */
export function inputFormatOf(path: string): EmbedInputFormat {
  return /\.(txt|text)$/i.test(path) ? 'text' : 'jsonl';
}

/**
 * One framed input line to a text and its id. `model` is the model the run embeds with: a batch
 * line naming another one cannot share its requests.
 *
 * @example
 * const parsed = parseEmbedLine(raw, 'jsonl', 'text-embedding-3-small');
 * if (parsed.ok) queue.push(parsed.line); else errors.push(parsed.issue);
 */
export function parseEmbedLine(
  raw: RawLine,
  format: EmbedInputFormat,
  model: string,
): ParseEmbedLineResult {
  if ('issue' in raw) return { ok: false, issue: withPlaceholderId(raw.issue) };
  if (format === 'text') {
    // Line 1 may start with a BOM; a CRLF file leaves a \r on every line.
    const text = raw.text.replace(/^\uFEFF/, '').replace(/\r$/, '');
    return { ok: true, line: { id: String(raw.lineNo), text } };
  }
  let value: unknown;
  try {
    value = JSON.parse(raw.text);
  } catch {
    // The batch-line parser's diagnosis names what is wrong with the JSON and where.
    const diagnosed = parseBatchLine(raw);
    if (!diagnosed.ok) return diagnosed;
    return issue(raw, 'VOLLEY_INPUT_TEXT_INVALID', 'not a JSON object');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return issue(raw, 'VOLLEY_INPUT_TEXT_INVALID', 'must be a JSON object with "id" and "text"');
  }
  const record = value as Record<string, unknown>;
  if ('custom_id' in record || 'body' in record) return fromBatchLine(raw, model);
  const id = idOf(record.id);
  if (id === undefined) {
    return issue(
      raw,
      'VOLLEY_INPUT_ID_INVALID',
      `"id" must be a non-empty string (at most ${MAX_ID_LENGTH} characters, not of the reserved form #line-<n>) or an integer, got ${describe(record.id)}`,
    );
  }
  if (typeof record.text !== 'string' || record.text.length === 0) {
    return issue(
      raw,
      'VOLLEY_INPUT_TEXT_INVALID',
      `"text" must be a non-empty string, got ${describe(record.text)}`,
      id,
    );
  }
  return { ok: true, line: { id, text: record.text } };
}

/** The issue of a line whose id an earlier line already used. */
export function duplicateIdIssue(raw: RawTextLine, id: string): InputIssue {
  return makeIssue(
    raw,
    'VOLLEY_INPUT_DUPLICATE_ID',
    `id ${JSON.stringify(id).slice(0, 100)} was already used by an earlier line; its first line is embedded`,
    id,
  );
}

function fromBatchLine(raw: RawTextLine, model: string): ParseEmbedLineResult {
  const defaults: BatchLineDefaults = { model };
  const parsed = parseBatchLine(raw, defaults);
  if (!parsed.ok) return parsed;
  const { customId, url, body } = parsed.request;
  if (url !== '/v1/embeddings') {
    return issue(
      raw,
      'VOLLEY_INPUT_NOT_EMBEDDING',
      `"url" is ${JSON.stringify(url)}: volley embed reads /v1/embeddings lines (use volley run for the others)`,
      customId,
    );
  }
  if (typeof body.model === 'string' && body.model !== model) {
    return issue(
      raw,
      'VOLLEY_INPUT_MODEL_MISMATCH',
      `"body.model" is ${JSON.stringify(body.model)} but this run embeds with ${JSON.stringify(model)} (--model)`,
      customId,
    );
  }
  const input = Array.isArray(body.input) && body.input.length === 1 ? body.input[0] : body.input;
  if (typeof input !== 'string' || input.length === 0) {
    return issue(
      raw,
      Array.isArray(body.input) ? 'VOLLEY_INPUT_MANY_INPUTS' : 'VOLLEY_INPUT_TEXT_INVALID',
      Array.isArray(body.input)
        ? `"body.input" must hold exactly one non-empty string (every id gets one vector); split its ${body.input.length} inputs into lines of their own`
        : `"body.input" must be a non-empty string, got ${describe(body.input)}`,
      customId,
    );
  }
  return { ok: true, line: { id: customId, text: input } };
}

function idOf(value: unknown): string | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? String(value) : undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ID_LENGTH) {
    return undefined;
  }
  // `#line-<n>` names the records of lines without a valid id.
  if (isPlaceholderForm(value)) return undefined;
  return value;
}

function issue(
  raw: RawTextLine,
  code: keyof typeof EMBED_INPUT_ISSUE_CODES,
  detail: string,
  id?: string,
): { ok: false; issue: InputIssue } {
  return { ok: false, issue: makeIssue(raw, code, detail, id) };
}

function makeIssue(
  raw: RawTextLine,
  code: InputIssue['code'],
  detail: string,
  id?: string,
): InputIssue {
  const made: InputIssue = {
    code,
    message: `line ${raw.lineNo}: ${detail}`,
    lineNo: raw.lineNo,
    offset: raw.offset,
    snippet: makeSnippet(raw.text),
  };
  made.customId = id ?? placeholderCustomId(raw.lineNo);
  return made;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value.length === 0 ? 'an empty string' : 'a string';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}
