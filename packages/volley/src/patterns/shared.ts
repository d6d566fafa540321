/**
 * What every pattern shares: the narrow runtime interface they call, cancellation scopes, coded
 * pattern errors, token-cost sums and a bounded task runner. Internal except for the exported
 * types and `PatternError`.
 */
import { setMaxListeners } from 'node:events';
import type { ChatCompletion, ChatMessage, Usage } from '@volley/core';
import { ErrorCode, trustedUsage, VolleyError } from '@volley/core';
import type { ChatInput, Volley } from '../create-volley.js';

/**
 * What the patterns need from a runtime: one chat call that honours its `signal` (aborting the
 * HTTP request and returning the rate-limit reservation). A `Volley` is one; so is a test double.
 */
export type ChatClient = Pick<Volley, 'chat'>;

/**
 * Omit that keeps the known keys of a type with an index signature (the wire types have one, so
 * fields a server adds round-trip); the built-in `Omit` collapses such a type to its signature.
 */
type Without<T, K extends PropertyKey> = { [P in keyof T as P extends K ? never : P]: T[P] };

/** A chat request without its messages: model, sampling and limits shared by calls a pattern builds. */
export type ChatDefaults = Without<ChatInput, 'messages'>;

/**
 * Codes of the errors the patterns raise themselves (calls that fail keep the runtime's codes,
 * such as `VOLLEY_ERR_HTTP`). Same `VOLLEY_ERR_` namespace as {@link ErrorCode}.
 */
export const PatternErrorCode = {
  /** Too few calls succeeded for the pattern to go on (map-reduce quorum, no candidate left). */
  QUORUM_NOT_MET: 'VOLLEY_ERR_QUORUM_NOT_MET',
  /** The aggregation step of a map-reduce failed; the branch outputs are on the error. */
  AGGREGATION_FAILED: 'VOLLEY_ERR_AGGREGATION_FAILED',
  /** A model asked for a tool no handler is registered for. */
  UNKNOWN_TOOL: 'VOLLEY_ERR_UNKNOWN_TOOL',
  /** A tool call's `arguments` are not a JSON object. */
  TOOL_ARGUMENTS: 'VOLLEY_ERR_TOOL_ARGUMENTS',
} as const;

/** One of {@link PatternErrorCode}. */
export type PatternErrorCodeValue = (typeof PatternErrorCode)[keyof typeof PatternErrorCode];

/** One failed call inside a pattern, by its position in the pattern's input. */
export interface IndexedError {
  index: number;
  error: Error;
}

/** What a {@link PatternError} carries besides its code and message. */
export interface PatternErrorDetails {
  cause?: unknown;
  /** Successful calls the pattern needed. */
  required?: number;
  /** Successful calls it got. */
  succeeded?: number;
  /** Calls it made. */
  total?: number;
  /** The failed calls, in input order. */
  errors?: readonly IndexedError[];
  /** Per input, the output text of the calls that succeeded (undefined where one failed). */
  outputs?: ReadonlyArray<string | undefined>;
}

/**
 * An error raised by a pattern itself, with a stable `code` from {@link PatternErrorCode} and what
 * was already paid for (`outputs`, `errors`), so a refused aggregation loses no work.
 */
export class PatternError extends Error {
  readonly code: PatternErrorCodeValue;
  readonly required: number | undefined;
  readonly succeeded: number | undefined;
  readonly total: number | undefined;
  readonly errors: readonly IndexedError[];
  readonly outputs: ReadonlyArray<string | undefined>;

  constructor(code: PatternErrorCodeValue, message: string, details: PatternErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'PatternError';
    this.code = code;
    this.required = details.required;
    this.succeeded = details.succeeded;
    this.total = details.total;
    this.errors = details.errors ?? [];
    this.outputs = details.outputs ?? [];
  }
}

/** Tokens spent by the calls that completed (an aborted call may still be billed for what it generated). */
export interface TokenCost {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** Completed calls counted. */
  calls: number;
}

/** A zero {@link TokenCost}. */
export function emptyCost(): TokenCost {
  return { promptTokens: 0, completionTokens: 0, totalTokens: 0, calls: 0 };
}

/**
 * Counts one completed call and its `usage` (if the server sent one that can be true, see
 * `trustedUsage`) into `cost`.
 */
export function addUsage(cost: TokenCost, reported: Usage | undefined): void {
  cost.calls++;
  const usage = trustedUsage(reported);
  if (usage === undefined) return;
  cost.promptTokens += usage.prompt_tokens ?? 0;
  cost.completionTokens += usage.completion_tokens ?? 0;
  cost.totalTokens += usage.total_tokens ?? 0;
}

