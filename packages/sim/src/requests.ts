/**
 * Checks of untrusted request bodies, reduced to the plan the server answers from. The simulator
 * is stricter than it needs to be about shape so clients' malformed requests fail like they would
 * against the real API (400 with the offending `param`), not with a generated answer.
 */

import { estimatePromptTokens, responseAsChat } from './content.js';

/** A request the API would refuse; becomes an OpenAI error envelope. */
export class InvalidRequest extends Error {
  readonly status: number;
  readonly param: string | null;
  readonly code: string | null;

  constructor(message: string, param: string | null, code: string | null = null, status = 400) {
    super(message);
    this.status = status;
    this.param = param;
    this.code = code;
  }
}

/** What a chat or completion request asks for. */
export interface GenerationPlan {
  model: string;
  /** Choices per prompt. */
  n: number;
  /** All choices in the answer: `n` for chat, `n` × prompts for completions. */
  choiceCount: number;
  stream: boolean;
  includeUsage: boolean;
  /** `max_completion_tokens` or `max_tokens`. */
  cap: number | undefined;
  promptTokens: number;
  /** What the TPM bucket charges at admission: prompt tokens + cap × choices (OpenAI's rule). */
  admissionTokens: number;
}

/** What an embeddings request asks for. */
export interface EmbeddingPlan {
  model: string;
  inputs: string[];
  dimensions: number;
  base64: boolean;
  promptTokens: number;
}

/** Parses a request body: a JSON object or an {@link InvalidRequest}. */
export function parseBody(raw: string): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    throw new InvalidRequest(
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
      null,
    );
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidRequest('The request body must be a JSON object.', null);
  }
  return body as Record<string, unknown>;
}

/** Checks a `/v1/chat/completions` body. */
export function planChat(body: Record<string, unknown>): GenerationPlan {
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new InvalidRequest("'messages' must be a non-empty array.", 'messages');
  }
  for (const message of messages) {
    if (
      typeof message !== 'object' ||
      message === null ||
      typeof (message as { role?: unknown }).role !== 'string'
    ) {
      throw new InvalidRequest("Each message must be an object with a string 'role'.", 'messages');
    }
  }
  const cap =
    optionalInteger(body, 'max_completion_tokens', 1) ?? optionalInteger(body, 'max_tokens', 1);
  const n = optionalInteger(body, 'n', 1, 128) ?? 1;
  return plan(body, n, n, cap);
}

/** Checks a `/v1/completions` body. */
export function planCompletion(body: Record<string, unknown>): GenerationPlan {
  const prompt = body.prompt;
  const prompts = typeof prompt === 'string' ? 1 : Array.isArray(prompt) ? prompt.length : 0;
  if (prompts === 0 || (Array.isArray(prompt) && !prompt.every((p) => typeof p === 'string'))) {
    throw new InvalidRequest(
      "'prompt' must be a string or a non-empty array of strings.",
      'prompt',
    );
  }
  const cap = optionalInteger(body, 'max_tokens', 1);
  const n = optionalInteger(body, 'n', 1, 128) ?? 1;
  return plan(body, n, n * prompts, cap);
}

/**
 * Checks a `/v1/responses` body. One answer per request (the Responses API has no `n`); usage
 * and the TPM charge are those of the equivalent chat request ({@link responseAsChat}).
 */
export function planResponse(body: Record<string, unknown>): GenerationPlan {
  const input = body.input;
  const ok =
    (typeof input === 'string' && input !== '') ||
    (Array.isArray(input) &&
      input.length > 0 &&
      input.every((item) => typeof item === 'object' && item !== null && !Array.isArray(item)));
  if (!ok) {
    throw new InvalidRequest("'input' must be a string or a non-empty array of items.", 'input');
  }
  const cap = optionalInteger(body, 'max_output_tokens', 1);
  const model = requireModel(body);
  const promptTokens = estimatePromptTokens(responseAsChat(body));
  return {
    model,
    n: 1,
    choiceCount: 1,
    stream: body.stream === true,
    // The final `response.completed` event always carries usage.
    includeUsage: true,
    cap,
    promptTokens,
    admissionTokens: promptTokens + (cap ?? 0),
  };
}

function plan(
  body: Record<string, unknown>,
  n: number,
  choiceCount: number,
  cap: number | undefined,
): GenerationPlan {
  const model = requireModel(body);
  const promptTokens = estimatePromptTokens(body);
  const options = body.stream_options;
  return {
    model,
    n,
    choiceCount,
    stream: body.stream === true,
    includeUsage:
      typeof options === 'object' &&
      options !== null &&
      (options as { include_usage?: unknown }).include_usage === true,
    cap,
    promptTokens,
    admissionTokens: promptTokens + (cap ?? 0) * choiceCount,
  };
}

/** Checks a `/v1/embeddings` body. */
export function planEmbeddings(body: Record<string, unknown>): EmbeddingPlan {
  const model = requireModel(body);
  const input = body.input;
  const inputs = typeof input === 'string' ? [input] : Array.isArray(input) ? input : [];
  if (inputs.length === 0 || !inputs.every((item) => typeof item === 'string')) {
    // Token-array inputs are valid for OpenAI but not simulated: refusing beats a silent wrong vector.
    throw new InvalidRequest("'input' must be a string or a non-empty array of strings.", 'input');
  }
  const format = body.encoding_format;
  if (format !== undefined && format !== 'float' && format !== 'base64') {
    throw new InvalidRequest("'encoding_format' must be 'float' or 'base64'.", 'encoding_format');
  }
  return {
    model,
    inputs: inputs as string[],
    dimensions: optionalInteger(body, 'dimensions', 1, 65_536) ?? 1536,
    base64: format === 'base64',
    promptTokens: estimatePromptTokens(body),
  };
}

function requireModel(body: Record<string, unknown>): string {
  const model = body.model;
  if (typeof model !== 'string' || model === '') {
    throw new InvalidRequest('You must provide a model parameter.', 'model');
  }
  return model;
}

function optionalInteger(
  body: Record<string, unknown>,
  name: string,
  min: number,
  max = 2 ** 31,
): number | undefined {
  const value = body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidRequest(`'${name}' must be an integer from ${min} to ${max}.`, name);
  }
  return value;
}
