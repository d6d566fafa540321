/**
 * Map-reduce (the "parallel calls" workflow): split the input, run one branch prompt over every
 * chunk at once, then aggregate the outputs with a prompt or with code.
 *
 *   text --split--> chunk 0 ... chunk n-1 --branch (parallel)--> outputs --quorum?--> aggregate
 *
 * Partial failure is the normal case at scale, so it is decided by a k-of-n quorum rather than by
 * whichever branch failed: below the quorum nothing is aggregated and a coded error carries the
 * outputs already paid for. As soon as more branches have failed than the quorum allows, the
 * remaining ones are aborted (or never started): they could no longer change the outcome. A prompt aggregation whose input exceeds `maxInputTokens` is done
 * hierarchically: groups that fit are aggregated at once, then their results, until one call fits.
 */
import type { CountTokens } from '@volley/core';
import { ErrorCode, loadTokenCounter, VolleyError, withSpan } from '@volley/core';
import type { ChatInput } from '../create-volley.js';
import type { ChatClient, ChatDefaults, IndexedError, TokenCost } from './shared.js';
import {
  abortedError,
  addUsage,
  chatRequest,
  createScope,
  elapsedSince,
  emptyCost,
  fillTemplate,
  invalidOption,
  now,
  PatternError,
  PatternErrorCode,
  positiveInteger,
  runBounded,
  textOf,
  toError,
} from './shared.js';
import { normaliseAnswer } from './vote.js';

/** A branch that succeeded, as aggregators see it. */
export interface MapReduceBranch {
  /** Position of the chunk in the input. */
  index: number;
  chunk: string;
  output: string;
}

/** Aggregation in code: concatenate, merge, vote, or anything else. May be async. */
export type CodeAggregator<A> = (branches: readonly MapReduceBranch[]) => A | Promise<A>;

/** Aggregation by an LLM call (or a tree of them, when the outputs do not fit one context). */
export interface PromptAggregator {
  /** The final prompt; `{input}` becomes the branch outputs, numbered `[1]`, `[2]`, ... in input order. */
  prompt: string;
  /** Prompt for intermediate groups when aggregating hierarchically. Default: `prompt`. */
  collapsePrompt?: string;
  /**
   * Largest aggregation prompt, in tokens. Above it, outputs are aggregated in groups that fit
   * (at least two per group, so each level shrinks), then the groups' results, and so on.
   * Default: no limit, one call.
   */
  maxInputTokens?: number;
  /** Model (a cheaper one, often), `max_tokens`, temperature of the aggregation calls. */
  request?: ChatDefaults;
  /** Token counter for `maxInputTokens`. Default: the runtime's BPE counter (o200k). */
  countTokens?: CountTokens;
}

/** How to split one long text into chunks. */
export interface SplitOptions {
  /** Largest chunk, in tokens. */
  chunkTokens: number;
  /** Tokens repeated at the start of the next chunk, so nothing is cut without context. Default 0. */
  overlapTokens?: number;
  /** Default: the runtime's BPE counter (o200k), loaded on first use. */
  countTokens?: CountTokens;
}

interface MapReduceCommon<A> {
  /** Branch prompt template (`{input}` becomes the chunk), or a function building the request. */
  branch: string | ((chunk: string, index: number) => ChatInput);
  /** Model, `max_tokens` and sampling of template branches. */
  request?: ChatDefaults;
  aggregate: PromptAggregator | CodeAggregator<A>;
  /**
   * Branches that must succeed for aggregation to run: a count k (of n), or `{ fraction }` of the
   * branches, rounded up. Default: all of them.
   */
  quorum?: number | { fraction: number };
  /** Branches in flight at once. Default: all (the runtime's concurrency and limits still apply). */
  concurrency?: number;
  /** Aborts every call still running; `mapReduce` rejects with `VOLLEY_ERR_ABORTED`. */
  signal?: AbortSignal;
  /** Budget of each call across its retries. */
  timeoutMs?: number;
}