/** The sum of several {@link TokenCost}s. */
export function sumCosts(...costs: TokenCost[]): TokenCost {
  const total = emptyCost();
  for (const cost of costs) {
    total.promptTokens += cost.promptTokens;
    total.completionTokens += cost.completionTokens;
    total.totalTokens += cost.totalTokens;
    total.calls += cost.calls;
  }
  return total;
}

/** The first choice's text: what every pattern compares, votes on and aggregates. */
export function textOf(completion: ChatCompletion): string {
  return completion.choices[0]?.message.content ?? '';
}

/** Whatever was thrown, as an Error. */
export function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

/** A monotonic time in milliseconds, for durations. */
export function now(): number {
  return performance.now();
}

/** Milliseconds rounded to 0.1: enough to compare calls, without float noise in printed results. */
export function elapsedSince(start: number): number {
  return Math.round((performance.now() - start) * 10) / 10;
}

/**
 * An AbortController that also follows a parent signal. Listeners are removed on `dispose`, so a
 * long-lived parent signal does not keep every pattern run alive (the leak `AbortSignal.any` had
 * in early Node 20 releases).
 */
export interface Scope {
  readonly signal: AbortSignal;
  abort(reason?: unknown): void;
  dispose(): void;
}

/** Creates a {@link Scope} that follows `parent`. */
export function createScope(parent: AbortSignal | undefined): Scope {
  const controller = new AbortController();
  // Every call of a pattern listens on this one signal (200 map branches: 200 listeners), which
  // is by design, not the leak Node's default limit of 10 warns about on stderr.
  setMaxListeners(0, controller.signal);
  const abort = (reason?: unknown): void => controller.abort(reason);
  if (parent === undefined) return { signal: controller.signal, abort, dispose: () => {} };
  if (parent.aborted) {
    controller.abort(parent.reason);
    return { signal: controller.signal, abort, dispose: () => {} };
  }
  const follow = (): void => controller.abort(parent.reason);
  parent.addEventListener('abort', follow, { once: true });
  return {
    signal: controller.signal,
    abort,
    dispose: () => parent.removeEventListener('abort', follow),
  };
}

/** What a decision pattern rejects with when its caller aborts it. */
export function abortedError(pattern: string, signal: AbortSignal | undefined): VolleyError {
  return new VolleyError(ErrorCode.ABORTED, `${pattern} aborted by the caller`, {
    cause: signal?.reason,
  });
}

/**
 * Runs `task(i)` for every i below `count`, at most `limit` at once, starting the next one as
 * one settles, until `stopped()` says no more should start. Resolves once every started task has
 * settled. Tasks must not reject: each records its own outcome.
 */
export function runBounded(
  count: number,
  limit: number,
  task: (index: number) => Promise<void>,
  stopped: () => boolean = () => false,
): Promise<void> {
  return new Promise((resolve) => {
    let next = 0;
    let active = 0;
    const launch = (): void => {
      while (active < limit && next < count && !stopped()) {
        const index = next++;
        active++;
        void task(index).then(settled, settled);
      }
      if (active === 0) resolve();
    };
    const settled = (): void => {
      active--;
      launch();
    };
    launch();
  });
}

/** Validates a positive integer option once, at the pattern's edge. */
export function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new VolleyError(
      ErrorCode.INVALID_OPTIONS,
      `${name} must be a positive integer, got ${String(value)}`,
    );
  }
  return value;
}

/** A `VOLLEY_ERR_INVALID_OPTIONS` error for a pattern option. */
export function invalidOption(message: string): VolleyError {
  return new VolleyError(ErrorCode.INVALID_OPTIONS, message);
}

/** Builds a chat request from shared defaults plus messages. */
export function chatRequest(
  defaults: ChatDefaults | undefined,
  messages: ChatMessage[],
): ChatInput {
  return { ...defaults, messages };
}

/** A request's messages, typed: `ChatInput` types them `unknown` (its `Omit` drops the known keys). */
export function messagesOf(request: ChatInput): readonly ChatMessage[] {
  return request.messages as readonly ChatMessage[];
}

/** Replaces every `{input}` in a prompt template; without one, the input follows a blank line. */
export function fillTemplate(template: string, input: string): string {
  // split/join rather than String.replace: `$&` and friends in the input must stay literal.
  return template.includes('{input}')
    ? template.split('{input}').join(input)
    : `${template}\n\n${input}`;
}
