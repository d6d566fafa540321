/**
 * What a benchmark sends: synthetic prompts of chosen token lengths, or requests read from a file
 * (the caller parses the file; the CLI reuses `volley run`'s batch-line parser). Either way each
 * prompt becomes a finished request body here, once, before the run: the hot path only sends
 * bytes.
 *
 * Synthetic prompts are built from English words that gpt-tokenizer (o200k) encodes as one token
 * each with their leading space, so a prompt of N words is N tokens; every prompt is then counted
 * with the real tokenizer and that count is what the report uses. Lengths are drawn per request:
 *   fixed     the length itself
 *   uniform   an integer in [len·(1 − r), len·(1 + r)]  (vLLM's `--random-range-ratio` r)
 *   normal    round(N(len, (s·len)²)), at least 1      (s: `stddevRatio`)
 * The seed fixes words and lengths, so the same flags send the same prompts.
 */

import { ErrorCode, VolleyError } from '@volley/core';
import { createRandom, normal, type Random } from './random.js';

/** Which OpenAI-compatible API a request goes to. */
export type EndpointKind = 'chat' | 'completions';

/** How a length is drawn. */
export type LengthDistribution = 'fixed' | 'uniform' | 'normal';

/** A request ready to send. */
export interface BenchPrompt {
  /** Path below the base URL: `/chat/completions` or `/completions`. */
  path: string;
  /** The JSON body as sent. */
  body: string;
  /** Prompt tokens as counted by the client (gpt-tokenizer, o200k). */
  promptTokens: number;
}

/** How bodies are completed for sending. */
export interface BodyOptions {
  model: string;
  stream: boolean;
  /** vLLM's `ignore_eos`: generate the full `max_tokens` (vLLM servers only; others may refuse it). */
  ignoreEos: boolean;
}

/** Options of {@link syntheticPrompts}. */
export interface SyntheticOptions extends BodyOptions {
  count: number;
  endpoint: EndpointKind;
  inputLen: number;
  outputLen: number;
  inputDistribution: LengthDistribution;
  outputDistribution: LengthDistribution;
  /** Half-width of `uniform`, as a fraction of the length (0..1). */
  rangeRatio: number;
  /** Standard deviation of `normal`, as a fraction of the length. */
  stddevRatio: number;
  seed: number;
}

type Tokenizer = typeof import('gpt-tokenizer');

let tokenizerLoad: Promise<Tokenizer> | undefined;

/** gpt-tokenizer, loaded once (~150 ms; it ships its encodings, nothing is downloaded). */
export function loadTokenizer(): Promise<Tokenizer> {
  tokenizerLoad ??= import('gpt-tokenizer');
  return tokenizerLoad;
}

/** Counts tokens of text as plain text (special-token markers are text, not control tokens). */
export async function tokenCounter(): Promise<(text: string) => number> {
  const tokenizer = await loadTokenizer();
  return (text) =>
    tokenizer.countTokens(text, { disallowedSpecial: new Set(), allowedSpecial: new Set() });
}

const WORDS = (
  'time year people way day man thing woman life child world school state family student group ' +
  'country problem hand part place case week company system program question work government ' +
  'number night point home water room mother area money story fact month lot right study book ' +
  'eye job word business issue side kind head house service friend father power hour game line ' +
  'end member law car city community name president team minute idea kid body information back ' +
  'parent face others level office door health person art war history party result change ' +
  'morning reason research girl guy moment air teacher force education foot boy age policy ' +
  'music market sense nation plan college interest death experience effect use class control ' +
  'care field development role effort rate heart drug show leader light voice wife police mind ' +
  'price report decision son view relationship town road arm difference value building action ' +
  'model season society tax director position player record paper space ground form event ' +
  'official matter center couple site project activity star table need court oil situation cost ' +
  'industry figure street image phone data picture practice piece land product doctor wall ' +
  'patient worker news test movie north love support technology step baby computer type ' +
  'attention film tree source organization hair window evidence population site truth river'
).split(' ');

let vocabulary: Promise<string[]> | undefined;

/** The words that are exactly one o200k token with a leading space. */
function singleTokenWords(): Promise<string[]> {
  vocabulary ??= loadTokenizer().then((tokenizer) =>
    [...new Set(WORDS)].map((w) => ` ${w}`).filter((w) => tokenizer.encode(w).length === 1),
  );
  return vocabulary;
}

/** Draws one length. */
export function drawLength(
  random: Random,
  len: number,
  distribution: LengthDistribution,
  rangeRatio: number,
  stddevRatio: number,
): number {
  switch (distribution) {
    case 'fixed':
      return len;
    case 'uniform': {
      const lo = Math.max(1, Math.floor(len * (1 - rangeRatio)));
      const hi = Math.max(lo, Math.ceil(len * (1 + rangeRatio)));
      return lo + Math.floor(random() * (hi - lo + 1));
    }
    case 'normal':
      return Math.max(1, Math.round(len + normal(random) * stddevRatio * len));
  }
}

