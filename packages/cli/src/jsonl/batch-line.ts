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
 * ({@link scanJsonStructure}), which skips string contents with native `indexOf` and so costs in
 * proportion to the number of tokens, not of characters. Measured on Node 20 (this machine): a
 * 2.5 KB chat line takes 2.4 µs to JSON.parse, 1.0 µs to scan, 4.7 µs in all; a 12 KB line of
 * tool schemas (structure-heavy, the worst case) 92 µs, 76 µs and 170 µs. Either way the parser
 * handles far more lines per second than a rate-limited run sends. The slow diagnosis of bad JSON
 * runs only after `JSON.parse` has failed.
 */

import type { BatchUrl } from '@volley/core';
import { BATCH_URLS } from '@volley/core';
import { hasUnsafeTextChars } from '../progress.js';
import type { IdTableOptions } from './id-table.js';
import { createIdTable } from './id-table.js';
import type { InputIssue } from './reader.js';
import { makeSnippet } from './reader.js';

export type { InputIssue } from './reader.js';

// The endpoints a batch line may target: the one list, in @volley/core's batch protocol.
export type { BatchUrl };
export { BATCH_URLS };

/** Every code `parseBatchLine` and the reader can report, with its severity and meaning. */
export const INPUT_ISSUE_CODES = {
  // Framing (reader.ts)
  VOLLEY_INPUT_LINE_TOO_LONG: {
    severity: 'error',
    meaning: 'line over maxLineBytes; skipped unread',
  },
  VOLLEY_INPUT_INVALID_UTF8: { severity: 'error', meaning: 'line is not valid UTF-8' },
  // JSON syntax
  VOLLEY_INPUT_UNEXPECTED_BOM: {
    severity: 'error',
    meaning: 'a byte order mark starts a line other than line 1',
  },
  VOLLEY_INPUT_JSON_TRUNCATED: {
    severity: 'error',
    meaning: 'JSON ends early (unclosed string, object or array)',
  },
  VOLLEY_INPUT_JSON_SINGLE_QUOTE: {
    severity: 'error',
    meaning: 'single-quoted string (a JS/Python-ism)',
  },
  VOLLEY_INPUT_JSON_TRAILING_COMMA: { severity: 'error', meaning: 'comma before } or ]' },
  VOLLEY_INPUT_JSON_NON_STANDARD_LITERAL: {
    severity: 'error',
    meaning: 'NaN, Infinity, undefined, True, False or None',
  },
  VOLLEY_INPUT_JSON_COMMENT: { severity: 'error', meaning: '// or /* comment' },
  VOLLEY_INPUT_JSON_UNQUOTED_KEY: {
    severity: 'error',
    meaning: 'object key without double quotes',
  },
  VOLLEY_INPUT_JSON_CONTROL_CHAR: {
    severity: 'error',
    meaning: 'raw control character inside a string',
  },
  VOLLEY_INPUT_JSON_TRAILING_DATA: {
    severity: 'error',
    meaning: 'more text after the JSON value (two objects on one line?)',
  },
  VOLLEY_INPUT_JSON_SYNTAX: { severity: 'error', meaning: 'other JSON syntax error' },
  // JSON structure (valid JSON that Volley still refuses)
  VOLLEY_INPUT_JSON_TOO_DEEP: {
    severity: 'error',
    meaning: 'objects/arrays nested deeper than 64',
  },
  VOLLEY_INPUT_JSON_UNSAFE_INTEGER: {
    severity: 'error',
    meaning: 'integer literal beyond 2^53 - 1 (would lose precision)',
  },
  VOLLEY_INPUT_JSON_NUMBER_OUT_OF_RANGE: {
    severity: 'error',
    meaning: 'number literal beyond the double range (would become Infinity, sent as null)',
  },
  VOLLEY_INPUT_JSON_DUPLICATE_KEY: {
    severity: 'error',
    meaning: 'the same key twice in one object',
  },
  VOLLEY_INPUT_JSON_FORBIDDEN_KEY: {
    severity: 'error',
    meaning: '__proto__ or constructor key, at any depth',
  },
  // Line shape
  VOLLEY_INPUT_NOT_OBJECT: { severity: 'error', meaning: 'the line is not a JSON object' },
  VOLLEY_INPUT_UNRECOGNIZED_LINE: {
    severity: 'error',
    meaning: 'neither a batch line nor a prompt/messages/input line',
  },
  VOLLEY_INPUT_AMBIGUOUS_LINE: {
    severity: 'error',
    meaning: 'more than one of prompt, messages, input',
  },
  VOLLEY_INPUT_UNKNOWN_FIELD: {
    severity: 'warning',
    meaning: 'unknown top-level field in a batch line; ignored',
  },
  // custom_id
  VOLLEY_INPUT_CUSTOM_ID_MISSING: { severity: 'error', meaning: 'batch line without custom_id' },
  VOLLEY_INPUT_CUSTOM_ID_NOT_STRING: { severity: 'error', meaning: 'custom_id is not a string' },
  VOLLEY_INPUT_CUSTOM_ID_EMPTY: { severity: 'error', meaning: 'custom_id is empty or whitespace' },
  VOLLEY_INPUT_CUSTOM_ID_TOO_LONG: {
    severity: 'error',
    meaning: 'custom_id over 512 UTF-16 code units',
  },
  VOLLEY_INPUT_CUSTOM_ID_UNSAFE: {
    severity: 'error',
    meaning: 'custom_id has control, bidi or lone-surrogate characters',
  },
  VOLLEY_INPUT_CUSTOM_ID_RESERVED: {
    severity: 'error',
    meaning: 'custom_id of the form #line-<n>, reserved for the records of lines without one',
  },
  VOLLEY_INPUT_DUPLICATE_CUSTOM_ID: {
    severity: 'error',
    meaning: 'custom_id already used by an earlier line',
  },
  // Request envelope
  VOLLEY_INPUT_METHOD_INVALID: { severity: 'error', meaning: 'method is missing or not "POST"' },
  VOLLEY_INPUT_URL_ABSOLUTE: {
    severity: 'error',
    meaning: 'url has a scheme or host; hosts come from configuration',
  },
  VOLLEY_INPUT_URL_UNSUPPORTED: {
    severity: 'error',
    meaning: 'url is missing or not one of BATCH_URLS',
  },
  VOLLEY_INPUT_BODY_MISSING: { severity: 'error', meaning: 'batch line without body' },
  VOLLEY_INPUT_BODY_NOT_OBJECT: { severity: 'error', meaning: 'body is not a JSON object' },
  VOLLEY_INPUT_BODY_EMPTY: { severity: 'error', meaning: 'body is {}' },
  // Request body
  VOLLEY_INPUT_MODEL_MISSING: {
    severity: 'error',
    meaning: 'no body.model and no --model default',
  },
  VOLLEY_INPUT_MODEL_INVALID: { severity: 'error', meaning: 'model is not a non-empty string' },
  VOLLEY_INPUT_MODEL_NOT_ALLOWED: {
    severity: 'error',
    meaning: 'model is not in the allowed list',
  },
  VOLLEY_INPUT_MESSAGES_INVALID: {
    severity: 'error',
    meaning: 'messages is not a non-empty array of {role, content}',
  },
  VOLLEY_INPUT_PROMPT_INVALID: {
    severity: 'error',
    meaning: 'prompt is missing, empty or of the wrong type',
  },
  VOLLEY_INPUT_EMBEDDING_INPUT_INVALID: {
    severity: 'error',
    meaning: 'input is missing, empty or of the wrong type',
  },
  VOLLEY_INPUT_RESPONSE_INPUT_INVALID: {
    severity: 'error',
    meaning: 'input of a /v1/responses line is not a non-empty string or array of items',
  },
  VOLLEY_INPUT_STREAM_NOT_ALLOWED: {
    severity: 'error',
    meaning: 'stream is set; Volley decides streaming itself',
  },
  VOLLEY_INPUT_MAX_TOKENS_INVALID: {
    severity: 'error',
    meaning: 'max_tokens/max_completion_tokens/max_output_tokens not a positive integer',
  },
  VOLLEY_INPUT_PROMPT_TOO_LONG: {
    severity: 'error',
    meaning: 'estimated prompt tokens over --max-prompt-tokens',
  },
  VOLLEY_INPUT_SAMPLES_UNSUPPORTED: {
    severity: 'error',
    meaning: '--samples on an embeddings line, or on a line with n > 1 with --select vote or judge',
  },
} as const satisfies Record<string, { severity: 'error' | 'warning'; meaning: string }>;

