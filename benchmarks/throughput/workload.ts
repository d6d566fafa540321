/**
 * The "short chat" workload every contender sends: one small, fixed, non-streaming chat request.
 * Kept in one place so no contender can quietly send a cheaper request than the others.
 */
import type { NginxAnswer } from '../shared/nginx.js';

export const MODEL = 'volley-sim-1';

export const CHAT_MESSAGES = [{ role: 'user' as const, content: 'Say hello in five words.' }];

export const MAX_TOKENS = 16;

/** The full request body, as the raw HTTP contenders send it. */
export const CHAT_REQUEST = { model: MODEL, messages: CHAT_MESSAGES, max_tokens: MAX_TOKENS };

/** The same body pre-serialised, for autocannon, which replays fixed bytes by design. */
export const CHAT_REQUEST_JSON = JSON.stringify(CHAT_REQUEST);

export const JSON_HEADERS = { 'content-type': 'application/json' };

/** `http://host:port/v1` -> the absolute chat completions URL, joined the way the OpenAI SDK joins it. */
export function chatCompletionsUrl(baseUrl: string): URL {
  return new URL(`${baseUrl.replace(/\/+$/, '')}/chat/completions`);
}

/**
 * Every contender except autocannon must parse the response and check it, so that the raw clients
 * pay the same JSON.parse the SDK and Volley pay.
 */
export function checkChatCompletion(body: unknown): void {
  const content = (body as { choices?: Array<{ message?: { content?: unknown } }> } | null)
    ?.choices?.[0]?.message?.content;
  if (typeof content !== 'string')
    throw new Error('response has no string choices[0].message.content');
}

/**
 * What `volley sim` answers to CHAT_REQUEST (captured 2026-12-07, 412 bytes), as one fixed string:
 * the body the nginx reference server (shared/nginx.ts) returns, so every client parses the same
 * shape from either server. Only the ids and `created` differ from the simulator's, per request.
 */
export const SIM_CHAT_COMPLETION_JSON = JSON.stringify({
  id: 'chatcmpl-53f1ff04bf310',
  object: 'chat.completion',
  created: 1796637874,
  model: MODEL,
  choices: [
    {
      index: 0,
      message: {
        role: 'assistant',
        content: 'Take when about world off could my make should on many must day work right each',
        refusal: null,
      },
      logprobs: null,
      finish_reason: 'length',
    },
  ],
  usage: { prompt_tokens: 13, completion_tokens: 16, total_tokens: 29 },
  system_fingerprint: 'fp_volley_sim',
});

/**
 * The workloads: "short chat" (above, the default) is the request/response floor; "long stream"
 * is the heavy answer: the same request with `stream: true`, answered by an SSE stream of
 * STREAM_CHUNKS chat.completion.chunk events, each contender assembling the text the way a real
 * client must (split the events, parse each chunk, join the deltas). Served by nginx as a fixed
 * file, so the client's own cost shows.
 */
export const WORKLOADS = ['short-chat', 'long-stream'] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

export function parseWorkload(raw: string | undefined): WorkloadName {
  if (raw === undefined) return 'short-chat';
  if (!(WORKLOADS as readonly string[]).includes(raw))
    throw new Error(`workload must be one of ${WORKLOADS.join(', ')}, got ${raw}`);
  return raw as WorkloadName;
}

/** Events per long stream: a 1,000-token answer streamed a token at a time, as vLLM does. */
export const STREAM_CHUNKS = 1_000;
const STREAM_WORD = ' word';

/** The streaming request's body: what every long-stream contender sends. */
export const STREAM_REQUEST = {
  ...CHAT_REQUEST,
  max_tokens: STREAM_CHUNKS,
  stream: true,
  stream_options: { include_usage: true },
};

/**
 * The long stream as `volley sim` and vLLM shape it: a role chunk, one content chunk per token,
 * a chunk with `finish_reason`, a usage chunk, then `[DONE]` (about 200 KB).
 */
export function longStreamSse(): string {
  const head = {
    id: 'chatcmpl-53f1ff04bf310',
    object: 'chat.completion.chunk',
    created: 1796637874,
    model: MODEL,
    system_fingerprint: 'fp_volley_sim',
  };
  const event = (choices: unknown[], extra: object = {}): string =>
    `data: ${JSON.stringify({ ...head, choices, ...extra })}\n\n`;
  const choice = (delta: object, finish: string | null = null) => ({
    index: 0,
    delta,
    logprobs: null,
    finish_reason: finish,
  });
  let sse = event([choice({ role: 'assistant', content: '' })]);
  for (let i = 0; i < STREAM_CHUNKS; i++) sse += event([choice({ content: STREAM_WORD })]);
  sse += event([choice({}, 'length')]);
  sse += event([], {
    usage: {
      prompt_tokens: 13,
      completion_tokens: STREAM_CHUNKS,
      total_tokens: 13 + STREAM_CHUNKS,
    },
  });
  return `${sse}data: [DONE]\n\n`;
}

/**
 * The load server for a workload and the `--server` flag (absent: the workload's default). The long
 * stream is a fixed file only nginx serves: the simulator's own streams would cost it more CPU per
 * chunk than the clients under test spend.
 */
export function serverFor(workload: WorkloadName, flag: string | undefined): 'sim' | 'nginx' {
  const server = flag ?? (workload === 'long-stream' ? 'nginx' : 'sim');
  if (server !== 'sim' && server !== 'nginx')
    throw new Error(`--server must be sim or nginx, got ${server}`);
  if (workload === 'long-stream' && server !== 'nginx')
    throw new Error('--workload long-stream is served by nginx only: drop --server sim');
  return server;
}

/** What the nginx reference server answers for a workload. */
export function nginxAnswer(workload: WorkloadName): NginxAnswer {
  return workload === 'long-stream'
    ? { file: longStreamSse(), contentType: 'text/event-stream' }
    : SIM_CHAT_COMPLETION_JSON;
}

/** The text a long stream assembles to: every contender must end with exactly this. */
export function checkStreamedText(text: unknown): void {
  if (typeof text !== 'string' || text.length !== STREAM_CHUNKS * STREAM_WORD.length)
    throw new Error(
      `stream assembled ${typeof text === 'string' ? text.length : typeof text} characters, expected ${STREAM_CHUNKS * STREAM_WORD.length}`,
    );
}
