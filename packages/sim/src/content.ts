/**
 * Deterministic generated text. What a request gets back depends only on the request (model,
 * messages or prompt, temperature, seed and choice index), never on the server's seed, timing or
 * order, so a test can compute the expected answer with the same exported function.
 */

import { createRandom, HASH_SEED, hashString, mix } from './random.js';

/** One generated (or scripted) answer. */
export interface SimulatedText {
  /** The whole answer text. */
  content: string;
  /** One per word: what `usage.completion_tokens` counts for this choice. */
  completionTokens: number;
  /** `length` when `max_tokens`/`max_completion_tokens` cut the answer short. */
  finishReason: 'stop' | 'length';
}

/** Token pieces as streamed: the first bare, the rest with their leading space. */
export interface TokenizedText {
  tokens: string[];
  finishReason: 'stop' | 'length';
}

// 128 words: a power of two, so picking one is a multiply and a floor with no modulo bias.
const VOCABULARY = (
  'the of and to in is that it for on with as was at by this from be are or an have not they ' +
  'which one you all were we when there can more if out so what up its about into than them only ' +
  'other new some could time these two may then first any like now my such make over our even ' +
  'most me state after also made many did before must through back years where much your way well ' +
  'down should because each just those people how too little good very world still own see ' +
  'men work long here get both between life being under never day same another know while last ' +
  'might great old year off come since against go came right used take'
).split(' ');

// Token strings are built once: a generated answer allocates its array and nothing else.
const OPENING = VOCABULARY.map((word) => word[0]!.toUpperCase() + word.slice(1));
const FOLLOWING = VOCABULARY.map((word) => ` ${word}`);

const MIN_TOKENS = 8;
const MAX_TOKENS = 96;

/**
 * Generates the token pieces for one choice. The natural length is drawn before any word, so a
 * capped answer is an exact prefix of the uncapped one. `toCap` ignores the natural end (vLLM's
 * `ignore_eos`): the words run on, without the full stop, until `cap`.
 */
function generate(seed: number, cap: number | undefined, toCap: boolean): TokenizedText {
  const random = createRandom(seed);
  const natural = MIN_TOKENS + Math.floor(random() * (MAX_TOKENS - MIN_TOKENS + 1));
  const length = cap !== undefined && (toCap || cap < natural) ? cap : natural;
  const tokens = new Array<string>(length);
  for (let i = 0; i < length; i++) {
    const pick = Math.floor(random() * VOCABULARY.length);
    tokens[i] = (i === 0 ? OPENING : FOLLOWING)[pick]!;
  }
  if (length === natural && length > 0) tokens[length - 1] += '.';
  return { tokens, finishReason: length === natural ? 'stop' : 'length' };
}

/**
 * Splits scripted text into streamable pieces at word starts (leading whitespace travels with the
 * word), so a script's answer streams like a generated one and counts one token per word.
 */
export function tokenizeText(text: string, cap: number | undefined): TokenizedText {
  const tokens: string[] = [];
  let start = 0;
  for (let i = 1; i <= text.length; i++) {
    if (i === text.length || (isSpace(text.charCodeAt(i)) && !isSpace(text.charCodeAt(i - 1)))) {
      if (i > start) tokens.push(text.slice(start, i));
      start = i;
    }
  }
  if (cap !== undefined && tokens.length > cap) {
    tokens.length = cap;
    return { tokens, finishReason: 'length' };
  }
  return { tokens, finishReason: 'stop' };
}

function isSpace(code: number): boolean {
  return code === 32 || (code >= 9 && code <= 13);
}

function record(body: unknown): Record<string, unknown> {
  return typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
}

/** Text of an OpenAI message `content`: a string, or the `text` of its content parts. */
function messageText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) {
    const value = record(part).text;
    if (typeof value === 'string') text += value;
  }
  return text;
}

/** The completion cap a request asks for; `max_completion_tokens` wins as in OpenAI's API. */
function completionCap(body: unknown): number | undefined {
  const { max_completion_tokens: newer, max_tokens: older } = record(body);
  if (typeof newer === 'number' && newer >= 0) return newer;
  if (typeof older === 'number' && older >= 0) return older;
  return undefined;
}

function hashSampling(hash: number, fields: Record<string, unknown>): number {
  const model = typeof fields.model === 'string' ? fields.model : '';
  return hashString(
    hashString(hashString(hash, model), String(fields.temperature)),
    String(fields.seed),
  );
}

/**
 * Whether a request asks to generate up to its cap whatever the natural end (vLLM's `ignore_eos`
 * sampling parameter, which `vllm bench serve --ignore-eos` sends to fix output lengths).
 */
export function ignoresEos(body: unknown): boolean {
  return record(body).ignore_eos === true;
}

/**
 * Token pieces for chat choice `choiceIndex`; the server streams these. `toCap` (default: the
 * body's `ignore_eos`) runs the answer to `max_tokens` whatever its natural length.
 */