/** A stable `VOLLEY_INPUT_*` code. */
export type InputIssueCode = keyof typeof INPUT_ISSUE_CODES;

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
/** Deepest accepted nesting of objects and arrays; the line's own object is depth 1. */
export const MAX_JSON_DEPTH = 64;

const BATCH_FIELDS = new Set(['custom_id', 'method', 'url', 'body']);
const CHAT_ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);
const ROLE_LIST = [...CHAT_ROLES].join(', ');
const ABSOLUTE_URL = /^(?:[a-z][a-z0-9+.-]*:|\/\/|\\\\)/i;

type Failure = { ok: false; issue: InputIssue };

/**
 * Validates one line and turns it into a request. Never throws on bad input: every problem is a
 * coded issue naming the field. Duplicate `custom_id`s across lines are the caller's job (see
 * {@link createDuplicateTracker}).
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

  const structure = scanJsonStructure(text);
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
  const unknown = Object.keys(obj).filter((key) => !BATCH_FIELDS.has(key));
  if (unknown.length === 0) return { ok: true, request };
  const warning = makeIssue(
    line,
    'VOLLEY_INPUT_UNKNOWN_FIELD',
    `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} ignored`,
    undefined,
    customId,
  );
  return { ok: true, request, warnings: [warning] };
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
  for (const key of ['max_tokens', 'max_completion_tokens', 'max_output_tokens'] as const) {
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
      return checkMessages(body.messages, `${where}messages`);
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

function checkMessages(messages: unknown, field: string): Problem | undefined {
  const bad = (detail: string): Problem => ({ code: 'VOLLEY_INPUT_MESSAGES_INVALID', detail });
  if (!Array.isArray(messages) || messages.length === 0) {
    return bad(`"${field}" must be a non-empty array, got ${describe(messages)}`);
  }
  for (let i = 0; i < messages.length; i++) {
    const m: unknown = messages[i];
    const at = `${field}[${i}]`;
    if (!isRecord(m)) return bad(`"${at}" must be an object, got ${describe(m)}`);
    if (typeof m.role !== 'string' || !CHAT_ROLES.has(m.role)) {
      return bad(`"${at}.role" must be one of ${ROLE_LIST}, got ${describe(m.role)}`);
    }
    const { content } = m;
    if (content === undefined) {
      // An assistant turn that only calls tools may omit content (OpenAI's schema).
      if (m.role === 'assistant' && (m.tool_calls !== undefined || m.function_call !== undefined)) {
        continue;
      }
      return bad(`"${at}.content" is missing`);
    }
    if (content === null || typeof content === 'string') continue;
    if (!Array.isArray(content)) {
      return bad(
        `"${at}.content" must be a string, an array of parts or null, got ${describe(content)}`,
      );
    }
    for (let j = 0; j < content.length; j++) {
      const part: unknown = content[j];
      if (!isRecord(part) || typeof part.type !== 'string') {
        return bad(`"${at}.content[${j}]" must be an object with a string "type"`);
      }
    }
  }
  return undefined;
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
 * {@link createDuplicateTracker}.
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

// ---------------------------------------------------------------------------------------------
// Raw-text scans

/** A problem found by {@link scanJsonStructure}; `index` is a UTF-16 index into the text. */
export interface StructureProblem {
  code:
    | 'VOLLEY_INPUT_JSON_TOO_DEEP'
    | 'VOLLEY_INPUT_JSON_UNSAFE_INTEGER'
    | 'VOLLEY_INPUT_JSON_NUMBER_OUT_OF_RANGE'
    | 'VOLLEY_INPUT_JSON_DUPLICATE_KEY'
    | 'VOLLEY_INPUT_JSON_FORBIDDEN_KEY';
  detail: string;
  index: number;
}

