/**
 * The OpenAI Batch JSONL format, as read and written by the OpenAI Batch API and vLLM `run-batch`.
 */

export const BATCH_URLS = [
  '/v1/chat/completions',
  '/v1/completions',
  '/v1/embeddings',
  '/v1/responses',
] as const;
export type BatchUrl = (typeof BATCH_URLS)[number];

/** One input line: `{"custom_id","method":"POST","url":"/v1/...","body":{...}}`. */
export interface BatchRequestLine {
  custom_id: string;
  method: 'POST';
  url: BatchUrl;
  body: Record<string, unknown>;
}

/** One output line. Exactly one of `response` (any HTTP status) and `error` is meaningful. */
export interface BatchResponseLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: unknown } | null;
  error: { code: string; message: string } | null;
}
