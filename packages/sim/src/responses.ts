/**
 * Response bodies and SSE frames, built as strings. Streams are assembled from precomputed
 * prefixes rather than JSON.stringify per chunk: a 96-token answer is ~100 events and this is
 * the part of the sim that runs most per request.
 */

import type { TokenizedText } from './content.js';

/** Reported in `system_fingerprint`, so captured responses show where they came from. */
const FINGERPRINT = 'fp_volley_sim';

/** A generated answer ready to render: one {@link TokenizedText} per choice. */
export interface Answer {
  id: string;
  created: number;
  model: string;
  choices: TokenizedText[];
  promptTokens: number;
  completionTokens: number;
  includeUsage: boolean;
}

/** The OpenAI error envelope. */
export function errorJson(
  message: string,
  type: string,
  param: string | null,
  code: string | null,
): string {
  return JSON.stringify({ error: { message, type, param, code } });
}

function usage({ promptTokens, completionTokens }: Answer): {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
} {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

/** A `chat.completion` body. */
export function chatJson(answer: Answer): string {
  return JSON.stringify({
    id: answer.id,
    object: 'chat.completion',
    created: answer.created,
    model: answer.model,
    choices: answer.choices.map((choice, index) => ({
      index,
      message: { role: 'assistant', content: choice.tokens.join(''), refusal: null },
      logprobs: null,
      finish_reason: choice.finishReason,
    })),
    usage: usage(answer),
    system_fingerprint: FINGERPRINT,
  });
}

/** A `text_completion` body. */
export function completionJson(answer: Answer): string {
  return JSON.stringify({
    id: answer.id,
    object: 'text_completion',
    created: answer.created,
    model: answer.model,
    choices: answer.choices.map((choice, index) => ({
      text: choice.tokens.join(''),
      index,
      logprobs: null,
      finish_reason: choice.finishReason,
    })),
    usage: usage(answer),
  });
}

/**
 * SSE frames for a stream, one string per pacing step:
 *
 *   [0]       opening events (chat: one `role` delta per choice; completions: none)
 *   [1..L]    token step k: one event per choice that has a k-th token (choices interleave)
 *   [L + 1]   tail: one `finish_reason` event per choice, the usage event if asked, `[DONE]`
 *
 * The server paces frames by tokens per second and cuts them for stream faults; the tail is what
 * `truncate-stream` drops.
 */
export function streamFrames(answer: Answer, kind: 'chat' | 'completion'): string[] {
  const chat = kind === 'chat';
  const head = chat
    ? `data: {"id":"${answer.id}","object":"chat.completion.chunk","created":${answer.created},"model":${JSON.stringify(answer.model)},"system_fingerprint":"${FINGERPRINT}","choices":[`
    : `data: {"id":"${answer.id}","object":"text_completion","created":${answer.created},"model":${JSON.stringify(answer.model)},"choices":[`;
  const end = answer.includeUsage ? '],"usage":null}\n\n' : ']}\n\n';
  const { choices } = answer;
  let steps = 0;
  for (const choice of choices) steps = Math.max(steps, choice.tokens.length);

  const frames = new Array<string>(steps + 2);
  let opening = '';
  if (chat) {
    for (let i = 0; i < choices.length; i++) {
      opening += `${head}{"index":${i},"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}${end}`;
    }
  }
  frames[0] = opening;
  for (let step = 0; step < steps; step++) {
    let frame = '';
    for (let i = 0; i < choices.length; i++) {
      const token = choices[i]!.tokens[step];
      if (token === undefined) continue;
      const text = JSON.stringify(token);
      frame += chat
        ? `${head}{"index":${i},"delta":{"content":${text}},"logprobs":null,"finish_reason":null}${end}`
        : `${head}{"text":${text},"index":${i},"logprobs":null,"finish_reason":null}${end}`;
    }
    frames[step + 1] = frame;
  }
  let tail = '';
  for (let i = 0; i < choices.length; i++) {
    const reason = choices[i]!.finishReason;
    tail += chat
      ? `${head}{"index":${i},"delta":{},"logprobs":null,"finish_reason":"${reason}"}${end}`
      : `${head}{"text":"","index":${i},"logprobs":null,"finish_reason":"${reason}"}${end}`;
  }
  if (answer.includeUsage) tail += `${head}],"usage":${JSON.stringify(usage(answer))}}\n\n`;
  frames[steps + 1] = `${tail}data: [DONE]\n\n`;
  return frames;
}

/** An embeddings `list` body around already-encoded vectors (JSON arrays or base64 string literals). */
export function embeddingsJson(
  model: string,
  encoded: readonly string[],
  promptTokens: number,
): string {
  let json = '{"object":"list","data":[';
  for (let i = 0; i < encoded.length; i++) {
    json += `${i === 0 ? '' : ','}{"object":"embedding","index":${i},"embedding":${encoded[i]}}`;
  }
  return `${json}],"model":${JSON.stringify(model)},"usage":{"prompt_tokens":${promptTokens},"total_tokens":${promptTokens}}}`;
}

// A fixed creation time keeps `/v1/models` byte-identical across runs.
const MODEL_CREATED = 1_700_000_000;

/** One `model` object. */
export function modelJson(id: string): string {
  return JSON.stringify(modelObject(id));
}

function modelObject(id: string): {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
} {
  return { id, object: 'model', created: MODEL_CREATED, owned_by: 'volley-sim' };
}

/** The `/v1/models` list. */
export function modelsJson(models: readonly string[]): string {
  return JSON.stringify({ object: 'list', data: models.map(modelObject) });
}