/** Objects switch from a linear array of keys to a Set above this many keys. */
const SMALL_OBJECT_KEYS = 16;

/**
 * One linear pass over text that `JSON.parse` has accepted, finding what it accepts silently:
 * duplicate keys (it keeps the last), `__proto__`/`constructor` keys (a prototype-pollution
 * vector once the object is merged), integer literals beyond 2^53 (it rounds them), number
 * literals beyond the double range (it makes them Infinity, which `JSON.stringify` sends as
 * `null`) and nesting deeper than {@link MAX_JSON_DEPTH}. Number problems name the field path.
 *
 * Strings are skipped with `indexOf('"')`, so prompts, the bulk of a line, are crossed at native
 * speed; only structural characters are visited one by one. Keys are compared after decoding
 * escapes (`"\u005f_proto__"` is `__proto__`). Per object, keys go in an array (small objects) or
 * a Set (large ones): linear overall, never quadratic.
 *
 * The text must be valid JSON; on other text the result is meaningless.
 */
export function scanJsonStructure(text: string): StructureProblem | undefined {
  // One entry per open container: the keys seen so far (objects) or null (arrays).
  const frames: Array<string[] | Set<string> | null> = [];
  let expectKey = false;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let end = text.indexOf('"', i + 1);
      while (end !== -1 && isEscaped(text, end)) end = text.indexOf('"', end + 1);
      if (end === -1) return undefined;
      if (expectKey) {
        const raw = text.slice(i + 1, end);
        const key = raw.includes('\\') ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        if (key === '__proto__' || key === 'constructor') {
          return {
            code: 'VOLLEY_INPUT_JSON_FORBIDDEN_KEY',
            detail: `key ${JSON.stringify(key)} is not allowed`,
            index: i,
          };
        }
        const frame = frames[frames.length - 1];
        if (frame != null && addKey(frames, frame, key)) {
          return {
            code: 'VOLLEY_INPUT_JSON_DUPLICATE_KEY',
            detail: `key ${makeSnippet(JSON.stringify(key)).slice(0, 60)} appears twice in the same object`,
            index: i,
          };
        }
        expectKey = false;
      }
      i = end + 1;
      continue;
    }
    switch (c) {
      case 0x7b /* { */:
      case 0x5b /* [ */:
        frames.push(c === 0x7b ? [] : null);
        if (frames.length > MAX_JSON_DEPTH) {
          return {
            code: 'VOLLEY_INPUT_JSON_TOO_DEEP',
            detail: `nesting is deeper than ${MAX_JSON_DEPTH} levels`,
            index: i,
          };
        }
        expectKey = c === 0x7b;
        break;
      case 0x7d /* } */:
      case 0x5d /* ] */:
        frames.pop();
        expectKey = false;
        break;
      case 0x2c /* , */:
        expectKey = frames[frames.length - 1] != null;
        break;
      case 0x3a /* : */:
        expectKey = false;
        break;
      default:
        if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
          let end = i + 1;
          let integer = true;
          let exponent = false;
          for (; end < n; end++) {
            const d = text.charCodeAt(end);
            if (d >= 0x30 && d <= 0x39) continue;
            if (d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d) {
              integer = false;
              if (d === 0x65 || d === 0x45) exponent = true;
              continue;
            }
            break;
          }
          // 2^53 has 16 digits: shorter integer literals are always safe, so most numbers are
          // never converted here.
          const digits = end - i - (c === 0x2d ? 1 : 0);
          if (integer && digits >= 16 && !Number.isSafeInteger(Number(text.slice(i, end)))) {
            return {
              code: 'VOLLEY_INPUT_JSON_UNSAFE_INTEGER',
              detail: `${fieldLabel(text, i)}integer ${text.slice(i, Math.min(end, i + 40))} is beyond 2^53 - 1 and would lose precision; quote it as a string`,
              index: i,
            };
          }
          // Only an exponent or over 308 digits can leave the double range (1.8e308).
          if (
            !integer &&
            (exponent || digits > 308) &&
            !Number.isFinite(Number(text.slice(i, end)))
          ) {
            return {
              code: 'VOLLEY_INPUT_JSON_NUMBER_OUT_OF_RANGE',
              detail: `${fieldLabel(text, i)}number ${text.slice(i, Math.min(end, i + 40))} is beyond the largest double (about 1.8e308) and would be sent as null; use a smaller number`,
              index: i,
            };
          }
          i = end;
          continue;
        }
    }
    i++;
  }
  return undefined;
}