/** Options of {@link mapReduce}: the input as `chunks`, or as one `text` to `split`. */
export type MapReduceOptions<A> = MapReduceCommon<A> &
  ({ chunks: readonly string[] } | { text: string; split: SplitOptions });

/** What {@link mapReduce} returns when the quorum held and the aggregation succeeded. */
export interface MapReduceResult<A> {
  /** The chunks the branches ran over (the split text, or the given chunks). */
  chunks: readonly string[];
  /** Per chunk, in input order: the branch output, or undefined where the branch failed. */
  outputs: Array<string | undefined>;
  aggregated: A;
  /** Failed branches, in input order. */
  errors: IndexedError[];
  succeeded: number;
  /** Successful branches the quorum required. */
  required: number;
  /** LLM aggregation calls made and tree levels (0 and 0 for a code aggregator). */
  aggregation: { calls: number; levels: number };
  /** Tokens of every completed call, branches and aggregation. */
  cost: TokenCost;
  wallMs: number;
}

/**
 * Runs a branch prompt over every chunk at once and aggregates the outputs, with a k-of-n quorum
 * deciding whether partial failures may proceed. Once the quorum cannot be met, the remaining
 * branches are aborted and it rejects with `VOLLEY_ERR_QUORUM_NOT_MET` (branches it cancelled are
 * listed in `errors` with `VOLLEY_ERR_ABORTED`); a failed aggregation rejects with
 * `VOLLEY_ERR_AGGREGATION_FAILED`. Both errors carry `outputs` and `errors`, so the branches that
 * succeeded are not paid for twice.
 *
 * @example
 * const result = await mapReduce(volley, {
 *   chunks: resumes,
 *   branch: 'Score this resume for a senior Python role (0-10), with one paragraph why:\n\n{input}',
 *   aggregate: { prompt: 'Rank these candidates and recommend the top 2:\n\n{input}' },
 *   quorum: { fraction: 0.9 },
 * });
 * console.log(result.aggregated, result.errors.length);
 */
export function mapReduce<A = string>(
  client: ChatClient,
  options: MapReduceOptions<A>,
): Promise<MapReduceResult<A>> {
  return withSpan(`volley.mapReduce`, { 'volley.pattern': 'mapReduce' }, () =>
    runMapReduce<A>(client, options),
  );
}

