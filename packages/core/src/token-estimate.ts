/**
 * Token estimates for TPM admission: prompt tokens counted with a real BPE tokenizer
 * (gpt-tokenizer, o200k; ships its encodings, so nothing is downloaded at run time) plus the
 * output the request may produce. The estimate is only a reservation: the token bucket settles
 * it against the response's `usage`, so the error here costs throughput, never a limit breach.
 *
 * The tokenizer is loaded lazily (about 150 ms and tens of MB) and only when a TPM limit exists.
 */
import type { Usage } from './protocol/openai.js';

/** Output tokens assumed when a request sets no `max_tokens`. */
export const DEFAULT_OUTPUT_TOKEN_ESTIMATE = 256;
/** Per-message framing tokens in the chat format. */
const TOKENS_PER_MESSAGE = 4;

export type CountTokens = (text: string) => number;

/**
 * Most tokens one call can really use: several times the largest context windows served today
 * (1-2 million). A `usage` above it is a server bug or a hostile answer, not a bill.
 */
export const MAX_TOKENS_PER_CALL = 10_000_000;

/** A count a response's `usage` may hold: a whole number from 0 to {@link MAX_TOKENS_PER_CALL}. */
function isTokenCount(value: unknown): value is number {
  return (
    typeof value === 'number' &&
    Number.isInteger(value) &&
    value >= 0 &&
    value <= MAX_TOKENS_PER_CALL
  );
}

/**
 * A response's `usage` if it can be true, else undefined: unknown. The one check every reader of
 * `usage` goes through, because one impossible count (`1e400` parses to Infinity, `1e12`, `-5`,
 * `2.5`) settled into a TPM bucket would stall its lane for the rest of the process, and summed
 * into counters would show nonsense. Unknown usage falls back to the estimate.
 * `completion_tokens` may be absent (embeddings have none).
 */
export function trustedUsage(usage: Usage | undefined): Usage | undefined {
  if (usage === undefined) return undefined;
  const { prompt_tokens, completion_tokens, total_tokens } = usage;
  if (!isTokenCount(prompt_tokens) || !isTokenCount(total_tokens)) return undefined;
  if (completion_tokens !== undefined && !isTokenCount(completion_tokens)) return undefined;
  return usage;
}

let loaded: Promise<CountTokens> | undefined;

/** A token counter, loaded once. Falls back to a character heuristic if the tokenizer fails. */
export function loadTokenCounter(): Promise<CountTokens> {
  loaded ??= import('gpt-tokenizer').then(
    (tokenizer): CountTokens =>
      (text) => {
        try {
          // No special tokens: a prompt containing "<|endoftext|>" is text, not a control token.
          return tokenizer.countTokens(text, {
            disallowedSpecial: new Set(),
            allowedSpecial: new Set(),
          });
        } catch {
          return approximateTokens(text);
        }
      },
    () => approximateTokens,
  );
  return loaded;
}

/** About four characters per token for English; used only when the tokenizer is unavailable. */
export function approximateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    let text = '';
    for (const part of content) {
      if (
        typeof part === 'object' &&
        part !== null &&
        typeof (part as { text?: unknown }).text === 'string'
      ) {
        text += (part as { text: string }).text;
      }
    }
    return text;
  }
  return '';
}

function positiveInt(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}

/**
 * A `/v1/responses` body, told from an embeddings one by what only the Responses API has: input
 * items (objects), `instructions` or `max_output_tokens`. A bare string `input` with none of
 * these reads as embeddings (no output reserved); the answer's usage settles the difference.
 */
function isResponsesBody(body: Record<string, unknown>): boolean {
  if (body.input === undefined) return false;
  if (body.instructions !== undefined || body.max_output_tokens !== undefined) return true;
  return (
    Array.isArray(body.input) &&
    body.input.some((item) => typeof item === 'object' && item !== null && !Array.isArray(item))
  );
}

/** The prompt tokens of one request body (chat, completions, Responses API or embeddings). */
export function estimateRequestPromptTokens(
  body: Record<string, unknown>,
  count: CountTokens,
): number {
  let prompt = 0;
  if (Array.isArray(body.messages)) {
    for (const message of body.messages as Array<{ content?: unknown }>) {
      prompt += TOKENS_PER_MESSAGE + count(textOf(message?.content));
    }
  } else if (body.prompt !== undefined) {
    const prompts = Array.isArray(body.prompt) ? body.prompt : [body.prompt];
    for (const p of prompts) prompt += count(textOf(p));
  } else if (isResponsesBody(body)) {
    if (typeof body.instructions === 'string')
      prompt += TOKENS_PER_MESSAGE + count(body.instructions);
    const items = Array.isArray(body.input) ? body.input : [body.input];
    for (const item of items) {
      const text =
        typeof item === 'object' && item !== null
          ? textOf((item as { content?: unknown }).content)
          : textOf(item);
      prompt += TOKENS_PER_MESSAGE + count(text);
    }
  } else if (body.input !== undefined) {
    const inputs = Array.isArray(body.input) ? body.input : [body.input];
    for (const input of inputs) prompt += count(textOf(input));
  }
  return prompt;
}

/** Prompt tokens plus `max_tokens × n` (or the default output estimate) for one request body. */
export function estimateRequestTokens(
  body: Record<string, unknown>,
  count: CountTokens,
  defaultOutputTokens = DEFAULT_OUTPUT_TOKEN_ESTIMATE,
): number {
  const prompt = estimateRequestPromptTokens(body, count);
  // Embeddings: no output tokens.
  if (
    body.messages === undefined &&
    body.prompt === undefined &&
    body.input !== undefined &&
    !isResponsesBody(body)
  )
    return prompt;
  const maxOutput =
    positiveInt(body.max_completion_tokens) ??
    positiveInt(body.max_tokens) ??
    positiveInt(body.max_output_tokens) ??
    defaultOutputTokens;
  return prompt + maxOutput * (positiveInt(body.n) ?? 1);
}

/**
 * Typical completion tokens per choice, learned per lane from `usage` (an exponentially weighted
 * mean), so that a request without `max_tokens` reserves what that lane's answers really cost
 * instead of the flat default.
 */
export class OutputTokenLearner {
  readonly #perChoice = new Map<number, number>();

  /** The output estimate for a request on `lane` that sets no `max_tokens`. */
  estimate(lane: number): number {
    return this.#perChoice.get(lane) ?? DEFAULT_OUTPUT_TOKEN_ESTIMATE;
  }

  /** `completionTokens` from {@link trustedUsage}: an impossible count would skew the mean for good. */
  learn(lane: number, body: Record<string, unknown>, completionTokens: number): void {
    const perChoice = completionTokens / (positiveInt(body.n) ?? 1);
    if (!(perChoice > 0)) return;
    const previous = this.#perChoice.get(lane);
    this.#perChoice.set(
      lane,
      previous === undefined ? perChoice : previous * 0.9 + perChoice * 0.1,
    );
  }
}
