/**
 * Best-of-N: N candidates generated at once (diverse temperatures, or several models), then one
 * picked by a judge (an LLM call, usually a cheaper model) or by a scoring function. Latency is
 * the slowest candidate plus the judge; cost is N candidates plus the judge, reported in tokens.
 *
 * Judges do not always answer "2" as told: they say "Response 2", "#2", "the second", or explain
 * first. `parseJudgeChoice` reads all of those; when it cannot (or the judge call fails), the
 * first successful candidate wins and the verdict says so, so nonsense never passes for a choice.
 */
import type { ChatCompletion, ChatMessage } from '@volley/core';
import { withSpan } from '@volley/core';
import type { ChatInput } from '../create-volley.js';
import type { ChatClient, ChatDefaults, IndexedError, TokenCost } from './shared.js';
import {
  abortedError,
  addUsage,
  createScope,
  elapsedSince,
  emptyCost,
  messagesOf,
  now,
  PatternError,
  PatternErrorCode,
  positiveInteger,
  sumCosts,
  textOf,
  toError,
} from './shared.js';

/** A judge LLM: which model, what it is told, and its sampling. */
export interface BestOfNJudge {
  /** Default: the request's model (or the runtime's default). A cheaper model usually does. */
  model?: string;
  /** The judge's system prompt: what "best" means here. */
  instructions?: string;
  /** Extra request fields. Default `temperature: 0`, `max_tokens: 16`. */
  request?: ChatDefaults;
}

/** Options of {@link bestOfN}. */
export interface BestOfNOptions {
  request: ChatInput;
  /** Candidates. Default: the longer of `models` and `temperatures`, else 3. */
  n?: number;
  /** Candidate i uses `temperatures[i % length]`. Default: spread evenly over 0.4 to 1.0. */
  temperatures?: readonly number[];
  /** Candidate i uses `models[i % length]`. Default: the request's model. */
  models?: readonly string[];
  /** The LLM judge (used unless `score` is given). */
  judge?: BestOfNJudge;
  /** Scores a candidate in code instead of a judge; highest wins, ties go to the lower index. */
  score?: (candidate: BestOfNSuccess) => number | Promise<number>;
  /** Aborts every call; `bestOfN` rejects with `VOLLEY_ERR_ABORTED`. */
  signal?: AbortSignal;
  /** Budget of each call across its retries. */
  timeoutMs?: number;
}

interface CandidateBase {
  index: number;
  model: string | undefined;
  temperature: number;
  latencyMs: number;
}

/** A candidate that was generated: its text and completion. */
export type BestOfNSuccess = CandidateBase & { ok: true; text: string; completion: ChatCompletion };
/** One candidate, generated or failed, with the model and temperature it used. */
export type BestOfNCandidate = BestOfNSuccess | (CandidateBase & { ok: false; error: Error });

/** How the winner was chosen. `choice` is always the winner's candidate index. */
export type BestOfNVerdict =
  | { method: 'judge'; parsed: true; raw: string; choice: number }
  | {
      method: 'judge';
      parsed: false;
      /** The judge answered something unreadable, or its call failed: the first candidate won. */
      reason: 'unparseable' | 'judge-failed';
      raw: string | undefined;
      error?: Error;
      choice: number;
    }
  | { method: 'score'; scores: Array<number | undefined>; choice: number }
  /** Only one candidate succeeded; nothing to judge. */
  | { method: 'single'; choice: number };

/** What {@link bestOfN} returns. */
export interface BestOfNResult {
  winner: BestOfNSuccess;
  /** Every candidate, by index, failures included. */
  candidates: BestOfNCandidate[];
  verdict: BestOfNVerdict;
  /** Tokens of the completed calls: the candidates, the judge, and both. */
  cost: { candidates: TokenCost; judge: TokenCost; total: TokenCost };
  wallMs: number;
}

const DEFAULT_JUDGE_INSTRUCTIONS =
  'You are a strict judge. Compare the responses to the query and pick the single best one: ' +
  'the most correct, complete and helpful.';