/** `"body.temperature": ` for the value starting at `index`, or nothing at the top level. */
function fieldLabel(text: string, index: number): string {
  const path = jsonPathAt(text, index);
  return path === '' ? '' : `${makeSnippet(JSON.stringify(path)).slice(0, 80)}: `;
}

/**
 * The path (`body.messages[0].content`) of the value that starts at `index` in valid JSON text:
 * one linear pass, run only to describe a problem already found.
 */
export function jsonPathAt(text: string, index: number): string {
  // One entry per open container: the current key (objects) or element number (arrays).
  const frames: Array<{ key: string } | { element: number }> = [];
  let expectKey = false;
  let i = 0;
  while (i < index) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let end = text.indexOf('"', i + 1);
      while (end !== -1 && isEscaped(text, end)) end = text.indexOf('"', end + 1);
      if (end === -1) break;
      const frame = frames[frames.length - 1];
      if (expectKey && frame !== undefined && 'key' in frame) {
        frame.key = JSON.parse(text.slice(i, end + 1)) as string;
        expectKey = false;
      }
      i = end + 1;
      continue;
    }
    const frame = frames[frames.length - 1];
    if (c === 0x7b /* { */) {
      frames.push({ key: '' });
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      frames.push({ element: 0 });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      frames.pop();
    } else if (c === 0x2c /* , */ && frame !== undefined) {
      if ('key' in frame) expectKey = true;
      else frame.element++;
    }
    i++;
  }
  let path = '';
  for (const frame of frames) {
    if ('element' in frame) path += `[${frame.element}]`;
    else path += path === '' ? frame.key : `.${frame.key}`;
  }
  return path;
}