export function chatTokens(
  body: unknown,
  choiceIndex: number,
  toCap = ignoresEos(body),
): TokenizedText {
  const fields = record(body);
  let hash = hashSampling(HASH_SEED, fields);
  if (Array.isArray(fields.messages)) {
    for (const message of fields.messages) {
      const { role, content } = record(message);
      hash = hashString(
        hashString(hash, typeof role === 'string' ? role : ''),
        messageText(content),
      );
    }
  }
  return generate(mix(hash, choiceIndex), completionCap(body), toCap);
}

/** The prompt a completion choice answers: choices run prompt by prompt, `n` per prompt. */
function choicePrompt(body: unknown, choiceIndex: number): string {
  const { prompt, n } = record(body);
  if (typeof prompt === 'string') return prompt;
  const perPrompt = typeof n === 'number' && n >= 1 ? n : 1;
  const item: unknown = Array.isArray(prompt) ? prompt[Math.floor(choiceIndex / perPrompt)] : '';
  return typeof item === 'string' ? item : '';
}

/** Token pieces for completion choice `choiceIndex` (prompt-major, as the API orders them). */
export function completionTokens(
  body: unknown,
  choiceIndex: number,
  toCap = ignoresEos(body),
): TokenizedText {
  const fields = record(body);
  const perPrompt = typeof fields.n === 'number' && fields.n >= 1 ? fields.n : 1;
  const hash = hashString(hashSampling(HASH_SEED, fields), choicePrompt(body, choiceIndex));
  return generate(mix(hash, choiceIndex % perPrompt), completionCap(body), toCap);
}

function toSimulated({ tokens, finishReason }: TokenizedText): SimulatedText {
  return { content: tokens.join(''), completionTokens: tokens.length, finishReason };
}

/**
 * The answer the simulator generates for a `/v1/chat/completions` body (when no `script` answers
 * it). Depends only on model, message roles and text, temperature, seed and the choice index;
 * with `ignore_eos: true` it runs to `max_tokens` (as every answer does with the engine on).
 *
 * @example
 * const body = { model: 'volley-sim-1', messages: [{ role: 'user', content: 'Hi' }] };
 * const res = await client.chat.completions.create(body);
 * expect(res.choices[0].message.content).toBe(simulatedChatContent(body).content);
 */
export function simulatedChatContent(body: unknown, choiceIndex = 0): SimulatedText {
  return toSimulated(chatTokens(body, choiceIndex));
}

/**
 * The text the simulator generates for a `/v1/completions` body. With an array `prompt` and `n`,
 * choice `i` answers `prompt[floor(i / n)]`, so each prompt's answers do not depend on the others.
 */
export function simulatedCompletionText(body: unknown, choiceIndex = 0): SimulatedText {
  return toSimulated(completionTokens(body, choiceIndex));
}

/**
 * The `usage.prompt_tokens` the simulator reports: about four characters per token (UTF-16 code
 * units), plus 4 per chat message and 3 to prime the reply, like OpenAI's published estimate.
 * Reads `messages` (chat), `prompt` (completions) or `input` (embeddings), whichever is present.
 */
export function estimatePromptTokens(body: unknown): number {
  const { messages, prompt, input } = record(body);
  if (Array.isArray(messages)) {
    let tokens = 3;
    for (const message of messages)
      tokens += 4 + Math.ceil(messageText(record(message).content).length / 4);
    return tokens;
  }
  return textTokens(prompt ?? input);
}

function textTokens(value: unknown): number {
  if (typeof value === 'string') return Math.ceil(value.length / 4);
  if (!Array.isArray(value)) return 0;
  let tokens = 0;
  for (const item of value) if (typeof item === 'string') tokens += Math.ceil(item.length / 4);
  return tokens;
}

/**
 * A `/v1/responses` body as the chat body it generates like: `instructions` becomes a system
 * message, a string `input` a user message, and input items keep their role (or their type, for
 * tool items) and content; `max_output_tokens` is the cap. So `{input: 'Hi'}` answers exactly
 * what chat answers to `[{role: 'user', content: 'Hi'}]`, and usage counts the same way.
 */
export function responseAsChat(body: unknown): Record<string, unknown> {
  const fields = record(body);
  const messages: Array<{ role: string; content: unknown }> = [];
  if (typeof fields.instructions === 'string' && fields.instructions !== '')
    messages.push({ role: 'system', content: fields.instructions });
  if (typeof fields.input === 'string') messages.push({ role: 'user', content: fields.input });
  else if (Array.isArray(fields.input)) {
    for (const item of fields.input) {
      const { role, type, content, output } = record(item);
      const name = typeof role === 'string' ? role : typeof type === 'string' ? type : '';
      messages.push({ role: name, content: content ?? output });
    }
  }
  const chat: Record<string, unknown> = { ...fields, messages };
  delete chat.input;
  delete chat.instructions;
  delete chat.max_tokens;
  delete chat.max_completion_tokens;
  if (fields.max_output_tokens !== undefined) chat.max_completion_tokens = fields.max_output_tokens;
  delete chat.max_output_tokens;
  return chat;
}

/**
 * The text the simulator generates for a `/v1/responses` body: the chat answer to
 * {@link responseAsChat} of it.
 */
export function simulatedResponseText(body: unknown): SimulatedText {
  return toSimulated(chatTokens(responseAsChat(body), 0));
}