async function runMapReduce<A = string>(
  client: ChatClient,
  options: MapReduceOptions<A>,
): Promise<MapReduceResult<A>> {
  const started = now();
  const chunks =
    'chunks' in options ? [...options.chunks] : await splitByTokens(options.text, options.split);
  const total = chunks.length;
  const required = requiredBranches(options.quorum, total);
  const concurrency = positiveInteger(
    'mapReduce: concurrency',
    options.concurrency,
    Math.max(1, total),
  );
  if (typeof options.aggregate !== 'function' && options.aggregate.maxInputTokens !== undefined) {
    // Checked before any branch runs: a bad option must not cost n calls first.
    positiveInteger('mapReduce: aggregate.maxInputTokens', options.aggregate.maxInputTokens, 1);
  }
  const branchRequest = (chunk: string, index: number): ChatInput =>
    typeof options.branch === 'function'
      ? options.branch(chunk, index)
      : chatRequest(options.request, [
          { role: 'user', content: fillTemplate(options.branch, chunk) },
        ]);

  const scope = createScope(options.signal);
  const callOptions = {
    signal: scope.signal,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  };
  const cost = emptyCost();
  const outputs: Array<string | undefined> = new Array<string | undefined>(total).fill(undefined);
  const failures: Array<Error | undefined> = new Array<Error | undefined>(total).fill(undefined);
  try {
    if (scope.signal.aborted) throw abortedError('mapReduce', options.signal);
    // Once more branches failed than the quorum allows, the rest can no longer help: they are
    // aborted (in flight) or never started, instead of being paid for to no end.
    const branchScope = createScope(scope.signal);
    const allowedFailures = total - required;
    let failed = 0;
    const quorumLost = (): VolleyError =>
      new VolleyError(
        ErrorCode.ABORTED,
        `branch cancelled: more than ${allowedFailures} of ${total} branches failed, the quorum of ${required} cannot be met`,
      );
    try {
      await runBounded(
        total,
        concurrency,
        async (index) => {
          try {
            const completion = await client.chat(branchRequest(chunks[index] as string, index), {
              ...callOptions,
              signal: branchScope.signal,
            });
            addUsage(cost, completion.usage);
            outputs[index] = textOf(completion);
          } catch (error) {
            const lost =
              branchScope.signal.aborted &&
              !scope.signal.aborted &&
              (error as { code?: unknown } | undefined)?.code === ErrorCode.ABORTED;
            failures[index] = lost ? quorumLost() : toError(error);
            if (!lost && ++failed > allowedFailures) branchScope.abort(quorumLost());
          }
        },
        () => branchScope.signal.aborted,
      );
    } finally {
      branchScope.dispose();
    }
    if (scope.signal.aborted) throw abortedError('mapReduce', options.signal);

    const errors: IndexedError[] = [];
    const branches: MapReduceBranch[] = [];
    for (let index = 0; index < total; index++) {
      const output = outputs[index];
      if (output !== undefined) branches.push({ index, chunk: chunks[index] as string, output });
      else errors.push({ index, error: failures[index] ?? quorumLost() });
    }
    const succeeded = branches.length;
    if (succeeded < required) {
      throw new PatternError(
        PatternErrorCode.QUORUM_NOT_MET,
        `mapReduce: ${succeeded} of ${total} branches succeeded, the quorum is ${required}; not aggregating`,
        { required, succeeded, total, errors, outputs },
      );
    }

    const aggregation = { calls: 0, levels: 0 };
    let aggregated: A;
    try {
      aggregated =
        typeof options.aggregate === 'function'
          ? await options.aggregate(branches)
          : ((await aggregateWithPrompt(
              client,
              options.aggregate,
              branches.map((branch) => branch.output),
              callOptions,
              cost,
              aggregation,
            )) as A);
    } catch (error) {
      if (scope.signal.aborted) throw abortedError('mapReduce', options.signal);
      throw new PatternError(
        PatternErrorCode.AGGREGATION_FAILED,
        `mapReduce: aggregation failed: ${toError(error).message}`,
        { cause: error, required, succeeded, total, errors, outputs },
      );
    }
    return {
      chunks,
      outputs,
      aggregated,
      errors,
      succeeded,
      required,
      aggregation,
      cost,
      wallMs: elapsedSince(started),
    };
  } finally {
    scope.dispose();
  }
}

function requiredBranches(quorum: MapReduceCommon<unknown>['quorum'], total: number): number {
  if (quorum === undefined) return total;
  if (typeof quorum === 'number') {
    if (!Number.isInteger(quorum) || quorum < 0 || quorum > total) {
      throw invalidOption(
        `mapReduce: quorum must be an integer from 0 to the ${total} chunks, got ${String(quorum)}`,
      );
    }
    return quorum;
  }
  const { fraction } = quorum;
  if (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= 1)) {
    throw invalidOption(
      `mapReduce: quorum.fraction must be between 0 and 1, got ${String(fraction)}`,
    );
  }
  return Math.ceil(fraction * total);
}

/** Numbered outputs, as the aggregation prompt shows them. */
function numbered(items: readonly string[]): string[] {
  return items.map((item, i) => `[${i + 1}] ${item}`);
}