/** Adds `key` to the current object's frame; true if it was already there. */
function addKey(
  frames: Array<string[] | Set<string> | null>,
  frame: string[] | Set<string>,
  key: string,
): boolean {
  if (Array.isArray(frame)) {
    if (frame.includes(key)) return true;
    if (frame.length < SMALL_OBJECT_KEYS) {
      frame.push(key);
      return false;
    }
    const set = new Set(frame);
    set.add(key);
    frames[frames.length - 1] = set;
    return false;
  }
  if (frame.has(key)) return true;
  frame.add(key);
  return false;
}

/** True if the quote at `index` is preceded by an odd number of backslashes. */
function isEscaped(text: string, index: number): boolean {
  let k = index - 1;
  while (k >= 0 && text.charCodeAt(k) === 0x5c) k--;
  return (index - 1 - k) % 2 === 1;
}

/** What {@link diagnoseJsonError} found: the first anomaly in text order. */
export interface JsonDiagnosis {
  code:
    | 'VOLLEY_INPUT_JSON_TRUNCATED'
    | 'VOLLEY_INPUT_JSON_SINGLE_QUOTE'
    | 'VOLLEY_INPUT_JSON_TRAILING_COMMA'
    | 'VOLLEY_INPUT_JSON_NON_STANDARD_LITERAL'
    | 'VOLLEY_INPUT_JSON_COMMENT'
    | 'VOLLEY_INPUT_JSON_UNQUOTED_KEY'
    | 'VOLLEY_INPUT_JSON_CONTROL_CHAR'
    | 'VOLLEY_INPUT_JSON_TRAILING_DATA'
    | 'VOLLEY_INPUT_JSON_SYNTAX';
  detail: string;
  index: number | undefined;
}