/**
 * Generates N candidates at once and picks one with a judge or a scoring function. Rejects with
 * `VOLLEY_ERR_QUORUM_NOT_MET` only when every candidate failed.
 *
 * @example
 * const { winner, verdict, cost } = await bestOfN(volley, {
 *   request: { messages: [{ role: 'user', content: 'Write a tagline for a bicycle shop.' }] },
 *   n: 3,
 *   judge: { model: 'gpt-4o-mini' },
 * });
 * console.log(winner.text, verdict, cost.total.totalTokens);
 */
export function bestOfN(client: ChatClient, options: BestOfNOptions): Promise<BestOfNResult> {
  return withSpan(`volley.bestOfN`, { 'volley.pattern': 'bestOfN' }, () =>
    runBestOfN(client, options),
  );
}

async function runBestOfN(client: ChatClient, options: BestOfNOptions): Promise<BestOfNResult> {
  const started = now();
  const n = positiveInteger(
    'bestOfN: n',
    options.n,
    Math.max(options.models?.length ?? 0, options.temperatures?.length ?? 0) || 3,
  );
  const temperatures =
    options.temperatures !== undefined && options.temperatures.length > 0
      ? options.temperatures
      : spreadTemperatures(n);
  const models = options.models ?? [];
  const scope = createScope(options.signal);
  const callOptions = {
    signal: scope.signal,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  };
  const candidateCost = emptyCost();
  const judgeCost = emptyCost();
  try {
    if (scope.signal.aborted) throw abortedError('bestOfN', options.signal);
    const candidates = await Promise.all(
      Array.from({ length: n }, async (_, index): Promise<BestOfNCandidate> => {
        const model = models.length > 0 ? models[index % models.length] : options.request.model;
        const temperature = temperatures[index % temperatures.length] as number;
        const request: ChatInput = { ...options.request, temperature };
        if (model !== undefined) request.model = model;
        const callStarted = now();
        try {
          const completion = await client.chat(request, callOptions);
          addUsage(candidateCost, completion.usage);
          const text = textOf(completion);
          const latencyMs = elapsedSince(callStarted);
          return { index, model, temperature, latencyMs, ok: true, text, completion };
        } catch (error) {
          const latencyMs = elapsedSince(callStarted);
          return { index, model, temperature, latencyMs, ok: false, error: toError(error) };
        }
      }),
    );
    if (scope.signal.aborted) throw abortedError('bestOfN', options.signal);
    const succeeded = candidates.filter((candidate) => candidate.ok);
    const first = succeeded[0];
    if (first === undefined) {
      const errors: IndexedError[] = candidates.flatMap((candidate) =>
        candidate.ok ? [] : [{ index: candidate.index, error: candidate.error }],
      );
      throw new PatternError(
        PatternErrorCode.QUORUM_NOT_MET,
        `bestOfN: all ${n} candidates failed`,
        { required: 1, succeeded: 0, total: n, errors },
      );
    }

    let verdict: BestOfNVerdict;
    if (succeeded.length === 1) {
      verdict = { method: 'single', choice: first.index };
    } else if (options.score !== undefined) {
      const scores: Array<number | undefined> = new Array<number | undefined>(n).fill(undefined);
      let best = first;
      let bestScore = Number.NEGATIVE_INFINITY;
      for (const candidate of succeeded) {
        const value = await options.score(candidate);
        scores[candidate.index] = value;
        // NaN never wins; ties keep the lower index.
        if (value > bestScore) {
          bestScore = value;
          best = candidate;
        }
      }
      verdict = { method: 'score', scores, choice: best.index };
    } else {
      verdict = await judge(client, options, succeeded, callOptions, judgeCost);
      if (scope.signal.aborted) throw abortedError('bestOfN', options.signal);
    }
    const winner = candidates[verdict.choice] as BestOfNSuccess;
    return {
      winner,
      candidates,
      verdict,
      cost: {
        candidates: candidateCost,
        judge: judgeCost,
        total: sumCosts(candidateCost, judgeCost),
      },
      wallMs: elapsedSince(started),
    };
  } finally {
    scope.dispose();
  }
}

