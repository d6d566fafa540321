/**
 * Fan-out: independent requests at once, collected keyed or in input order, each settled on its
 * own. The total latency becomes the slowest call's instead of the sum; `sumCallMs - wallMs` says
 * how much that saved on this run, measured rather than assumed.
 */
import type { ChatCompletion } from '@volley/core';
import { withSpan } from '@volley/core';
import type { ChatInput } from '../create-volley.js';
import type { Settled } from '../settled.js';
import { settle } from '../settled.js';
import type { ChatClient, ChatDefaults, TokenCost } from './shared.js';
import { addUsage, createScope, elapsedSince, emptyCost, now, textOf } from './shared.js';

/** What a fanned-out call that succeeded gives: its completion and its text. */
export interface FanOutValue {
  completion: ChatCompletion;
  text: string;
}

/**
 * One fanned-out call, settled like every item of `map` and `withDeadline`:
 * `{ ok: true, value: { completion, text } }` or `{ ok: false, error }`, with its input `index`
 * and its own `latencyMs`.
 */
export type FanOutOutcome = Settled<FanOutValue>;

/** Options of {@link fanOut}. */
export interface FanOutOptions {
  /** Aborts every call still running; their outcomes become `VOLLEY_ERR_ABORTED` errors. */
  signal?: AbortSignal;
  /** Budget of each call across its retries. */
  timeoutMs?: number;
}

/** What {@link fanOut} returns: outcomes shaped like the input, and the latency they took. */
export interface FanOutResult<R> {
  /** Outcomes shaped like the input: a record with the same keys, or a list in input order. */
  results: R;
  succeeded: number;
  failed: number;
  /** From the first call's start to the last one's end. */
  wallMs: number;
  /** Sum of every call's own duration (rate-limit waits included): the cost of running them one by one. */
  sumCallMs: number;
  /** `sumCallMs - wallMs`: latency saved by running at once, on this run. */
  savedMs: number;
  /** Tokens of the calls that completed. */
  cost: TokenCost;
}

/**
 * Runs named or listed chat requests at once and returns every outcome, shaped like the input:
 * a failed call is an `{ ok: false, error }` beside the successes, never a rejected whole. Calls
 * still go through the runtime's concurrency and rate limits.
 *
 * @example
 * const doc = 'Acme Corp reported record Q4 earnings, led by its cloud unit.';
 * const { results, wallMs, sumCallMs } = await fanOut(volley, {
 *   summary: { messages: [{ role: 'user', content: `Summarise in 3 sentences:\n${doc}` }] },
 *   sentiment: { messages: [{ role: 'user', content: `Positive, negative or neutral?\n${doc}` }] },
 *   entities: { messages: [{ role: 'user', content: `Named entities as a JSON list:\n${doc}` }] },
 * });
 * if (results.sentiment.ok) console.log(results.sentiment.value.text);
 * console.log(`took ${wallMs} ms instead of ${sumCallMs} ms`);
 */
export function fanOut(
  client: ChatClient,
  requests: readonly ChatInput[],
  options?: FanOutOptions,
): Promise<FanOutResult<FanOutOutcome[]>>;
export function fanOut<K extends string>(
  client: ChatClient,
  requests: Readonly<Record<K, ChatInput>>,
  options?: FanOutOptions,
): Promise<FanOutResult<Record<K, FanOutOutcome>>>;
export function fanOut(
  client: ChatClient,
  requests: readonly ChatInput[] | Readonly<Record<string, ChatInput>>,
  options: FanOutOptions = {},
): Promise<FanOutResult<FanOutOutcome[] | Record<string, FanOutOutcome>>> {
  return withSpan(`volley.fanOut`, { 'volley.pattern': 'fanOut' }, () =>
    runFanOut(client, requests, options),
  );
}

async function runFanOut(
  client: ChatClient,
  requests: readonly ChatInput[] | Readonly<Record<string, ChatInput>>,
  options: FanOutOptions = {},
): Promise<FanOutResult<FanOutOutcome[] | Record<string, FanOutOutcome>>> {
  const entries: Array<[string, ChatInput]> = Array.isArray(requests)
    ? (requests as readonly ChatInput[]).map((request, i) => [String(i), request])
    : Object.entries(requests as Readonly<Record<string, ChatInput>>);
  // The caller's signal is followed through a scope so its listener is dropped afterwards.
  const scope = createScope(options.signal);
  const cost = emptyCost();
  const started = now();
  let sumCallMs = 0;
  let succeeded = 0;
  try {
    const outcomes = await Promise.all(
      entries.map(async ([, request], index): Promise<FanOutOutcome> => {
        const outcome = await settle(index, async () => {
          const completion = await client.chat(request, {
            signal: scope.signal,
            ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
          });
          return { completion, text: textOf(completion) };
        });
        sumCallMs += outcome.latencyMs;
        if (outcome.ok) {
          succeeded++;
          addUsage(cost, outcome.value.completion.usage);
        }
        return outcome;
      }),
    );
    const wallMs = elapsedSince(started);
    sumCallMs = Math.round(sumCallMs * 10) / 10;
    const results = Array.isArray(requests)
      ? outcomes
      : Object.fromEntries(entries.map(([key], i) => [key, outcomes[i] as FanOutOutcome]));
    return {
      results,
      succeeded,
      failed: entries.length - succeeded,
      wallMs,
      sumCallMs,
      savedMs: Math.round((sumCallMs - wallMs) * 10) / 10,
      cost,
    };
  } finally {
    scope.dispose();
  }
}

/**
 * Sectioning: one input reviewed under several system prompts, as requests for {@link fanOut}.
 * Keys (or order) follow `systemPrompts`; `defaults` (model, `max_tokens`, ...) apply to each.
 *
 * @example
 * const code = "def get_user(id): return db.query(f'SELECT * FROM users WHERE id={id}')";
 * const review = await fanOut(
 *   volley,
 *   sections(code, {
 *     security: 'You are a security expert. Review this code for security issues only.',
 *     performance: 'You are a performance engineer. Review this code for performance only.',
 *   }),
 * );
 */
export function sections(
  input: string,
  systemPrompts: readonly string[],
  defaults?: ChatDefaults,
): ChatInput[];
export function sections<K extends string>(
  input: string,
  systemPrompts: Readonly<Record<K, string>>,
  defaults?: ChatDefaults,
): Record<K, ChatInput>;
export function sections(
  input: string,
  systemPrompts: readonly string[] | Readonly<Record<string, string>>,
  defaults?: ChatDefaults,
): ChatInput[] | Record<string, ChatInput> {
  const build = (system: string): ChatInput => ({
    ...defaults,
    messages: [
      { role: 'system', content: system },
      { role: 'user', content: input },
    ],
  });
  if (Array.isArray(systemPrompts)) return (systemPrompts as readonly string[]).map(build);
  return Object.fromEntries(
    Object.entries(systemPrompts as Readonly<Record<string, string>>).map(([key, system]) => [
      key,
      build(system),
    ]),
  );
}
