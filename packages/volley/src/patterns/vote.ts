/**
 * Voting (self-consistency, classification by several runs): N runs, each answer normalised and
 * counted, the outcome decided by a majority, a fixed threshold or a plurality.
 *
 * The vote stops as soon as its outcome cannot change: with 5 runs and a majority rule, 3 equal
 * answers settle it, and the 2 runs still generating are aborted (their HTTP requests cancelled
 * and their rate-limit reservations returned) instead of being paid for to the end. With
 * `concurrency` below `n`, runs start only while the outcome is still open, so agreeing runs
 * cost no more than the quorum.
 */
import { ErrorCode, VolleyError, withSpan } from '@volley/core';
import type { ChatInput } from '../create-volley.js';
import type { ChatClient, TokenCost } from './shared.js';
import {
  abortedError,
  addUsage,
  createScope,
  elapsedSince,
  emptyCost,
  invalidOption,
  now,
  positiveInteger,
  textOf,
  toError,
} from './shared.js';

/**
 * How a winner is decided. `'majority'` (default): more than half of the `n` runs agree.
 * A number k: the first answer to get k votes. `'plurality'`: the most votes, no tie.
 */
export type VoteThreshold = number | 'majority' | 'plurality';

/** Options of {@link vote}. */
export interface VoteOptions {
  /** The request every run sends, or one per run (different prompts, seeds or models). */
  request: ChatInput | ((index: number) => ChatInput);
  /** Runs. Default 5 (odd, so a binary choice cannot tie). */
  n?: number;
  threshold?: VoteThreshold;
  /** Maps an answer text to the label counted; `undefined` or `''` abstains. Default {@link normaliseAnswer}. */
  normalise?: (text: string) => string | undefined;
  /**
   * Runs in flight at once. Default `n`: all start at once, the fastest. Below `n`, a run starts
   * only while the runs in flight could not settle the vote even if they all agreed, so with
   * `concurrency` at the quorum, agreeing runs cost exactly the quorum and disagreement adds runs.
   */
  concurrency?: number;
  /** Aborts every run; `vote` rejects with `VOLLEY_ERR_ABORTED`. */
  signal?: AbortSignal;
  /** Budget of each run across its retries. */
  timeoutMs?: number;
}

/** One run's part in the vote. */
export type VoteRecord =
  | { index: number; status: 'voted'; answer: string; text: string; latencyMs: number }
  /** The answer normalised to nothing. */
  | { index: number; status: 'abstained'; text: string; latencyMs: number }
  | { index: number; status: 'failed'; error: Error; latencyMs: number }
  /** Started, then aborted because the outcome was already settled. */
  | { index: number; status: 'cancelled' }
  /** Never started: the outcome was settled first. */
  | { index: number; status: 'skipped' };

/** What {@link vote} returns. */
export interface VoteResult {
  /** The winning normalised answer; undefined when no answer could win. */
  winner: string | undefined;
  decided: boolean;
  /** Votes per answer, most first (ties ordered by the lowest run index that gave the answer). */
  tally: Array<{ answer: string; votes: number }>;
  /** Every run, by index. */
  votes: VoteRecord[];
  /** Votes a winner needed; undefined for `'plurality'`. */
  needed: number | undefined;
  /** The outcome was settled before every run finished (the rest were cancelled or skipped). */
  stoppedEarly: boolean;
  /** Tokens of the runs that completed. */
  cost: TokenCost;
  wallMs: number;
}

/**
 * The default normaliser: case, surrounding whitespace, quotes, markdown emphasis, an
 * `Answer:` prefix and surrounding punctuation do not split votes ("**Positive.**" and
 * "positive" count as one). Returns undefined for an empty answer.
 */
