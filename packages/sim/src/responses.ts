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

/** How an answer is rendered: a chat completion, a text completion or a Responses API response. */
export type AnswerKind = 'chat' | 'completion' | 'response';

/** The `/v1/responses` fields a response echoes back, as the API does. */
type ResponseEcho = Record<string, unknown>;

function responseUsage({ promptTokens, completionTokens }: Answer): Record<string, unknown> {
  return {
    input_tokens: promptTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: completionTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: promptTokens + completionTokens,
  };
}

/** The `msg_` id of a response's one output message. */
function messageId(answer: Answer): string {
  return `msg_${answer.id.slice('resp_'.length)}`;
}

function outputMessage(answer: Answer, status: 'in_progress' | 'completed' | 'incomplete') {
  const text = answer.choices[0]?.tokens.join('') ?? '';
  return {
    id: messageId(answer),
    type: 'message',
    status,
    role: 'assistant',
    content:
      status === 'in_progress'
        ? []
        : [{ type: 'output_text', text, annotations: [], logprobs: [] }],
  };
}

/**
 * A `response` object in the state `phase`: `in_progress` (no output yet, no usage), or final:
 * `completed`, or `incomplete` when `max_output_tokens` cut the answer.
 */
function responseObject(
  answer: Answer,
  request: ResponseEcho,
  phase: 'in_progress' | 'final',
): Record<string, unknown> {
  const cut = answer.choices[0]?.finishReason === 'length';
  const status = phase === 'in_progress' ? 'in_progress' : cut ? 'incomplete' : 'completed';
  const echo = (name: string, fallback: unknown): unknown => request[name] ?? fallback;
  return {
    id: answer.id,
    object: 'response',
    created_at: answer.created,
    status,
    background: false,
    error: null,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: echo('instructions', null),
    max_output_tokens: echo('max_output_tokens', null),
    model: answer.model,
    output: phase === 'in_progress' ? [] : [outputMessage(answer, status)],
    parallel_tool_calls: echo('parallel_tool_calls', true),
    previous_response_id: echo('previous_response_id', null),
    reasoning: { effort: null, summary: null },
    store: echo('store', true),
    temperature: echo('temperature', 1),
    text: echo('text', { format: { type: 'text' } }),
    tool_choice: echo('tool_choice', 'auto'),
    tools: echo('tools', []),
    top_p: echo('top_p', 1),
    truncation: echo('truncation', 'disabled'),
    usage: phase === 'in_progress' ? null : responseUsage(answer),
    user: echo('user', null),
    metadata: echo('metadata', {}),
  };
}

/** A `/v1/responses` body (`object: "response"`), echoing the request's settings. */
export function responseJson(answer: Answer, request: ResponseEcho): string {
  return JSON.stringify(responseObject(answer, request, 'final'));
}

/**
 * SSE frames of a Responses API stream, in {@link streamFrames}' layout: [0] `response.created`,
 * `response.in_progress`, the output item and content part added; [1..L] one
 * `response.output_text.delta` per token; [L + 1] the text, part and item done, then
 * `response.completed` (or `response.incomplete`) with the whole response and its usage. There is
 * no `[DONE]`: the final response event ends the stream.
 */
export function responseStreamFrames(answer: Answer, request: ResponseEcho): string[] {
  let sequence = 0;
  const event = (type: string, fields: Record<string, unknown>): string =>
    `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...fields })}\n\n`;
  const tokens = answer.choices[0]?.tokens ?? [];
  const item = { item_id: messageId(answer), output_index: 0, content_index: 0 };
  const started = responseObject(answer, request, 'in_progress');
  const frames = new Array<string>(tokens.length + 2);
  frames[0] =
    event('response.created', { response: started }) +
    event('response.in_progress', { response: started }) +
    event('response.output_item.added', {
      output_index: 0,
      item: outputMessage(answer, 'in_progress'),
    }) +
    event('response.content_part.added', {
      ...item,
      part: { type: 'output_text', text: '', annotations: [] },
    });
  for (let i = 0; i < tokens.length; i++) {
    frames[i + 1] = event('response.output_text.delta', {
      ...item,
      delta: tokens[i],
      logprobs: [],
    });
  }
  const final = responseObject(answer, request, 'final');
  const text = tokens.join('');
  frames[tokens.length + 1] =
    event('response.output_text.done', { ...item, text, logprobs: [] }) +
    event('response.content_part.done', {
      ...item,
      part: { type: 'output_text', text, annotations: [] },
    }) +
    event('response.output_item.done', {
      output_index: 0,
      item: (final.output as unknown[])[0],
    }) +
    event(final.status === 'incomplete' ? 'response.incomplete' : 'response.completed', {
      response: final,
    });
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