async function aggregateWithPrompt(
  client: ChatClient,
  aggregator: PromptAggregator,
  outputs: readonly string[],
  callOptions: { signal: AbortSignal; timeoutMs?: number },
  cost: TokenCost,
  counters: { calls: number; levels: number },
): Promise<string> {
  const call = async (
    template: string,
    items: readonly string[],
    signal = callOptions.signal,
  ): Promise<string> => {
    counters.calls++;
    const request = chatRequest(aggregator.request, [
      { role: 'user', content: fillTemplate(template, numbered(items).join('\n\n')) },
    ]);
    const completion = await client.chat(request, { ...callOptions, signal });
    addUsage(cost, completion.usage);
    return textOf(completion);
  };
  const limit = aggregator.maxInputTokens;
  if (limit === undefined) {
    counters.levels = 1;
    return call(aggregator.prompt, outputs);
  }
  const count = aggregator.countTokens ?? (await loadTokenCounter());
  const collapse = aggregator.collapsePrompt ?? aggregator.prompt;
  // Room left for outputs once the longer of the two templates is counted.
  const budget =
    limit - Math.max(count(fillTemplate(collapse, '')), count(fillTemplate(aggregator.prompt, '')));
  if (budget <= 0) {
    throw invalidOption(
      `mapReduce: aggregate.maxInputTokens (${limit}) leaves no room for outputs after the prompt`,
    );
  }
  let items: readonly string[] = outputs;
  for (;;) {
    counters.levels++;
    const groups = groupByTokens(numbered(items), budget, count);
    if (groups.length <= 1) return call(aggregator.prompt, items);
    // Groups are numbered from 1 inside each call; their results become the next level's items.
    let offset = 0;
    const ranges = groups.map((group) => {
      const range = items.slice(offset, offset + group.length);
      offset += group.length;
      return range;
    });
    // One failed group fails the aggregation: its siblings are aborted, not left running.
    const level = createScope(callOptions.signal);
    try {
      items = await Promise.all(
        ranges.map((range) =>
          call(collapse, range, level.signal).catch((error: unknown) => {
            level.abort(error);
            throw error;
          }),
        ),
      );
    } finally {
      level.dispose();
    }
  }
}

/**
 * Greedy grouping under a token budget, at least two items per group (when there are two), so a
 * level always shrinks even when single outputs are larger than half the budget.
 */
function groupByTokens(items: readonly string[], budget: number, count: CountTokens): string[][] {
  const groups: string[][] = [];
  let group: string[] = [];
  let used = 0;
  for (const item of items) {
    const tokens = count(item) + 1;
    if (group.length >= 2 && used + tokens > budget) {
      groups.push(group);
      group = [];
      used = 0;
    }
    group.push(item);
    used += tokens;
  }
  if (group.length > 0) {
    // A lone trailing item joins the previous group rather than forming a level of its own.
    if (group.length === 1 && groups.length > 0) groups[groups.length - 1]?.push(...group);
    else groups.push(group);
  }
  return groups;
}

/**
 * Splits a long text into chunks of at most `chunkTokens` tokens, each starting with the last
 * `overlapTokens` of the previous one. Cuts fall between words (a word longer than a chunk is cut
 * inside). Words are counted with their leading whitespace, as BPE tokenizers see them, and each
 * chunk is re-counted whole, so no chunk exceeds `chunkTokens`.
 *
 * @example
 * const chunks = await splitByTokens(longReport, { chunkTokens: 800, overlapTokens: 80 });
 */
export async function splitByTokens(text: string, options: SplitOptions): Promise<string[]> {
  const chunkTokens = positiveInteger('split.chunkTokens', options.chunkTokens, 1);
  const overlapTokens = options.overlapTokens ?? 0;
  if (!Number.isInteger(overlapTokens) || overlapTokens < 0 || overlapTokens >= chunkTokens) {
    throw invalidOption(
      `split.overlapTokens must be an integer from 0 to chunkTokens - 1, got ${String(overlapTokens)}`,
    );
  }
  const count = options.countTokens ?? (await loadTokenCounter());
  const pieces: string[] = [];
  const costs: number[] = [];
  for (const word of text.match(/\s*\S+/g) ?? []) {
    const tokens = count(word);
    if (tokens <= chunkTokens) {
      pieces.push(word);
      costs.push(tokens);
    } else {
      for (const part of cutWord(word, chunkTokens, count)) {
        pieces.push(part);
        costs.push(count(part));
      }
    }
  }
  const chunks: string[] = [];
  let start = 0;
  while (start < pieces.length) {
    let end = start;
    let used = 0;
    while (end < pieces.length && used + (costs[end] as number) <= chunkTokens) {
      used += costs[end] as number;
      end++;
    }
    if (end === start) end = start + 1;
    let chunk = pieces.slice(start, end).join('').trimStart();
    // Word counts add up to the whole text's count only nearly (BPE merges across punctuation
    // differ): re-count the chunk and give back words until the budget holds exactly.
    while (end - start > 1 && count(chunk) > chunkTokens) {
      end--;
      chunk = pieces.slice(start, end).join('').trimStart();
    }
    chunks.push(chunk);
    if (end >= pieces.length) break;
    // Step back over whole pieces worth at most `overlapTokens`, but always move forward.
    let next = end;
    let overlap = 0;
    while (next > start + 1 && overlap + (costs[next - 1] as number) <= overlapTokens) {
      overlap += costs[next - 1] as number;
      next--;
    }
    start = next;
  }
  return chunks;
}

