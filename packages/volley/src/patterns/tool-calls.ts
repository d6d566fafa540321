/**
 * Executing a model's `tool_calls`: the handlers run concurrently (bounded), each under its own
 * timeout, and every call gets exactly one `tool` message back, in the order the model asked, so
 * the conversation stays valid even when a handler throws, times out or was never registered.
 * Failures go back to the model as tool messages (it can often recover), never as a rejection.
 */
import type { ChatCompletion, ChatMessage, ToolCall } from '@volley/core';
import { ErrorCode, VolleyError, withSpan } from '@volley/core';
import {
  createScope,
  elapsedSince,
  now,
  PatternError,
  PatternErrorCode,
  positiveInteger,
  runBounded,
  toError,
} from './shared.js';

/** What a handler gets besides its arguments. */
export interface ToolContext {
  /** Aborts at the call's timeout or when the caller aborts: pass it on to fetch, volley.chat, ... */
  signal: AbortSignal;
  call: ToolCall;
}

/**
 * A tool implementation. `args` is the parsed JSON object the model sent; the return value
 * becomes the tool message (strings as they are, anything else as JSON).
 */
// biome-ignore lint/suspicious/noExplicitAny: arguments are model-written JSON; each handler declares the shape it expects.
export type ToolHandler = (args: any, context: ToolContext) => unknown;

/** Options of {@link runToolCalls}. */
export interface RunToolCallsOptions {
  /** Handlers running at once. Default 8. */
  concurrency?: number;
  /** Budget of each handler. Default 30 000. */
  timeoutMs?: number;
  /** Aborts every handler still running; their messages report the abort. */
  signal?: AbortSignal;
}

/** Why a tool call failed, as its tool message reports it to the model. */
export type ToolErrorType =
  | 'unknown_tool'
  | 'invalid_arguments'
  | 'timeout'
  | 'aborted'
  | 'handler_error';

/** What happened to one tool call, and the `content` of its tool message. */
export type ToolCallOutcome =
  | { id: string; name: string; ok: true; value: unknown; content: string; latencyMs: number }
  | {
      id: string;
      name: string;
      ok: false;
      error: Error;
      errorType: ToolErrorType;
      content: string;
      latencyMs: number;
    };

/** What {@link runToolCalls} returns. */
export interface RunToolCallsResult {
  /** One `tool` message per call, in the model's order: append them after the assistant message. */
  messages: ChatMessage[];
  outcomes: ToolCallOutcome[];
}

/** The tool calls of a completion's first choice, an assistant message, or a list. */
export type ToolCallSource =
  | ChatCompletion
  | { tool_calls?: readonly ToolCall[] | undefined }
  | readonly ToolCall[];

/**
 * Executes a model's tool calls concurrently with your handlers and returns the `tool` messages
 * to append to the conversation. Never rejects: a handler's error, a timeout, an unknown tool or
 * arguments that are not JSON become a tool message of the form `{"error":{"type","message"}}`.
 *
 * @example
 * const reply = await volley.chat({ messages, tools });
 * const assistant = reply.choices[0]?.message;
 * if (assistant?.tool_calls) {
 *   const { messages: toolMessages } = await runToolCalls(assistant, {
 *     get_weather: async ({ city }: { city: string }) => `18°C and sunny in ${city}`,
 *   });
 *   messages.push({ role: 'assistant', content: assistant.content, tool_calls: assistant.tool_calls }, ...toolMessages);
 * }
 */
export function runToolCalls(
  source: ToolCallSource,
  handlers: Readonly<Record<string, ToolHandler>>,
  options: RunToolCallsOptions = {},
): Promise<RunToolCallsResult> {
  return withSpan(`volley.runToolCalls`, { 'volley.pattern': 'runToolCalls' }, () =>
    executeToolCalls(source, handlers, options),
  );
}

