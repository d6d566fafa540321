/**
 * One input line to one request, or to one coded {@link InputIssue}.
 *
 * Two shapes are accepted:
 * - OpenAI Batch lines: `{"custom_id","method":"POST","url":"/v1/...","body":{...}}`, as read and
 *   written by the OpenAI Batch API and vLLM `run-batch`.
 * - Convenience lines, for hand-written files: `{"prompt": "..."}` or `{"messages": [...]}`
 *   (chat completions), `{"input": ...}` (embeddings); `custom_id` is optional (`line-<n>`), and
 *   every other field (`model`, `max_tokens`, `temperature`, ...) goes into the body.
 *
 * Every issue carries the custom_id its error record is written under: the line's own when it is
 * valid, otherwise the placeholder `#line-<n>` (see {@link placeholderCustomId}).
 *
 * The cost of a valid line is one `JSON.parse` plus one structural scan of the raw text
 * ({@link scanJsonStructure}, json-structure.ts), which skips string contents with native
 * `indexOf` and so costs in proportion to the number of tokens, not of characters. The slow
 * diagnosis of bad JSON ({@link diagnoseJsonError}, json-diagnose.ts) runs only after
 * `JSON.parse` has failed. The codes are in the CLI's one catalog, codes.ts.
 */

import type { BatchUrl } from '@volley/core';
import { BATCH_URLS } from '@volley/core';
import type { InputIssueCode } from '../codes.js';
import { hasUnsafeTextChars, makeSnippet } from '../text.js';
import { diagnoseJsonError } from './json-diagnose.js';
import { scanJsonStructure } from './json-structure.js';
import type { InputIssue } from './reader.js';

export type { InputIssue } from './reader.js';

// The endpoints a batch line may target: the one list, in @volley/core's batch protocol.
export type { BatchUrl };
export { BATCH_URLS };

/** Defaults and policy applied to every line, from flags and configuration. */
export interface BatchLineDefaults {
  /** Fills `body.model` when a line has none (`--model`). */
  model?: string;
  /** When non-empty, every line's model (after defaults) must be one of these. */
  allowedModels?: readonly string[];
  /** `--samples` above 1: lines that cannot be sampled are refused. */
  sampling?: SamplingPolicy;
}

/** What a line must allow to be sent `samples` times and answered by `select`. */
export interface SamplingPolicy {
  samples: number;
  select: 'all' | 'vote' | 'judge';
}

/** A line ready to send. `body` is owned by the caller (freshly parsed, never shared). */
export interface BatchRequest {
  customId: string;
  url: BatchUrl;
  body: Record<string, unknown>;
}

/** Result of {@link parseBatchLine}. `warnings` is present only when there are some. */
export type ParseBatchLineResult =
  | { ok: true; request: BatchRequest; warnings?: InputIssue[] }
  | { ok: false; issue: InputIssue };

/** The fields of a framed line that {@link parseBatchLine} reads (a `RawTextLine` fits). */
export interface BatchLineInput {
  lineNo: number;
  offset: number;
  text: string;
}

/** Longest accepted `custom_id`, in UTF-16 code units. */
export const MAX_CUSTOM_ID_LENGTH = 512;

const BATCH_FIELDS = new Set(['custom_id', 'method', 'url', 'body']);
const CHAT_ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);
const ROLE_LIST = [...CHAT_ROLES].join(', ');
const ABSOLUTE_URL = /^(?:[a-z][a-z0-9+.-]*:|\/\/|\\\\)/i;

type Failure = { ok: false; issue: InputIssue };

/**
 * Validates one line and turns it into a request. Never throws on bad input: every problem is a
 * coded issue naming the field. Duplicate `custom_id`s across lines are the caller's job (see
 * `createDuplicateTracker` (duplicate-tracker.ts)).
 *
 * Unknown top-level fields in a batch line are accepted with a `VOLLEY_INPUT_UNKNOWN_FIELD`
 * warning: the OpenAI Batch API ignores them too, and refusing would break files written by
 * tools that add bookkeeping fields.
 *
 * @example
 * const result = parseBatchLine(rawLine, { model: 'gpt-4o-mini' });
 * if (!result.ok) errors.push(result.issue);
 * else if (!ids.add(result.request.customId)) errors.push(duplicateCustomIdIssue(rawLine, result.request.customId));
 * else queue.push(result.request);
 */