/** Cuts one oversized word (a URL, base64, a long identifier) into parts of at most `max` tokens. */
function cutWord(word: string, max: number, count: CountTokens): string[] {
  const parts: string[] = [];
  let rest = word;
  while (rest.length > 0) {
    let size = Math.max(1, Math.floor((rest.length * max) / Math.max(1, count(rest))));
    while (size > 1 && count(rest.slice(0, size)) > max) size = Math.floor(size / 2);
    parts.push(rest.slice(0, size));
    rest = rest.slice(size);
  }
  return parts;
}

/** Code aggregator: the outputs joined in input order. */
export function concatOutputs(separator = '\n\n'): CodeAggregator<string> {
  return (branches) => branches.map((branch) => branch.output).join(separator);
}

/**
 * Code aggregator: the most common output after normalising (ties go to the answer seen first in
 * input order); undefined when no output survives normalisation.
 */
export function voteOutputs(
  normalise: (text: string) => string | undefined = normaliseAnswer,
): CodeAggregator<string | undefined> {
  return (branches) => {
    const counts = new Map<string, number>();
    let winner: string | undefined;
    let best = 0;
    for (const branch of branches) {
      const answer = normalise(branch.output);
      if (answer === undefined || answer === '') continue;
      const votes = (counts.get(answer) ?? 0) + 1;
      counts.set(answer, votes);
      if (votes > best) {
        best = votes;
        winner = answer;
      }
    }
    return winner;
  };
}

/**
 * Code aggregator: each output parsed as a JSON object (a ```json fence is stripped) and merged
 * deeply in input order: arrays are concatenated without repeating equal values, nested objects
 * merged, and for other values the first chunk that has one wins. An output that is not a JSON
 * object fails the aggregation, naming the chunk.
 */
export function mergeJsonOutputs(): CodeAggregator<Record<string, unknown>> {
  return (branches) => {
    const merged: Record<string, unknown> = {};
    for (const branch of branches) {
      const text = branch.output
        .trim()
        .replace(/^```(?:json)?\s*/i, '')
        .replace(/\s*```$/, '');
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        throw new Error(`output of chunk ${branch.index} is not JSON`, { cause: error });
      }
      if (!isPlainObject(value))
        throw new Error(`output of chunk ${branch.index} is not an object`);
      mergeInto(merged, value);
    }
    return merged;
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function mergeInto(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(source)) {
    // Keys come from model output: never let one reach the prototype.
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') continue;
    const current = target[key];
    if (Array.isArray(current) && Array.isArray(value)) {
      const seen = new Set(current.map((item) => JSON.stringify(item)));
      for (const item of value) {
        const id = JSON.stringify(item);
        if (!seen.has(id)) {
          seen.add(id);
          current.push(item);
        }
      }
    } else if (isPlainObject(current) && isPlainObject(value)) {
      mergeInto(current, value);
    } else if (current === undefined || current === null) {
      if (Array.isArray(value)) {
        target[key] = [];
        mergeInto(target, { [key]: value });
      } else if (isPlainObject(value)) {
        const copy: Record<string, unknown> = {};
        mergeInto(copy, value);
        target[key] = copy;
      } else {
        target[key] = value;
      }
    }
  }
}
