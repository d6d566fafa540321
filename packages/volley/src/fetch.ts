/**
 * `volley.fetch`: a `fetch` for the SDKs people already use, so that
 * `new OpenAI({ fetch: volley.fetch })` and the AI SDK's `createOpenAI({ fetch: volley.fetch })`
 * send every call through Volley's queue, rate limits, retries and threads.
 *
 * Decisions, in one place:
 * - Where a call goes: Volley's endpoints decide. The SDK's base URL is ignored; only the path
 *   after its last `/v1` (or the whole path if there is none) is kept, so `…/v1/chat/completions`
 *   becomes `/chat/completions` on whichever endpoint Volley picks. The query string and the SDK's
 *   headers (its API key included) are not forwarded: each endpoint sends its own key and headers.
 * - Retries: Volley has retried already. An error it gives up on comes back as an HTTP response
 *   with the server's status (or 504 for a timeout, 502 when no server answered) and
 *   `x-should-retry: false`, which the openai SDK honours; the AI SDK has no such header, so give
 *   it `maxRetries: 0`. Only an abort by the caller's signal rejects, with the signal's reason, as
 *   `fetch` does.
 * - Streaming (`stream: true` on `/chat/completions` and `/completions`): the status is sent when
 *   the first delta arrives (an error before it is an error response), then the deltas are passed
 *   through as SSE chunks as they arrive, and the last chunks carry what only the end knows:
 *   finish reasons, tool calls and (with `stream_options.include_usage`) usage. Chunk ids are
 *   Volley's own (`chatcmpl-volley-…`). An error after the first delta fails the body with a
 *   `TypeError`, as a broken connection does under `fetch`; so does an attempt that breaks after
 *   the first delta was sent (its retry would start the answer over: see `delta-stream.ts`).
 *   Cancelling the body aborts the call.
 */
import { randomUUID } from 'node:crypto';
import type { CallResult, ChatCompletion, Completion } from '@volley/core';
import { ErrorCode, isVolleyError } from '@volley/core';
import type { InternalRequestOptions } from './create-volley.js';
import type { StreamDelta } from './delta-stream.js';
import { createDeltaStream } from './delta-stream.js';

/** What `volley.fetch` needs of the runtime: one call, with deltas that name their attempt. */
export type FetchTarget = (options: InternalRequestOptions) => Promise<CallResult>;

/** Paths whose SSE `volley.fetch` can pass through. */
const STREAMABLE = new Set(['/chat/completions', '/completions']);

const encoder = new TextEncoder();

/** The path relative to an endpoint's base URL: what follows the last `/v1`, else the whole path. */
export function apiPathOf(url: URL): string {
  const path = url.pathname.replace(/\/+$/, '');
  const at = path.lastIndexOf('/v1/');
  return at === -1 ? path : path.slice(at + 3);
}

export async function volleyFetch(
  call: FetchTarget,
  input: string | URL | Request,
  init?: RequestInit,
): Promise<Response> {
  const request = new Request(input, init);
  const signal = request.signal;
  signal.throwIfAborted();
  if (request.method !== 'POST') {
    return errorResponse(405, `volley.fetch sends POST API calls only, not ${request.method}`);
  }
  const path = apiPathOf(new URL(request.url));
  let body: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(await request.text());
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error();
    body = parsed as Record<string, unknown>;
  } catch {
    return errorResponse(400, 'volley.fetch: the request body is not a JSON object');
  }
  if (body.stream === true) {
    if (!STREAMABLE.has(path)) {
      return errorResponse(
        400,
        `volley.fetch streams ${[...STREAMABLE].join(' and ')} only, not ${path}`,
      );
    }
    return streamResponse(call, path, body, signal);
  }
  try {
    const result = await call({ path, body, raw: true, signal });
    return new Response(result.bodyText ?? JSON.stringify(result.body ?? null), {
      status: result.status,
      headers: { 'content-type': 'application/json', 'x-request-id': result.requestId },
    });
  } catch (error) {
    return givenUp(error, signal);
  }
}

async function streamResponse(
  call: FetchTarget,
  path: string,
  body: Record<string, unknown>,
  signal: AbortSignal,
): Promise<Response> {
  const frames = new SseFrames(path, body);
  const deltas = createDeltaStream(
    (onDelta, callSignal) => call({ path, body, stream: true, onDelta, signal: callSignal }),
    signal,
  );
  const iterator = deltas[Symbol.asyncIterator]();
  let first: IteratorResult<StreamDelta>;
  try {
    first = await iterator.next();
  } catch (error) {
    return givenUp(error, signal);
  }
  let pending: IteratorResult<StreamDelta> | undefined = first;
  const stream = new ReadableStream<Uint8Array>({
    // Pulled by the SDK: a delta is encoded only when the reader wants one.
    async pull(controller) {
      try {
        // Each pull enqueues something (or ends): a pull that enqueued nothing would not be
        // called again, and the reader would wait for ever. Tool-call deltas carry no content;
        // the calls themselves go out with the end.
        let step = pending ?? (await iterator.next());
        pending = undefined;
        while (!step.done && step.value.content === '') step = await iterator.next();
        if (!step.done) {
          controller.enqueue(frames.delta(step.value));
          return;
        }
        const result = await deltas.completion;
        for (const frame of frames.end(result.body)) controller.enqueue(frame);
        controller.close();
      } catch (error) {
        controller.error(
          signal.aborted ? signal.reason : new TypeError('terminated', { cause: error }),
        );
      }
    },
    async cancel() {
      await iterator.return?.();
    },
  });
  return new Response(stream, {
    status: 200,
    headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
  });
}