export function normaliseAnswer(text: string): string | undefined {
  const answer = text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[*_`"“”‘’]/g, '')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^(?:final answer|answer)\s*[:-]\s*/, '')
    .replace(/^['\s.,;:!?([{]+/, '')
    .replace(/['\s.,;:!?)\]}]+$/, '');
  return answer === '' ? undefined : answer;
}

/**
 * Runs a request `n` times (or `n` requests), normalises and counts the answers, and stops as
 * soon as the outcome cannot change, aborting the runs still going.
 *
 * @example
 * const { winner, tally } = await vote(volley, {
 *   request: {
 *     messages: [{ role: 'user', content: "Safe or unsafe? One word.\n\nBuy cheap meds online" }],
 *     temperature: 0.8,
 *   },
 *   n: 5,
 * });
 * console.log(winner, tally); // e.g. 'unsafe' [{ answer: 'unsafe', votes: 3 }]
 */
export function vote(client: ChatClient, options: VoteOptions): Promise<VoteResult> {
  return withSpan(`volley.vote`, { 'volley.pattern': 'vote' }, () => runVote(client, options));
}

function runVote(client: ChatClient, options: VoteOptions): Promise<VoteResult> {
  const n = positiveInteger('vote: n', options.n, 5);
  const threshold = options.threshold ?? 'majority';
  const needed = neededVotes(threshold, n);
  const limit = positiveInteger('vote: concurrency', options.concurrency, n);
  const normalise = options.normalise ?? normaliseAnswer;
  const requestFor =
    typeof options.request === 'function' ? options.request : () => options.request as ChatInput;
  const scope = createScope(options.signal);
  const callOptions = {
    signal: scope.signal,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  };
  const started = now();
  const cost = emptyCost();
  const records: Array<VoteRecord | undefined> = new Array<VoteRecord | undefined>(n).fill(
    undefined,
  );
  /** Per answer: its votes and the lowest run index that gave it (ties are ordered by it). */
  const counts = new Map<string, { votes: number; first: number }>();
  const running = new Set<number>();
  let next = 0;
  let settled = 0;
  let finished = false;

  return new Promise<VoteResult>((resolve, reject) => {
    const finish = (winner: string | undefined, decided: boolean): void => {
      finished = true;
      const stoppedEarly = settled < n;
      for (let index = 0; index < n; index++) {
        if (records[index] !== undefined) continue;
        records[index] = running.has(index)
          ? { index, status: 'cancelled' }
          : { index, status: 'skipped' };
      }
      // Runs still generating are no longer needed: abort them at the server.
      if (running.size > 0)
        scope.abort(new VolleyError(ErrorCode.ABORTED, 'vote settled; run no longer needed'));
      scope.dispose();
      resolve({
        winner,
        decided,
        tally: tallyOf(counts),
        votes: records as VoteRecord[],
        needed,
        stoppedEarly,
        cost,
        wallMs: elapsedSince(started),
      });
    };

    const onRun = (index: number, record: VoteRecord): void => {
      running.delete(index);
      if (finished) return;
      records[index] = record;
      settled++;
      if (record.status === 'voted') {
        const entry = counts.get(record.answer);
        if (entry === undefined) counts.set(record.answer, { votes: 1, first: index });
        else {
          entry.votes++;
          entry.first = Math.min(entry.first, index);
        }
      }
      const outcome = decide(tallyOf(counts), n - settled, threshold, needed);
      if (outcome !== undefined) finish(outcome.winner, outcome.winner !== undefined);
      else launch();
    };

    // A throwing request builder or normaliser is a bug in the caller's code: the vote stops,
    // aborts its runs and rejects with that error rather than leaving a rejection unhandled.
    const fail = (error: unknown): void => {
      if (finished) return;
      finished = true;
      scope.abort(error);
      scope.dispose();
      reject(toError(error));
    };

    const start = (index: number): void => {
      running.add(index);
      const runStarted = now();
      void client
        .chat(requestFor(index), callOptions)
        .then(
          (completion) => {
            addUsage(cost, completion.usage);
            const text = textOf(completion);
            const answer = normalise(text);
            const latencyMs = elapsedSince(runStarted);
            onRun(
              index,
              answer === undefined || answer === ''
                ? { index, status: 'abstained', text, latencyMs }
                : { index, status: 'voted', answer, text, latencyMs },
            );
          },
          (error: unknown) => {
            onRun(index, {
              index,
              status: 'failed',
              error: toError(error),
              latencyMs: elapsedSince(runStarted),
            });
          },
        )
        .catch(fail);
    };

    const launch = (): void => {
      while (!finished && running.size < limit && next < n) {
        // Below full concurrency, a run starts only if the runs in flight could not settle the
        // vote on their own: agreeing runs then cost exactly the quorum.
        if (
          limit < n &&
          !couldStayOpen(tallyOf(counts), running.size, n - settled, threshold, needed)
        )
          return;
        start(next++);
      }
    };

    const onAbort = (): void => {
      if (finished) return;
      finished = true;
      scope.dispose();
      reject(abortedError('vote', options.signal));
    };
    if (scope.signal.aborted) {
      onAbort();
      return;
    }
    scope.signal.addEventListener('abort', onAbort, { once: true });
    try {
      launch();
    } catch (error) {
      fail(error);
    }
  });
}

function neededVotes(threshold: VoteThreshold, n: number): number | undefined {
  if (threshold === 'plurality') return undefined;
  if (threshold === 'majority') return Math.floor(n / 2) + 1;
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > n) {
    throw invalidOption(
      `vote: threshold must be 'majority', 'plurality' or an integer from 1 to n (${n}), got ${String(threshold)}`,
    );
  }
  return threshold;
}

function tallyOf(
  counts: Map<string, { votes: number; first: number }>,
): Array<{ answer: string; votes: number }> {
  // Ties by run index, not arrival: the same runs give the same tally however the calls raced.
  return [...counts]
    .sort(([, a], [, b]) => b.votes - a.votes || a.first - b.first)
    .map(([answer, { votes }]) => ({ answer, votes }));
}

/**
 * Whether the outcome is settled, given the tally so far and the runs not yet settled: a winner,
 * `{ winner: undefined }` when no answer can win any more, or undefined while it is open.
 */
function decide(
  tally: ReadonlyArray<{ answer: string; votes: number }>,
  remaining: number,
  threshold: VoteThreshold,
  needed: number | undefined,
): { winner: string | undefined } | undefined {
  const leader = tally[0];
  const leading = leader?.votes ?? 0;
  if (threshold === 'plurality' || needed === undefined) {
    const second = tally[1]?.votes ?? 0;
    // Strictly ahead even if every remaining run voted for the runner-up: a tie cannot happen.
    if (leader !== undefined && leading > second + remaining) return { winner: leader.answer };
    return remaining === 0 ? { winner: undefined } : undefined;
  }
  if (leader !== undefined && leading >= needed) return { winner: leader.answer };
  // Not even the leader can reach the threshold with every remaining run.
  if (leading + remaining < needed) return { winner: undefined };
  return undefined;
}

/**
 * Whether the vote could still be open after the `inFlight` runs settle, even if every one of
 * them voted for the current leader: if not, starting another run cannot be needed yet.
 */
function couldStayOpen(
  tally: ReadonlyArray<{ answer: string; votes: number }>,
  inFlight: number,
  remaining: number,
  threshold: VoteThreshold,
  needed: number | undefined,
): boolean {
  const leading = (tally[0]?.votes ?? 0) + inFlight;
  if (threshold === 'plurality' || needed === undefined) {
    return leading <= (tally[1]?.votes ?? 0) + (remaining - inFlight);
  }
  return leading < needed;
}
