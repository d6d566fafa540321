/**
 * The "short chat" workload every contender sends: one small, fixed, non-streaming chat request.
 * Kept in one place so no contender can quietly send a cheaper request than the others.
 */

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