/** The OpenAI SSE chunks of one streamed answer, rebuilt from its deltas and its assembled body. */
class SseFrames {
  readonly #chat: boolean;
  readonly #common: Record<string, unknown>;
  readonly #includeUsage: boolean;
  readonly #started = new Set<number>();

  constructor(path: string, body: Record<string, unknown>) {
    this.#chat = path === '/chat/completions';
    this.#common = {
      id: `${this.#chat ? 'chatcmpl' : 'cmpl'}-volley-${randomUUID()}`,
      object: this.#chat ? 'chat.completion.chunk' : 'text_completion',
      created: Math.floor(Date.now() / 1000),
      model: body.model,
    };
    const options = body.stream_options as { include_usage?: unknown } | undefined;
    this.#includeUsage = options?.include_usage === true;
  }

  delta({ choice, content }: StreamDelta): Uint8Array {
    if (!this.#chat)
      return this.#frame([{ index: choice, text: content, finish_reason: null, logprobs: null }]);
    // The first chunk of a choice names the role, as OpenAI's do.
    const first = !this.#started.has(choice);
    this.#started.add(choice);
    const delta = first ? { role: 'assistant', content } : { content };
    return this.#frame([{ index: choice, delta, finish_reason: null, logprobs: null }]);
  }

  /** Finish reasons and tool calls (known only once assembled), usage if asked, then `[DONE]`. */
  end(assembled: unknown): Uint8Array[] {
    const frames: Uint8Array[] = [];
    if (this.#chat) {
      const completion = assembled as ChatCompletion;
      for (const choice of completion.choices) {
        const delta: Record<string, unknown> = {};
        if (!this.#started.has(choice.index)) delta.role = 'assistant';
        const toolCalls = choice.message.tool_calls;
        if (toolCalls !== undefined && toolCalls.length > 0) {
          delta.tool_calls = toolCalls.map((call, index) => ({ index, ...call }));
        }
        frames.push(
          this.#frame([
            { index: choice.index, delta, finish_reason: choice.finish_reason, logprobs: null },
          ]),
        );
      }
    } else {
      for (const choice of (assembled as Completion).choices) {
        frames.push(
          this.#frame([
            { index: choice.index, text: '', finish_reason: choice.finish_reason, logprobs: null },
          ]),
        );
      }
    }
    const usage = (assembled as { usage?: unknown }).usage;
    if (this.#includeUsage && usage !== undefined) frames.push(this.#frame([], usage));
    frames.push(encoder.encode('data: [DONE]\n\n'));
    return frames;
  }

  #frame(choices: unknown[], usage?: unknown): Uint8Array {
    const chunk =
      usage === undefined ? { ...this.#common, choices } : { ...this.#common, choices, usage };
    return encoder.encode(`data: ${JSON.stringify(chunk)}\n\n`);
  }
}

/**
 * What `fetch` gives the SDK for a call Volley gave up on: an abort by the caller rejects as
 * `fetch` does; anything else becomes an HTTP error the SDK knows not to retry.
 */
function givenUp(error: unknown, signal: AbortSignal): Response {
  if (signal.aborted) throw signal.reason;
  if (!isVolleyError(error)) throw new TypeError('fetch failed', { cause: error });
  const status =
    error.status !== undefined && error.status >= 400 && error.status <= 599
      ? error.status
      : error.code === ErrorCode.TIMEOUT
        ? 504
        : error.code === ErrorCode.INVALID_OPTIONS
          ? 400
          : error.code === ErrorCode.ABORTED || error.code === ErrorCode.STOPPED
            ? 503
            : 502;
  return errorResponse(status, error.message, error.errorType, error.code);
}

function errorResponse(
  status: number,
  message: string,
  type = 'volley_error',
  code?: string,
): Response {
  return new Response(
    JSON.stringify({ error: { message, type, code: code ?? null, param: null } }),
    {
      status,
      // Volley retried what was worth retrying; the openai SDK reads this and stops.
      headers: { 'content-type': 'application/json', 'x-should-retry': 'false' },
    },
  );
}