/**
 * Synthetic prompts (vLLM's `random` dataset, with length distributions of Volley's own).
 *
 * @example
 * const prompts = await syntheticPrompts({ count: 100, endpoint: 'chat', inputLen: 256, outputLen: 64,
 *   inputDistribution: 'fixed', outputDistribution: 'fixed', rangeRatio: 0, stddevRatio: 0, seed: 0,
 *   model: 'volley-sim-1', stream: true, ignoreEos: true });
 */
export async function syntheticPrompts(options: SyntheticOptions): Promise<BenchPrompt[]> {
  if (!(options.inputLen >= 1) || !(options.outputLen >= 1)) {
    throw new VolleyError(
      ErrorCode.INVALID_OPTIONS,
      `synthetic prompts need input and output lengths >= 1, got ${options.inputLen} and ${options.outputLen}`,
    );
  }
  const words = await singleTokenWords();
  const count = await tokenCounter();
  const random = createRandom(options.seed);
  const prompts: BenchPrompt[] = [];
  for (let i = 0; i < options.count; i++) {
    const inputLen = drawLength(
      random,
      options.inputLen,
      options.inputDistribution,
      options.rangeRatio,
      options.stddevRatio,
    );
    const outputLen = drawLength(
      random,
      options.outputLen,
      options.outputDistribution,
      options.rangeRatio,
      options.stddevRatio,
    );
    const parts = new Array<string>(inputLen);
    for (let w = 0; w < inputLen; w++) {
      parts[w] = words[Math.floor(random() * words.length)] as string;
    }
    // Without the leading space the first word may merge differently; keep it a word start.
    const text = parts.join('').slice(1);
    const body: Record<string, unknown> =
      options.endpoint === 'chat'
        ? { messages: [{ role: 'user', content: text }] }
        : { prompt: text };
    body.max_tokens = outputLen;
    prompts.push(finishPrompt(options.endpoint, body, options, count(text)));
  }
  return prompts;
}

/** A request from a file: its endpoint and body, as `volley run` would send it. */
export interface FileRequest {
  /** `/v1/chat/completions` or `/v1/completions`. */
  url: string;
  body: Record<string, unknown>;
  /** Where it came from, for error messages (`line 12`). */
  where: string;
}

/**
 * Completes requests read from a file. `outputLen` fills `max_tokens` where a line sets neither it
 * nor `max_completion_tokens`. Refuses endpoints other than chat and completions, naming the line.
 */
export async function filePrompts(
  requests: readonly FileRequest[],
  options: BodyOptions & { outputLen?: number | undefined },
): Promise<BenchPrompt[]> {
  const count = await tokenCounter();
  return requests.map((request) => {
    const endpoint: EndpointKind | undefined =
      request.url === '/v1/chat/completions'
        ? 'chat'
        : request.url === '/v1/completions'
          ? 'completions'
          : undefined;
    if (endpoint === undefined) {
      throw new VolleyError(
        ErrorCode.INVALID_OPTIONS,
        `${request.where}: "url" ${JSON.stringify(request.url)} cannot be benchmarked; use /v1/chat/completions or /v1/completions`,
      );
    }
    const body = { ...request.body };
    if (
      options.outputLen !== undefined &&
      body.max_tokens === undefined &&
      body.max_completion_tokens === undefined
    ) {
      body.max_tokens = options.outputLen;
    }
    return finishPrompt(endpoint, body, options, count(promptText(body)));
  });
}

function finishPrompt(
  endpoint: EndpointKind,
  body: Record<string, unknown>,
  options: BodyOptions,
  promptTokens: number,
): BenchPrompt {
  const out: Record<string, unknown> = { model: body.model ?? options.model, ...body };
  if (options.stream) {
    out.stream = true;
    // Without it OpenAI-style servers send no usage on streams, and tokens must be guessed.
    out.stream_options = { include_usage: true };
  } else {
    delete out.stream;
    delete out.stream_options;
  }
  if (options.ignoreEos) out.ignore_eos = true;
  return {
    path: endpoint === 'chat' ? '/chat/completions' : '/completions',
    body: JSON.stringify(out),
    promptTokens,
  };
}

/** The text of a body's messages or prompt (what the client counts as prompt tokens). */
function promptText(body: Record<string, unknown>): string {
  const { messages, prompt } = body;
  if (typeof prompt === 'string') return prompt;
  if (Array.isArray(prompt)) return prompt.filter((p) => typeof p === 'string').join('\n');
  if (!Array.isArray(messages)) return '';
  const texts: string[] = [];
  for (const message of messages) {
    const content = (message as { content?: unknown }).content;
    if (typeof content === 'string') texts.push(content);
    else if (Array.isArray(content)) {
      for (const part of content) {
        const text = (part as { text?: unknown }).text;
        if (typeof text === 'string') texts.push(text);
      }
    }
  }
  return texts.join('\n');
}