/** n temperatures spread evenly over 0.4 to 1.0 (0.7 for one): diverse but still coherent. */
function spreadTemperatures(n: number): number[] {
  if (n === 1) return [0.7];
  return Array.from({ length: n }, (_, i) => Math.round((0.4 + (0.6 * i) / (n - 1)) * 100) / 100);
}

async function judge(
  client: ChatClient,
  options: BestOfNOptions,
  succeeded: readonly BestOfNSuccess[],
  callOptions: { signal: AbortSignal; timeoutMs?: number },
  cost: TokenCost,
): Promise<BestOfNVerdict> {
  const settings = options.judge ?? {};
  const numbered = succeeded
    .map((candidate, i) => `--- Response ${i + 1} ---\n${candidate.text}`)
    .join('\n\n');
  const request: ChatInput = {
    temperature: 0,
    max_tokens: 16,
    ...settings.request,
    messages: [
      { role: 'system', content: settings.instructions ?? DEFAULT_JUDGE_INSTRUCTIONS },
      {
        role: 'user',
        content:
          `Query:\n${renderConversation(messagesOf(options.request))}\n\n${numbered}\n\n` +
          `Reply with ONLY the number (1 to ${succeeded.length}) of the best response.`,
      },
    ],
  };
  const model = settings.model ?? settings.request?.model ?? options.request.model;
  if (model !== undefined) request.model = model;
  const fallback = (succeeded[0] as BestOfNSuccess).index;
  let raw: string;
  try {
    const completion = await client.chat(request, callOptions);
    addUsage(cost, completion.usage);
    raw = textOf(completion);
  } catch (error) {
    return {
      method: 'judge',
      parsed: false,
      reason: 'judge-failed',
      raw: undefined,
      error: toError(error),
      choice: fallback,
    };
  }
  const picked = parseJudgeChoice(raw, succeeded.length);
  if (picked === undefined) {
    return { method: 'judge', parsed: false, reason: 'unparseable', raw, choice: fallback };
  }
  return {
    method: 'judge',
    parsed: true,
    raw,
    choice: (succeeded[picked - 1] as BestOfNSuccess).index,
  };
}

function renderConversation(messages: readonly ChatMessage[]): string {
  const text = (message: ChatMessage): string =>
    typeof message.content === 'string'
      ? message.content
      : (message.content ?? []).map((part) => part.text ?? '').join('');
  if (messages.length === 1 && messages[0] !== undefined) return text(messages[0]);
  return messages.map((message) => `${message.role}: ${text(message)}`).join('\n');
}

const ORDINALS = [
  'first',
  'second',
  'third',
  'fourth',
  'fifth',
  'sixth',
  'seventh',
  'eighth',
  'ninth',
  'tenth',
];
const NUMBER_WORDS = [
  'one',
  'two',
  'three',
  'four',
  'five',
  'six',
  'seven',
  'eight',
  'nine',
  'ten',
];
const LABEL = '(?:response|candidate|answer|option|choice|number|no\\.|#)';
/** A choice as a judge writes it: 2, 2nd, two, second; never the tail of a longer word or number. */
const VALUE = `(?<![a-z0-9])(\\d+(?:st|nd|rd|th)?|${NUMBER_WORDS.join('|')}|${ORDINALS.join('|')})(?![a-z0-9])`;
const NOUN = '(?:\\s+(?:response|candidate|answer|option|one))?';

