/**
 * Output records, and the key that ties each one to the request it answers.
 *
 * Every record's `id` (`batch_req_` + 24 hex characters, the shape of OpenAI's batch request ids)
 * is derived, not random: the first 96 bits of SHA-256(runId, custom_id, line text). So the
 * records themselves are the journal's index. On `--resume`, a record whose `custom_id` matches an
 * input line but whose `id` does not was produced for a different request (the line was edited),
 * and a record for an unchanged line is recognised without any side file holding per-line state.
 * The random per-run `runId` keeps ids unique across separate runs of the same file.
 */

import { hash } from 'node:crypto';
import { scrubSecrets } from '@volley/core';
import type { CallResult } from 'volley';
import type { InputIssue } from '../jsonl/reader.js';

/**
 * The key's input is encoded into this reused buffer when it fits: hashing the joined string would
 * first flatten `runId + customId + text` into a new string on the heap (~0.4 KB of garbage a line
 * on the benchmark's chat line, issue 12). Longer lines take the string path.
 */
const KEY_SCRATCH = Buffer.allocUnsafeSlow(16 * 1024);

/** The record id of a line: `batch_req_` + the first 12 bytes of its key, as hex. */
export function recordId(runId: string, customId: string, text: string): string {
  // One-shot hash() is about 2.5x faster than createHash().update() chains; its hex digest, cut
  // to 24 characters, is the same text as the first 12 bytes' hex and costs 0.48 µs a line on the
  // benchmark's chat line against 1.19 µs through a Buffer, subarray and toString (issue 12).
  // UTF-8 takes at most 3 bytes per UTF-16 unit; both paths encode a lone surrogate as U+FFFD.
  if (3 * (runId.length + customId.length + text.length) + 2 <= KEY_SCRATCH.length) {
    let n = KEY_SCRATCH.write(runId, 0, 'utf8');
    KEY_SCRATCH[n++] = 0;
    n += KEY_SCRATCH.write(customId, n, 'utf8');
    KEY_SCRATCH[n++] = 0;
    n += KEY_SCRATCH.write(text, n, 'utf8');
    return `batch_req_${hash('sha256', KEY_SCRATCH.subarray(0, n), 'hex').slice(0, 24)}`;
  }
  return `batch_req_${hash('sha256', `${runId}\u0000${customId}\u0000${text}`, 'hex').slice(0, 24)}`;
}

/** What an error record says, beyond the id. */
export interface ErrorRecordDetails {
  /** Stable code: `VOLLEY_ERR_*` for request failures, `VOLLEY_INPUT_*` for bad lines. */
  code: string;
  message: string;
  /** HTTP status of the last attempt, when there was one. */
  status?: number | undefined;
  /** Attempts made (0 for a line that was never sent). */
  attempts?: number | undefined;
  /** Whether `--resume` sends the line again (transient failures) or keeps this record. */
  retryable: boolean;
  /** 1-based input line number. */
  line: number;
  /** Byte offset of the line in the input (bad lines). */
  offset?: number | undefined;
  /** Short escaped snippet of the line (bad lines). */
  snippet?: string | undefined;
  /**
   * The server's error code, else its error type (`model_not_found`, `insufficient_quota`,
   * `invalid_request_error`): the runtime keeps one of the two, the code when there is one.
   */
  serverCode?: string | undefined;
}

/**
 * Longest message an error record keeps: a server's whole explanation (the runtime keeps up to
 * 500 characters of a body that is not the API's JSON) fits, a megabyte HTML page does not.
 */
export const ERROR_MESSAGE_BYTES = 4096;

/** Scrubbed of secrets first, then cut to `bytes` of UTF-8 (on a character boundary). */
export function recordMessage(message: string, bytes: number = ERROR_MESSAGE_BYTES): string {
  const clean = scrubSecrets(message);
  if (Buffer.byteLength(clean) <= bytes) return clean;
  let cut = Buffer.from(clean)
    .subarray(0, bytes - 3)
    .toString('utf8');
  // A cut through a multi-byte character decodes to U+FFFD: drop it.
  if (cut.endsWith('\uFFFD')) cut = cut.slice(0, -1);
  return `${cut}\u2026`;
}

/**
 * One output line for a success. The body is the server's JSON text embedded as is (validated in
 * the worker), so the main thread never re-parses or re-serialises a result. A pretty-printed
 * body would break the one-record-per-line framing, so only then is it re-serialised.
 *
 * `volley` (a sampled line's tally, see samples/sampler.ts) is written last, after the OpenAI
 * Batch fields, which keep their shape; `id` and `custom_id` stay first for `parseRecordHead`.
 *
 * @example
 * journal.results.append(successRecord(recordId(runId, id, text), id, result));
 */
export function successRecord(
  id: string,
  customId: string,
  result: Pick<CallResult, 'status' | 'requestId' | 'body' | 'bodyText'>,
  volley?: object,
): string {
  return successRecordPieces(id, customId, result, volley).join('');
}

/**
 * {@link successRecord} as the pieces a journal writes one after another (`LineText`): the
 * server's body stays the string it arrived as, neither copied into the record nor flattened to
 * measure it (issue 12: ~1.2 KB of garbage a line).
 */
