/**
 * The Responses API (`/v1/responses`) on the wire: its usage in Volley's counters, and its SSE
 * stream folded into the body the same request returns without streaming.
 *
 * A Responses stream is typed events (`response.created`, `response.output_text.delta`, ...)
 * with no `[DONE]`: it is complete only when a final event (`response.completed` or
 * `response.incomplete`) arrives carrying the whole response, which is the body. A clean close
 * before that is a truncated stream; `response.failed` and `error` events are failures.
 */
import type { Usage } from '@volley/core';
import type { ChunkDelta } from './stream-assembler.js';

/** The path of the Responses API, relative to the base URL. */
export const RESPONSES_PATH = '/responses';

/** Final events: their `response` is the finished response. */
const FINAL_EVENTS = new Set(['response.completed', 'response.incomplete']);

/** A stream event that reports a failure instead of an answer. */
export class ResponseStreamError extends Error {
  override name = 'ResponseStreamError';
}

/**
 * Volley's usage counters from a `usage` of either API: chat and completions report
 * `prompt_tokens`/`completion_tokens`, the Responses API `input_tokens`/`output_tokens`.
 * Undefined when neither shape is there.
 */
export function usageOf(value: unknown): Usage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const usage = value as Record<string, unknown>;
  if (typeof usage.prompt_tokens === 'number' && typeof usage.total_tokens === 'number')
    return usage as Usage;
  const { input_tokens: input, output_tokens: output, total_tokens: total } = usage;
  if (typeof input !== 'number' || typeof output !== 'number') return undefined;
  return {
    prompt_tokens: input,
    completion_tokens: output,
    total_tokens: typeof total === 'number' ? total : input + output,
  };
}

export class ResponsesAssembler {
  #final: Record<string, unknown> | undefined;
  #id = '';

  /** Folds one parsed event in; returns the text it carried (for TTFT and `onDelta`). */
  accept(event: Record<string, unknown>): ChunkDelta[] {
    const { type } = event;
    if (type === 'response.output_text.delta') {
      const { delta } = event;
      return typeof delta === 'string' && delta.length > 0 ? [{ choice: 0, content: delta }] : [];
    }
    const response = event.response;
    const body =
      typeof response === 'object' && response !== null
        ? (response as Record<string, unknown>)
        : undefined;
    if (this.#id === '' && typeof body?.id === 'string') this.#id = body.id;
    if (typeof type === 'string' && FINAL_EVENTS.has(type)) {
      if (body === undefined || !Array.isArray(body.output))
        throw new ResponseStreamError(`the ${type} event carries no response with an output`);
      this.#final = body;
    } else if (type === 'response.failed') {
      throw new ResponseStreamError(`response failed: ${JSON.stringify(body?.error ?? null)}`);
    } else if (type === 'error') {
      throw new ResponseStreamError(
        `stream carried an error: ${JSON.stringify({ code: event.code, message: event.message })}`,
      );
    }
    return [];
  }

  get isComplete(): boolean {
    return this.#final !== undefined;
  }

  get id(): string {
    return this.#id;
  }

  get usage(): Usage | undefined {
    return usageOf(this.#final?.usage);
  }

  /** The final response: only once {@link isComplete}. */
  result(): Record<string, unknown> {
    if (this.#final === undefined) throw new Error('the response stream is not complete');
    return this.#final;
  }
}