/** "2", "#2", "Response 2.", "the second", "Second one", "two", "(2)", "[2]". */
const WHOLE = new RegExp(
  `^(?:(?:the|i choose|i pick|i select|my choice is|best)\\s+)?(?:${LABEL}\\s*)?#?\\s*${VALUE}${NOUN}$`,
);
/** "the best response is #1", "I choose response 2", "winner: 2", "I'd pick the second". */
const VERDICT_BEFORE = new RegExp(
  `\\b(?:best|winner|strongest|pick|choose|chose|select|prefer|verdict)\\b${NOUN}\\s*(?:is|:|=|would be|goes to)?\\s*(?:clearly\\s+)?(?:the\\s+)?(?:${LABEL}\\s*)?#?\\s*${VALUE}`,
);
/** A choice with no label: digits or an ordinal ("one" alone is too common in prose to count). */
const UNLABELLED = `(?<![a-z0-9])(\\d+(?:st|nd|rd|th)?|${ORDINALS.join('|')})(?![a-z0-9])`;
/** "response 2 is the best", "#3 is better", "the second one is strongest". */
const VERDICT_AFTER = new RegExp(
  `(?:${LABEL}\\s*#?\\s*${VALUE}|${UNLABELLED})${NOUN}\\s+is\\s+(?:clearly\\s+)?(?:the\\s+)?(?:best|better|strongest|winner|most)\\b`,
);
/** An answer that opens with its choice, then explains: "2. It covers...", "Response 2: because". */
const LEADING = new RegExp(`^(?:${LABEL}\\s*)?#?\\s*(\\d+)\\s*(?:[.):,;\\-\u2013\u2014]|$)`);
const LABELLED = new RegExp(`(?:${LABEL}\\s*#?\\s*${VALUE}|\\b(${ORDINALS.join('|')})\\b)`, 'g');
const BARE_NUMBER = /\b(\d+)\b/g;

function choiceValue(token: string | undefined): number | undefined {
  if (token === undefined) return undefined;
  const digits = /^(\d+)(?:st|nd|rd|th)?$/.exec(token);
  if (digits !== null) return Number(digits[1]);
  const word = NUMBER_WORDS.indexOf(token);
  if (word >= 0) return word + 1;
  const ordinal = ORDINALS.indexOf(token);
  return ordinal >= 0 ? ordinal + 1 : undefined;
}

/**
 * Reads which response a judge picked, as the 1-based number it was shown: "2", "Response 2",
 * "#2", "**2**", "the second", "two", "I choose response 2", "Response 2 is the best because...",
 * "2. It is more complete". Returns undefined when the answer names no response in 1..count, or
 * names several without saying which is best: a judge that answers nonsense must not pick one.
 *
 * @example
 * parseJudgeChoice('Response 2', 3); // 2
 * parseJudgeChoice('the third', 3); // 3
 * parseJudgeChoice('banana', 3); // undefined
 */
export function parseJudgeChoice(text: string, count: number): number | undefined {
  const inRange = (value: number | undefined): number | undefined =>
    value !== undefined && value >= 1 && value <= count ? value : undefined;
  const cleaned = text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[*_`"“”‘’]/g, '')
    .replace(/\s+/g, ' ')
    .trim();
  const bare = cleaned.replace(/^[\s([{:.-]+|[\s)\]}:.!,-]+$/g, '');
  const whole = WHOLE.exec(bare);
  if (whole !== null) return inRange(choiceValue(whole[1]));
  for (const pattern of [VERDICT_BEFORE, VERDICT_AFTER]) {
    const match = pattern.exec(cleaned);
    const value = inRange(choiceValue(match?.[1] ?? match?.[2]));
    if (value !== undefined) return value;
  }
  const leading = inRange(choiceValue(LEADING.exec(bare)?.[1]));
  if (leading !== undefined) return leading;
  // Otherwise only an unambiguous mention counts: one response named, however often.
  const labelled = new Set<number>();
  for (const match of cleaned.matchAll(LABELLED)) {
    const value = inRange(choiceValue(match[1] ?? match[2]));
    if (value !== undefined) labelled.add(value);
  }
  if (labelled.size > 0) return labelled.size === 1 ? [...labelled][0] : undefined;
  const numbers = new Set<number>();
  for (const match of cleaned.matchAll(BARE_NUMBER)) {
    const value = inRange(choiceValue(match[1]));
    if (value !== undefined) numbers.add(value);
  }
  return numbers.size === 1 ? [...numbers][0] : undefined;
}