export function successRecordPieces(
  id: string,
  customId: string,
  result: Pick<CallResult, 'status' | 'requestId' | 'body' | 'bodyText'>,
  volley?: object,
): readonly [string, string, string] {
  let body = result.bodyText ?? JSON.stringify(result.body ?? null);
  if (body.includes('\n') || body.includes('\r')) body = JSON.stringify(JSON.parse(body));
  const extra = volley === undefined ? '' : `,"volley":${JSON.stringify(volley)}`;
  return [
    `{"id":${JSON.stringify(id)},"custom_id":${JSON.stringify(customId)},"response":{"status_code":${result.status},"request_id":${JSON.stringify(result.requestId)},"body":`,
    body,
    `},"error":null${extra}}`,
  ];
}

/**
 * One errors-file line, in the OpenAI Batch error shape (`response` null or the status, `error`
 * with `code` and `message`) plus Volley's fields: `status`, `attempts`, `retryable`, `line`, and
 * for bad input `offset` and `snippet`. Messages are scrubbed of anything that looks like a key.
 */
export function errorRecord(id: string, customId: string, details: ErrorRecordDetails): string {
  const error: Record<string, unknown> = {
    code: details.code,
    message: recordMessage(details.message),
    retryable: details.retryable,
    line: details.line,
  };
  if (details.status !== undefined) error.status = details.status;
  if (details.attempts !== undefined) error.attempts = details.attempts;
  if (details.offset !== undefined) error.offset = details.offset;
  if (details.snippet !== undefined) error.snippet = details.snippet;
  if (details.serverCode !== undefined) error.server_code = details.serverCode;
  return JSON.stringify({
    id,
    custom_id: customId,
    response:
      details.status === undefined
        ? null
        : { status_code: details.status, request_id: '', body: serverErrorBody(details) },
    error,
  });
}

/**
 * The body of an HTTP failure, in the shape OpenAI's Batch error records carry
 * (`{"error":{"message","code"}}`). It is rebuilt from what the runtime keeps of the answer, the
 * server's message (or the start of a body that is not JSON) and its error code (or type): the
 * raw bytes do not travel past the HTTP client.
 */
function serverErrorBody(details: ErrorRecordDetails): { error: Record<string, unknown> } {
  const message = details.message.replace(/^HTTP \d{3}: ?/, '');
  return {
    error: { message: recordMessage(message), code: details.serverCode ?? null },
  };
}

/** The `id` and `custom_id` at the head of a record Volley wrote. */
export interface RecordHead {
  id: string;
  customId: string;
}

const HEAD_PREFIX = Buffer.from('{"id":"batch_req_');
const HEAD_MIDDLE = Buffer.from('","custom_id":"');
const ID_HEX = 24;

/**
 * Reads `id` and `custom_id` from the start of a record Volley wrote, without parsing its body
 * (a result can be megabytes). Returns undefined for anything else, including a torn line: a
 * whole record ends with `}`.
 */
export function parseRecordHead(line: Buffer): RecordHead | undefined {
  if (line.length < HEAD_PREFIX.length + ID_HEX + HEAD_MIDDLE.length + 2) return undefined;
  if (line[line.length - 1] !== 0x7d) return undefined;
  if (line.compare(HEAD_PREFIX, 0, HEAD_PREFIX.length, 0, HEAD_PREFIX.length) !== 0) {
    return undefined;
  }
  const hexEnd = HEAD_PREFIX.length + ID_HEX;
  const hex = line.toString('latin1', HEAD_PREFIX.length, hexEnd);
  if (!/^[0-9a-f]{24}$/.test(hex)) return undefined;
  if (line.compare(HEAD_MIDDLE, 0, HEAD_MIDDLE.length, hexEnd, hexEnd + HEAD_MIDDLE.length) !== 0) {
    return undefined;
  }
  const start = hexEnd + HEAD_MIDDLE.length - 1; // the opening quote of custom_id
  let end = start + 1;
  for (; end < line.length; end++) {
    const byte = line[end];
    if (byte === 0x5c) end++;
    else if (byte === 0x22) break;
  }
  if (end >= line.length) return undefined;
  try {
    const customId: unknown = JSON.parse(line.toString('utf8', start, end + 1));
    if (typeof customId !== 'string') return undefined;
    return { id: `batch_req_${hex}`, customId };
  } catch {
    return undefined;
  }
}

/**
 * The error record of a bad input line (never sent): under its own custom_id when it has a valid
 * one, else its placeholder; its id derives from the line's text (or its code, for a line that
 * could not be read), so every run writes the same record for it.
 */
export function badLineRecord(
  runId: string,
  lineNo: number,
  issue: InputIssue,
  text: string | undefined,
): { customId: string; record: string } {
  const customId = issue.customId ?? `line-${lineNo}`;
  const record = errorRecord(recordId(runId, customId, text ?? `#${issue.code}`), customId, {
    code: issue.code,
    message: issue.message,
    retryable: false,
    line: lineNo,
    offset: issue.offset,
    snippet: issue.snippet,
  });
  return { customId, record };
}