export function parseBatchLine(
  line: BatchLineInput,
  defaults: BatchLineDefaults = {},
): ParseBatchLineResult {
  const { text } = line;
  if (text.charCodeAt(0) === 0xfeff) {
    return fail(
      line,
      'VOLLEY_INPUT_UNEXPECTED_BOM',
      'starts with a byte order mark (U+FEFF); only line 1 may have one',
      0,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const found = diagnoseJsonError(text);
    const v8 = err instanceof Error ? err.message : String(err);
    return fail(
      line,
      found.code,
      `${found.detail}${found.index === undefined ? '' : ` at column ${found.index + 1}`}` +
        (found.code === 'VOLLEY_INPUT_JSON_SYNTAX' ? ` (${v8.slice(0, 120)})` : ''),
      found.index,
    );
  }

  const structure = scanJsonStructure(text, value);
  if (structure !== undefined) {
    const id = isRecord(value) ? validCustomId(value.custom_id) : undefined;
    return fail(line, structure.code, structure.detail, structure.index, id);
  }
  if (!isRecord(value)) {
    return fail(line, 'VOLLEY_INPUT_NOT_OBJECT', `must be a JSON object, got ${describe(value)}`);
  }

  const isBatch = 'method' in value || 'url' in value || 'body' in value;
  return isBatch
    ? parseBatchShape(line, value, defaults)
    : parseConvenienceShape(line, value, defaults);
}

function parseBatchShape(
  line: BatchLineInput,
  obj: Record<string, unknown>,
  defaults: BatchLineDefaults,
): ParseBatchLineResult {
  const idProblem = checkCustomId(obj.custom_id);
  if (idProblem !== undefined) return fail(line, idProblem.code, idProblem.detail);
  const customId = obj.custom_id as string;

  if (obj.method !== 'POST') {
    return fail(
      line,
      'VOLLEY_INPUT_METHOD_INVALID',
      `"method" must be "POST", got ${describe(obj.method)}`,
      undefined,
      customId,
    );
  }
  const { url } = obj;
  if (typeof url === 'string' && ABSOLUTE_URL.test(url.trim())) {
    return fail(
      line,
      'VOLLEY_INPUT_URL_ABSOLUTE',
      `"url" must be a path such as "/v1/chat/completions", not an absolute URL; the host comes from configuration`,
      undefined,
      customId,
    );
  }
  if (typeof url !== 'string' || !(BATCH_URLS as readonly string[]).includes(url)) {
    return fail(
      line,
      'VOLLEY_INPUT_URL_UNSUPPORTED',
      `"url" must be one of ${BATCH_URLS.join(', ')}, got ${describe(url)}`,
      undefined,
      customId,
    );
  }
  const { body } = obj;
  if (body === undefined) {
    return fail(line, 'VOLLEY_INPUT_BODY_MISSING', '"body" is missing', undefined, customId);
  }
  if (!isRecord(body)) {
    return fail(
      line,
      'VOLLEY_INPUT_BODY_NOT_OBJECT',
      `"body" must be an object, got ${describe(body)}`,
      undefined,
      customId,
    );
  }
  if (isEmpty(body)) {
    return fail(line, 'VOLLEY_INPUT_BODY_EMPTY', '"body" is empty', undefined, customId);
  }
  const bodyProblem = checkBody(url as BatchUrl, body, defaults, 'body.');
  if (bodyProblem !== undefined) {
    return fail(line, bodyProblem.code, bodyProblem.detail, undefined, customId);
  }

  const request: BatchRequest = { customId, url: url as BatchUrl, body };
  if (!hasUnknownField(obj)) return { ok: true, request };
  const unknown = Object.keys(obj).filter((key) => !BATCH_FIELDS.has(key));
  const warning = makeIssue(
    line,
    'VOLLEY_INPUT_UNKNOWN_FIELD',
    `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} ignored`,
    undefined,
    customId,
  );
  return { ok: true, request, warnings: [warning] };
}

/** Whether a batch line has a field beyond the four; allocates nothing (it runs on every line). */
function hasUnknownField(obj: Record<string, unknown>): boolean {
  for (const key in obj) if (!BATCH_FIELDS.has(key)) return true;
  return false;
}

function parseConvenienceShape(
  line: BatchLineInput,
  obj: Record<string, unknown>,
  defaults: BatchLineDefaults,
): ParseBatchLineResult {
  const kinds = (['prompt', 'messages', 'input'] as const).filter((key) => key in obj);
  if (kinds.length === 0) {
    return fail(
      line,
      'VOLLEY_INPUT_UNRECOGNIZED_LINE',
      'expected a batch line ("custom_id", "method", "url", "body") or a line with "prompt", "messages" or "input"',
    );
  }
  if (kinds.length > 1) {
    return fail(
      line,
      'VOLLEY_INPUT_AMBIGUOUS_LINE',
      `has ${kinds.map((k) => `"${k}"`).join(' and ')}; use exactly one`,
    );
  }
  let ownId: string | undefined;
  if ('custom_id' in obj) {
    const idProblem = checkCustomId(obj.custom_id);
    if (idProblem !== undefined) return fail(line, idProblem.code, idProblem.detail);
    ownId = obj.custom_id as string;
  }
  // A bad line without its own id is reported under the placeholder (fail's default), not under
  // the implicit id, which a real id on another line may hold.
  const customId = ownId ?? implicitCustomId(line.lineNo);

  const kind = kinds[0] as 'prompt' | 'messages' | 'input';
  // The line's `model` first, then its other fields in order: bodies read naturally in logs.
  // Assignment is safe here: scanJsonStructure has already refused __proto__ keys.
  const body: Record<string, unknown> = {};
  if (obj.model !== undefined) body.model = obj.model;
  for (const key of Object.keys(obj)) {
    // `system` is the prompt shape's own field (a system message); elsewhere it is a body field.
    if (
      key === 'custom_id' ||
      key === 'model' ||
      (kind === 'prompt' && (key === 'prompt' || key === 'system'))
    ) {
      continue;
    }
    body[key] = obj[key];
  }
  let url: BatchUrl = '/v1/chat/completions';
  if (kind === 'prompt') {
    const { prompt, system } = obj;
    if (typeof prompt !== 'string' || prompt.length === 0) {
      return fail(
        line,
        'VOLLEY_INPUT_PROMPT_INVALID',
        `"prompt" must be a non-empty string, got ${describe(prompt)}`,
        undefined,
        ownId,
      );
    }
    if (system !== undefined && typeof system !== 'string') {
      return fail(
        line,
        'VOLLEY_INPUT_MESSAGES_INVALID',
        `"system" must be a string, got ${describe(system)}`,
        undefined,
        ownId,
      );
    }
    body.messages =
      system === undefined
        ? [{ role: 'user', content: prompt }]
        : [
            { role: 'system', content: system },
            { role: 'user', content: prompt },
          ];
  } else if (kind === 'input') {
    url = '/v1/embeddings';
  }

  const bodyProblem = checkBody(url, body, defaults, '');
  if (bodyProblem !== undefined) {
    return fail(line, bodyProblem.code, bodyProblem.detail, undefined, ownId);
  }
  return { ok: true, request: { customId, url, body } };
}

interface Problem {
  code: InputIssueCode;
  detail: string;
}

const MAX_TOKENS_FIELDS = ['max_tokens', 'max_completion_tokens', 'max_output_tokens'] as const;

/** Checks (and completes: the default model) a request body. `where` prefixes field names. */
function checkBody(
  url: BatchUrl,
  body: Record<string, unknown>,
  defaults: BatchLineDefaults,
  where: string,
): Problem | undefined {
  if (body.model === undefined) {
    if (defaults.model === undefined) {
      return {
        code: 'VOLLEY_INPUT_MODEL_MISSING',
        detail: `"${where}model" is missing and no default model (--model) is set`,
      };
    }
    body.model = defaults.model;
  }
  const { model } = body;
  if (typeof model !== 'string' || model.trim() === '') {
    return {
      code: 'VOLLEY_INPUT_MODEL_INVALID',
      detail: `"${where}model" must be a non-empty string, got ${describe(model)}`,
    };
  }
  const allowed = defaults.allowedModels;
  if (allowed !== undefined && allowed.length > 0 && !allowed.includes(model)) {
    return {
      code: 'VOLLEY_INPUT_MODEL_NOT_ALLOWED',
      detail: `"${where}model" ${JSON.stringify(model).slice(0, 80)} is not in the allowed models`,
    };
  }
  // `null` is accepted: the OpenAI API reads it as "not set".
  if (body.stream !== undefined && body.stream !== null && body.stream !== false) {
    return {
      code: 'VOLLEY_INPUT_STREAM_NOT_ALLOWED',
      detail: `"${where}stream" must be absent or false; Volley chooses streaming itself`,
    };
  }
  for (const key of MAX_TOKENS_FIELDS) {
    const v = body[key];
    if (v !== undefined && v !== null && !(Number.isSafeInteger(v) && (v as number) > 0)) {
      return {
        code: 'VOLLEY_INPUT_MAX_TOKENS_INVALID',
        detail: `"${where}${key}" must be a positive integer, got ${describe(v)}`,
      };
    }
  }
  if (defaults.sampling !== undefined) {
    const problem = checkSampling(url, body, defaults.sampling, where);
    if (problem !== undefined) return problem;
  }
  switch (url) {
    case '/v1/chat/completions':
      return checkMessages(body.messages, where);
    case '/v1/completions':
      return checkTextOrTokens(body.prompt, `${where}prompt`, 'VOLLEY_INPUT_PROMPT_INVALID');
    case '/v1/embeddings':
      return checkTextOrTokens(body.input, `${where}input`, 'VOLLEY_INPUT_EMBEDDING_INPUT_INVALID');
    case '/v1/responses':
      return checkResponseInput(body.input, `${where}input`);
  }
}

/**
 * `--samples`: embeddings are deterministic, so sampling them only multiplies the bill; and a vote
 * or a judge compares one answer per sample, which `n` > 1 would make ambiguous.
 */
function checkSampling(
  url: BatchUrl,
  body: Record<string, unknown>,
  policy: SamplingPolicy,
  where: string,
): Problem | undefined {
  const code = 'VOLLEY_INPUT_SAMPLES_UNSUPPORTED';
  if (url === '/v1/embeddings') {
    const field = where === '' ? '"input" (an embeddings line)' : '"url" /v1/embeddings';
    return {
      code,
      detail: `${field} cannot be sampled (--samples ${policy.samples}): embeddings are deterministic; run embedding lines without --samples`,
    };
  }
  if (url === '/v1/responses') {
    return {
      code,
      detail: `"url" /v1/responses cannot be sampled (--samples ${policy.samples}) yet: samples are merged as chat choices; run /v1/responses lines without --samples`,
    };
  }
  const { n } = body;
  if (policy.select !== 'all' && typeof n === 'number' && n > 1) {
    return {
      code,
      detail: `"${where}n" is ${n}, but --select ${policy.select} compares one answer per sample; leave n out (or 1), or use --select all`,
    };
  }
  return undefined;
}

/**
 * `where` prefixes the field (`body.` or nothing). Field names are built only for a message: this
 * runs on every line, in both passes (issue 12: allocation per line is the run's biggest cost).
 */
function checkMessages(messages: unknown, where: string): Problem | undefined {
  if (!Array.isArray(messages) || messages.length === 0) {
    return messagesProblem(
      `"${where}messages" must be a non-empty array, got ${describe(messages)}`,
    );
  }
  for (let i = 0; i < messages.length; i++) {
    const m: unknown = messages[i];
    if (!isRecord(m))
      return messagesProblem(`"${messageField(where, i)}" must be an object, got ${describe(m)}`);
    if (typeof m.role !== 'string' || !CHAT_ROLES.has(m.role)) {
      return messagesProblem(
        `"${messageField(where, i)}.role" must be one of ${ROLE_LIST}, got ${describe(m.role)}`,
      );
    }
    const { content } = m;
    if (content === undefined) {
      // An assistant turn that only calls tools may omit content (OpenAI's schema).
      if (m.role === 'assistant' && (m.tool_calls !== undefined || m.function_call !== undefined)) {
        continue;
      }
      return messagesProblem(`"${messageField(where, i)}.content" is missing`);
    }
    if (content === null || typeof content === 'string') continue;
    if (!Array.isArray(content)) {
      return messagesProblem(
        `"${messageField(where, i)}.content" must be a string, an array of parts or null, got ${describe(content)}`,
      );
    }
    for (let j = 0; j < content.length; j++) {
      const part: unknown = content[j];
      if (!isRecord(part) || typeof part.type !== 'string') {
        return messagesProblem(
          `"${messageField(where, i)}.content[${j}]" must be an object with a string "type"`,
        );
      }
    }
  }
  return undefined;
}

function messagesProblem(detail: string): Problem {
  return { code: 'VOLLEY_INPUT_MESSAGES_INVALID', detail };
}

/** `body.messages[2]`, built only for a message. */
function messageField(where: string, i: number): string {
  return `${where}messages[${i}]`;
}

/** `input` of /v1/responses: a non-empty string, or a non-empty array of input items (objects). */
function checkResponseInput(v: unknown, field: string): Problem | undefined {
  const ok =
    (typeof v === 'string' && v.length > 0) ||
    (Array.isArray(v) && v.length > 0 && v.every((item) => isRecord(item)));
  if (ok) return undefined;
  return {
    code: 'VOLLEY_INPUT_RESPONSE_INPUT_INVALID',
    detail: `"${field}" must be a non-empty string or a non-empty array of input items, got ${describe(v)}`,
  };
}

/** `prompt` of /v1/completions and `input` of /v1/embeddings share one shape. */
function checkTextOrTokens(v: unknown, field: string, code: InputIssueCode): Problem | undefined {
  const bad = (): Problem => ({
    code,
    detail: `"${field}" must be a non-empty string, array of strings, array of token ids or array of token-id arrays, got ${describe(v)}`,
  });
  if (typeof v === 'string') return v.length > 0 ? undefined : bad();
  if (!Array.isArray(v) || v.length === 0) return bad();
  const isTokens = (a: unknown): boolean =>
    Array.isArray(a) &&
    a.length > 0 &&
    a.every((t) => Number.isSafeInteger(t) && (t as number) >= 0);
  const ok =
    v.every((s) => typeof s === 'string' && s.length > 0) ||
    isTokens(v) ||
    v.every((a) => isTokens(a));
  return ok ? undefined : bad();
}

function checkCustomId(id: unknown): Problem | undefined {
  if (id === undefined) {
    return { code: 'VOLLEY_INPUT_CUSTOM_ID_MISSING', detail: '"custom_id" is missing' };
  }
  if (typeof id !== 'string') {
    return {
      code: 'VOLLEY_INPUT_CUSTOM_ID_NOT_STRING',
      detail: `"custom_id" must be a non-empty string, got ${describe(id)}`,
    };
  }
  if (id.trim() === '') {
    return {
      code: 'VOLLEY_INPUT_CUSTOM_ID_EMPTY',
      detail: '"custom_id" must be a non-empty string',
    };
  }
  if (id.length > MAX_CUSTOM_ID_LENGTH) {
    return {
      code: 'VOLLEY_INPUT_CUSTOM_ID_TOO_LONG',
      detail: `"custom_id" is ${id.length} characters; at most ${MAX_CUSTOM_ID_LENGTH} are allowed`,
    };
  }
  if (hasUnsafeTextChars(id)) {
    return {
      code: 'VOLLEY_INPUT_CUSTOM_ID_UNSAFE',
      detail: '"custom_id" contains control, bidi or unpaired surrogate characters',
    };
  }
  if (isPlaceholderForm(id)) {
    return {
      code: 'VOLLEY_INPUT_CUSTOM_ID_RESERVED',
      detail: `"custom_id" ${JSON.stringify(id)} has the form Volley reserves for the records of lines without a valid custom_id`,
    };
  }
  return undefined;
}

/**
 * The custom_id of a convenience line that has none: `line-<n>`. It is sent, written into retry
 * lines and checked for duplicates like any real id (a real `line-<n>` elsewhere is a duplicate).
 */
export function implicitCustomId(lineNo: number): string {
  return `line-${lineNo}`;
}

/**
 * The custom_id of the error record of a line that has no valid id of its own (missing, invalid,
 * unreadable line): `#line-<n>`. No valid custom_id has this form (`VOLLEY_INPUT_CUSTOM_ID_RESERVED`)
 * and line numbers are unique, so a placeholder never names another line's record.
 */
export function placeholderCustomId(lineNo: number): string {
  return `#line-${lineNo}`;
}

/** The issue of an unreadable line (a framing issue), with the placeholder as its custom_id. */
export function withPlaceholderId(issue: InputIssue): InputIssue {
  return issue.customId === undefined
    ? { ...issue, customId: placeholderCustomId(issue.lineNo) }
    : issue;
}

/** True for ids of the placeholder form, which real ids may not take. */
export function isPlaceholderForm(id: string): boolean {
  return PLACEHOLDER_FORM.test(id);
}

const PLACEHOLDER_FORM = /^#line-\d+$/;

function validCustomId(id: unknown): string | undefined {
  return checkCustomId(id) === undefined ? (id as string) : undefined;
}

/**
 * Builds the issue for a `custom_id` seen on an earlier line; the caller detects it with
 * `createDuplicateTracker` (duplicate-tracker.ts).
 */
export function duplicateCustomIdIssue(line: BatchLineInput, customId: string): InputIssue {
  // A line without its own id repeats an id only through its implicit one: its record takes the
  // placeholder, so the id keeps naming the earlier line alone.
  const implicit = customId === implicitCustomId(line.lineNo) && !hasOwnCustomId(line.text);
  return makeIssue(
    line,
    'VOLLEY_INPUT_DUPLICATE_CUSTOM_ID',
    implicit
      ? `the line has no "custom_id", and its implicit one ${JSON.stringify(customId)} was already used by an earlier line; give it a custom_id`
      : `"custom_id" ${makeSnippet(JSON.stringify(customId)).slice(0, 100)} was already used by an earlier line`,
    undefined,
    implicit ? undefined : customId,
  );
}

function hasOwnCustomId(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text);
    return isRecord(value) && Object.hasOwn(value, 'custom_id');
  } catch {
    return false;
  }
}

function makeIssue(
  line: BatchLineInput,
  code: InputIssueCode,
  detail: string,
  index?: number,
  customId?: string,
): InputIssue {
  const issue: InputIssue = {
    code,
    message: `line ${line.lineNo}: ${detail}`,
    lineNo: line.lineNo,
    offset: line.offset,
    // Start a little before the problem so the snippet shows its context.
    snippet: makeSnippet(line.text, index === undefined ? 0 : Math.max(0, index - 20)),
    customId: customId ?? placeholderCustomId(line.lineNo),
  };
  return issue;
}

function fail(
  line: BatchLineInput,
  code: InputIssueCode,
  detail: string,
  index?: number,
  customId?: string,
): Failure {
  return { ok: false, issue: makeIssue(line, code, detail, index, customId) };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isEmpty(obj: Record<string, unknown>): boolean {
  for (const _ in obj) return false;
  return true;
}

/** A short, escaped description of a value for messages: `number 12`, `string "..."`, `array`. */
function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.length === 0 ? 'an empty array' : 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string')
    return v.length === 0
      ? 'an empty string'
      : `string ${makeSnippet(JSON.stringify(v)).slice(0, 40)}`;
  return `${typeof v} ${String(v)}`;
}