const NON_STANDARD_LITERALS: Record<string, string> = {
  NaN: 'NaN is not JSON; use null or a string',
  Infinity: 'Infinity is not JSON; use null or a string',
  undefined: 'undefined is not JSON; use null or leave the field out',
  True: 'True is not JSON; use true',
  False: 'False is not JSON; use false',
  None: 'None is not JSON; use null',
};

/**
 * Names what is wrong with text that `JSON.parse` rejected, by a tolerant linear scan. Runs on
 * the error path only. Falls back to `VOLLEY_INPUT_JSON_SYNTAX` when nothing specific is found.
 */
export function diagnoseJsonError(text: string): JsonDiagnosis {
  const stack: number[] = [];
  // What came last: the start, `{`/`[`, `,`, `:`, a key or a value.
  let prev: 'start' | 'open' | 'comma' | 'colon' | 'key' | 'value' = 'start';
  let lastComma = 0;
  let complete = false;
  const n = text.length;
  const diag = (code: JsonDiagnosis['code'], detail: string, index?: number): JsonDiagnosis => ({
    code,
    detail,
    index,
  });
  const afterValue = (): void => {
    prev = 'value';
    if (stack.length === 0) complete = true;
  };

  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
      i++;
      continue;
    }
    if (complete) {
      if (c === 0x2f && (text.charCodeAt(i + 1) === 0x2f || text.charCodeAt(i + 1) === 0x2a)) {
        return diag('VOLLEY_INPUT_JSON_COMMENT', 'comments are not allowed in JSON', i);
      }
      return diag(
        'VOLLEY_INPUT_JSON_TRAILING_DATA',
        'unexpected text after the end of the JSON value',
        i,
      );
    }
    if (c === 0x22) {
      let j = i + 1;
      for (; j < n; j++) {
        const d = text.charCodeAt(j);
        if (d === 0x22) break;
        if (d === 0x5c) {
          j++;
          continue;
        }
        if (d < 0x20) {
          return diag(
            'VOLLEY_INPUT_JSON_CONTROL_CHAR',
            `raw control character U+${d.toString(16).padStart(4, '0')} inside a string; escape it`,
            j,
          );
        }
      }
      if (j >= n)
        return diag('VOLLEY_INPUT_JSON_TRUNCATED', 'unterminated string: the line ends early', i);
      const isKey = stack[stack.length - 1] === 0x7b && (prev === 'open' || prev === 'comma');
      if (isKey) prev = 'key';
      else afterValue();
      i = j + 1;
      continue;
    }
    switch (c) {
      case 0x27:
        return diag(
          'VOLLEY_INPUT_JSON_SINGLE_QUOTE',
          'single-quoted string; JSON needs double quotes',
          i,
        );
      case 0x2f:
        if (text.charCodeAt(i + 1) === 0x2f || text.charCodeAt(i + 1) === 0x2a) {
          return diag('VOLLEY_INPUT_JSON_COMMENT', 'comments are not allowed in JSON', i);
        }
        return diag('VOLLEY_INPUT_JSON_SYNTAX', 'unexpected "/"', i);
      case 0x7b:
      case 0x5b:
        stack.push(c);
        prev = 'open';
        i++;
        continue;
      case 0x7d:
      case 0x5d: {
        if (prev === 'comma') {
          return diag(
            'VOLLEY_INPUT_JSON_TRAILING_COMMA',
            `trailing comma before "${text[i]}"`,
            lastComma,
          );
        }
        const open = stack.pop();
        if (open === undefined || (open === 0x7b) !== (c === 0x7d)) {
          return diag('VOLLEY_INPUT_JSON_SYNTAX', `unexpected "${text[i]}"`, i);
        }
        afterValue();
        i++;
        continue;
      }
      case 0x2c:
        prev = 'comma';
        lastComma = i;
        i++;
        continue;
      case 0x3a:
        prev = 'colon';
        i++;
        continue;
    }
    if (c === 0x2d && text.startsWith('-Infinity', i)) {
      return diag(
        'VOLLEY_INPUT_JSON_NON_STANDARD_LITERAL',
        NON_STANDARD_LITERALS.Infinity as string,
        i,
      );
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let j = i + 1;
      while (j < n && /[0-9.eE+-]/.test(text[j] as string)) j++;
      afterValue();
      i = j;
      continue;
    }
    if (/[A-Za-z_$]/.test(text[i] as string)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_$]/.test(text[j] as string)) j++;
      const word = text.slice(i, j);
      const nonStandard = NON_STANDARD_LITERALS[word];
      if (nonStandard !== undefined) {
        return diag('VOLLEY_INPUT_JSON_NON_STANDARD_LITERAL', nonStandard, i);
      }
      if (stack[stack.length - 1] === 0x7b && (prev === 'open' || prev === 'comma')) {
        return diag(
          'VOLLEY_INPUT_JSON_UNQUOTED_KEY',
          `key ${word.slice(0, 40)} must be in double quotes`,
          i,
        );
      }
      if (word !== 'true' && word !== 'false' && word !== 'null') {
        return diag('VOLLEY_INPUT_JSON_SYNTAX', `unexpected word ${word.slice(0, 40)}`, i);
      }
      afterValue();
      i = j;
      continue;
    }
    return diag('VOLLEY_INPUT_JSON_SYNTAX', `unexpected character ${JSON.stringify(text[i])}`, i);
  }
  if (!complete) {
    return diag(
      'VOLLEY_INPUT_JSON_TRUNCATED',
      stack.length > 0
        ? `the line ends with ${stack.length} unclosed object(s)/array(s)`
        : 'the line ends early',
    );
  }
  return diag('VOLLEY_INPUT_JSON_SYNTAX', 'invalid JSON');
}