async function executeToolCalls(
  source: ToolCallSource,
  handlers: Readonly<Record<string, ToolHandler>>,
  options: RunToolCallsOptions = {},
): Promise<RunToolCallsResult> {
  const calls = toolCallsOf(source);
  const concurrency = positiveInteger('runToolCalls: concurrency', options.concurrency, 8);
  const timeoutMs = positiveInteger('runToolCalls: timeoutMs', options.timeoutMs, 30_000);
  const scope = createScope(options.signal);
  const outcomes: ToolCallOutcome[] = new Array<ToolCallOutcome>(calls.length);
  try {
    await runBounded(calls.length, concurrency, async (index) => {
      outcomes[index] = await runOne(calls[index] as ToolCall, handlers, timeoutMs, scope.signal);
    });
  } finally {
    scope.dispose();
  }
  return {
    messages: outcomes.map(
      (outcome): ChatMessage => ({
        role: 'tool',
        tool_call_id: outcome.id,
        content: outcome.content,
      }),
    ),
    outcomes,
  };
}

function toolCallsOf(source: ToolCallSource): readonly ToolCall[] {
  if (Array.isArray(source)) return source as readonly ToolCall[];
  if ('choices' in source && Array.isArray(source.choices))
    return source.choices[0]?.message.tool_calls ?? [];
  return (source as { tool_calls?: readonly ToolCall[] }).tool_calls ?? [];
}

async function runOne(
  call: ToolCall,
  handlers: Readonly<Record<string, ToolHandler>>,
  timeoutMs: number,
  parent: AbortSignal,
): Promise<ToolCallOutcome> {
  const started = now();
  const { id } = call;
  const name = call.function?.name ?? '';
  const failure = (errorType: ToolErrorType, error: Error): ToolCallOutcome => ({
    id,
    name,
    ok: false,
    error,
    errorType,
    content: JSON.stringify({ error: { type: errorType, message: error.message } }),
    latencyMs: elapsedSince(started),
  });
  // Own property only: a model naming "constructor" or "toString" must not reach Object.prototype.
  const handler = Object.hasOwn(handlers, name) ? handlers[name] : undefined;
  if (handler === undefined) {
    return failure(
      'unknown_tool',
      new PatternError(PatternErrorCode.UNKNOWN_TOOL, `no handler for tool "${name}"`),
    );
  }
  let args: unknown;
  try {
    const raw = call.function.arguments;
    args = raw === undefined || raw.trim() === '' ? {} : JSON.parse(raw);
  } catch (error) {
    return failure(
      'invalid_arguments',
      new PatternError(PatternErrorCode.TOOL_ARGUMENTS, `arguments of "${name}" are not JSON`, {
        cause: error,
      }),
    );
  }
  if (typeof args !== 'object' || args === null || Array.isArray(args)) {
    return failure(
      'invalid_arguments',
      new PatternError(PatternErrorCode.TOOL_ARGUMENTS, `arguments of "${name}" are not an object`),
    );
  }
  if (parent.aborted) {
    return failure(
      'aborted',
      new VolleyError(ErrorCode.ABORTED, 'tool call aborted by the caller'),
    );
  }

  const scope = createScope(parent);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    // Whichever comes first: the handler, its timeout, or the caller's abort. A handler that
    // ignores its signal is left behind (its late result dropped) rather than waited for.
    const stopped = new Promise<ToolCallOutcome>((resolve) => {
      timer = setTimeout(() => {
        const error = new VolleyError(
          ErrorCode.TIMEOUT,
          `tool "${name}" did not finish within ${timeoutMs} ms`,
        );
        // Resolve first: the abort below also wakes the listener, which must not win the race.
        resolve(failure('timeout', error));
        scope.abort(error);
      }, timeoutMs);
      scope.signal.addEventListener(
        'abort',
        () =>
          resolve(
            failure(
              'aborted',
              new VolleyError(ErrorCode.ABORTED, 'tool call aborted by the caller', {
                cause: parent.reason,
              }),
            ),
          ),
        { once: true },
      );
    });
    const ran = new Promise<unknown>((resolve) => {
      resolve(handler(args, { signal: scope.signal, call }));
    }).then(
      (value): ToolCallOutcome => ({
        id,
        name,
        ok: true,
        value,
        content: contentOf(value),
        latencyMs: elapsedSince(started),
      }),
      (error: unknown) => failure('handler_error', toError(error)),
    );
    return await Promise.race([ran, stopped]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    scope.dispose();
  }
}

function contentOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return '';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