// ---------------------------------------------------------------------------------------------
// Duplicate custom_id tracking

/** A set of `custom_id`s; see {@link createDuplicateTracker}. */
export interface DuplicateTracker {
  /** Adds an id; false if it was already there (a duplicate). */
  add(id: string): boolean;
  has(id: string): boolean;
  /** Distinct ids stored. */
  readonly size: number;
  /** Bytes of memory held, for diagnostics. */
  readonly bytes: number;
  /** The most slots one lookup has visited, for diagnostics. */
  readonly longestProbe: number;
}

/**
 * Creates an exact set of ids for duplicate detection across millions of lines: an
 * {@link createIdTable | id table} (compact, compares ids, keyed hash). `options` are for tests.
 *
 * @example
 * const ids = createDuplicateTracker();
 * if (!ids.add(request.customId)) report(duplicateCustomIdIssue(line, request.customId));
 */
export function createDuplicateTracker(options: IdTableOptions = {}): DuplicateTracker {
  const ids = createIdTable(options);
  return {
    add: (id) => ids.add(id) >= 0,
    has: (id) => ids.indexOf(id) >= 0,
    get size() {
      return ids.size;
    },
    get bytes() {
      return ids.bytes;
    },
    get longestProbe() {
      return ids.longestProbe;
    },
  };
}
