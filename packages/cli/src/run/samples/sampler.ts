/**
 * Sampling one line: its request sent N times at once through the runtime (the same limiter,
 * retries and cancellation as any line), and one record made of the samples.
 *
 *   all    every sample's choices in one body (like OpenAI's `n`), usage summed
 *   vote   the `vote` pattern over the first choice's text, stopping (and aborting the samples
 *          still running) once the winner cannot change; the record is a sample that voted for it
 *   judge  every sample, then one judge call that picks one (`parseJudgeChoice`)
 *
 * Failures: a failed sample is left out (and counted in the record); when every sample failed,
 * the line fails with the first sample's error. A sample stopped by the run itself (an interrupt,
 * every endpoint down) fails the whole line with that error, so the line stays pending for
 * `--resume` rather than being written from part of its samples.
 */

import type { ChatCompletion, Usage } from '@volley/core';
import { scrubSecrets } from '@volley/core';
import type { CallResult, ChatClient, ChatInput, Volley, VoteResult } from 'volley';
import { isVolleyError, parseJudgeChoice, vote } from 'volley';
import { leavesLinePending } from '../../batch/failure.js';
import type { CliErrorCode } from '../../codes.js';
import type { BatchRequest } from '../../jsonl/batch-line.js';
import { judgeBody, judgeModel } from './judge.js';
import type { ResponseBody } from './merge.js';
import { answerText, mergeSamples, sumUsage } from './merge.js';
import type { SamplingSettings, SelectMode } from './settings.js';

/** One sample's outcome, by its 0-based index. */
type Sample =
  | { index: number; ok: true; result: CallResult; body: ResponseBody }
  | { index: number; ok: false; error: Error };
type SampleSuccess = Extract<Sample, { ok: true }>;

/** A completed call of a line, for the cost estimate (the judge may use another model). */
export interface Spend {
  model: string;
  usage: Usage | undefined;
}

/** What a record's `response` holds. */
export interface RecordResponse {
  status: number;
  requestId: string;
  bodyText: string;
}

/** How the judge's choice was made (`volley.verdict` of a `--select judge` record). */
export type JudgeVerdict =
  /** The judge named a response; `raw` is its answer. */
  | { method: 'judge'; parsed: true; raw: string }
  /** The judge's answer named none, or its call failed: the first successful sample was kept. */
  | {
      method: 'judge';
      parsed: false;
      reason: 'unparseable' | 'judge-failed';
      raw?: string;
      error?: { code: string; message: string };
    }
  /** Only one sample succeeded: nothing to judge, no judge call. */
  | { method: 'single' };

/** What the `volley` field of every sampled line's record holds. */
export interface SampleMetaBase<S extends SelectMode = SelectMode> {
  samples: number;
  select: S;
  /** Samples that failed (and are left out), with their errors. */
  failed: number;
  errors?: Array<{ sample: number; code: string; message: string }>;
  /** Tokens of every completed call of the line: the samples and the judge. */
  usage: Record<string, unknown> | null;
}

/** The `volley` field of a sampled line's record. */
export type SampleMeta = SampleMetaBase &
  (
    | { select: 'all' }
    | {
        select: 'vote';
        /** The sample whose response is written. */
        selected: number;
        /** The winning normalised answer; null when every sample answered nothing. */
        winner: string | null;
        /** False when the winner only led by sample order (a tie) or nobody voted. */
        decided: boolean;
        /** Votes per normalised answer, most first. */
        votes: Record<string, number>;
        /** Samples the early stop aborted (or never started): their answers could not change the winner. */
        cancelled: number;
      }
    | { select: 'judge'; selected: number; model: string; verdict: JudgeVerdict }
  );

/** A sampled line, ready to be written. */
export interface SampledLine {
  response: RecordResponse;
  /** The record's `volley` field. */
  volley: SampleMeta;
  spend: Spend[];
  /** From the first sample sent to the decision. */
  latencyMs: number;
}

/**
 * Samples lines for one run. `calls` counts every request it sent (samples, early-stopped ones
 * included, and judge calls), for the summary.
 *
 * @example
 * const sampler = new LineSampler(volley, { samples: 5, select: 'vote', judgeModel: null, judgeInstructions: null });
 * const { response, volley } = await sampler.sample(request);
 */
export class LineSampler {
  readonly #volley: Volley;
  readonly #settings: SamplingSettings;
  readonly #runStopping: () => boolean;
  #calls = 0;

  /**
   * `runStopping` tells whether the run is stopping, so that an aborted sample leaves its line
   * pending by the same rule as an unsampled line (batch/failure.ts). Without it (a sampler on
   * its own) an abort is taken as the run's.
   */
  constructor(volley: Volley, settings: SamplingSettings, runStopping: () => boolean = () => true) {
    this.#volley = volley;
    this.#settings = settings;
    this.#runStopping = runStopping;
  }

  /** Requests sent so far. */
  get calls(): number {
    return this.#calls;
  }

  /** Samples a line and decides its record; rejects with the line's error (see the module doc). */
  async sample(request: BatchRequest): Promise<SampledLine> {
    const started = performance.now();
    const done = (line: Omit<SampledLine, 'latencyMs'>): SampledLine => ({
      ...line,
      latencyMs: performance.now() - started,
    });
    switch (this.#settings.select) {
      case 'all':
        return done(this.#all(request, await this.#drawAll(request)));
      case 'vote':
        return done(await this.#vote(request));
      case 'judge':
        return done(await this.#judge(request, await this.#drawAll(request)));
    }
  }

  #send(
    request: BatchRequest,
    body: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<CallResult> {
    this.#calls++;
    return this.#volley.request({
      path: request.url,
      body,
      raw: true,
      ...(signal === undefined ? {} : { signal }),
    });
  }

  /** Every sample at once, each settled on its own. Each gets its own copy of the body. */
  #drawAll(request: BatchRequest): Promise<Sample[]> {
    return Promise.all(
      Array.from({ length: this.#settings.samples }, (_, index) =>
        this.#send(request, { ...request.body }).then(
          (result): Sample => ({ index, ok: true, result, body: bodyOf(result) }),
          (error: unknown): Sample => ({ index, ok: false, error: toError(error) }),
        ),
      ),
    );
  }

  #all(request: BatchRequest, samples: readonly Sample[]): Omit<SampledLine, 'latencyMs'> {
    const successes = settle(samples, this.#runStopping());
    const first = successes[0] as SampleSuccess;
    const merged = mergeSamples(successes.map((sample) => sample.body));
    return {
      response: { ...responseOf(first), bodyText: JSON.stringify(merged) },
      volley: this.#base('all', samples, successes),
      spend: successes.map((sample) => spendOf(request, sample.result)),
    };
  }

  async #vote(request: BatchRequest): Promise<Omit<SampledLine, 'latencyMs'>> {
    // `vote` drives the samples (start, count, early stop, abort) through this client; each run
    // gets its own copy of the line's body, which is how the client knows which sample it is.
    const indexOf = new WeakMap<object, number>();
    const samples: Sample[] = [];
    const client: ChatClient = {
      chat: async (input, options) => {
        const index = indexOf.get(input) as number;
        try {
          const result = await this.#send(request, input, options?.signal);
          const sample: SampleSuccess = { index, ok: true, result, body: bodyOf(result) };
          samples[index] = sample;
          return chatView(sample.body);
        } catch (error) {
          samples[index] = { index, ok: false, error: toError(error) };
          throw error;
        }
      },
    };
    const outcome = await vote(client, {
      request: (index) => {
        const body = { ...request.body } as unknown as ChatInput;
        indexOf.set(body, index);
        return body;
      },
      n: this.#settings.samples,
      // Plurality: the most common answer wins and the vote stops as soon as no other answer
      // can catch up; a tie is broken below by sample order.
      threshold: 'plurality',
    });
    // Samples the early stop aborted are no part of the outcome.
    const counted = outcome.votes.flatMap((record) => {
      const sample = samples[record.index];
      return record.status === 'cancelled' || record.status === 'skipped' || sample === undefined
        ? []
        : [sample];
    });
    const successes = settle(counted, this.#runStopping());
    const { winner, selected } = pickVoted(outcome, successes);
    return {
      response: responseOf(selected),
      volley: {
        ...this.#base('vote', counted, successes),
        selected: selected.index,
        winner: winner ?? null,
        decided: outcome.decided,
        votes: Object.fromEntries(outcome.tally.map(({ answer, votes }) => [answer, votes])),
        cancelled: this.#settings.samples - counted.length,
      },
      spend: successes.map((sample) => spendOf(request, sample.result)),
    };
  }

  async #judge(
    request: BatchRequest,
    samples: readonly Sample[],
  ): Promise<Omit<SampledLine, 'latencyMs'>> {
    const successes = settle(samples, this.#runStopping());
    const spend = successes.map((sample) => spendOf(request, sample.result));
    const judge = {
      model: this.#settings.judgeModel,
      instructions: this.#settings.judgeInstructions,
    };
    const model = judgeModel(judge, request.body);
    // Unreadable answers and failed judge calls keep the first sample, as bestOfN does.
    let selected = successes[0] as SampleSuccess;
    let verdict: JudgeVerdict;
    let judgeUsage: Usage | undefined;
    if (successes.length === 1) {
      verdict = { method: 'single' };
    } else {
      const texts = successes.map((sample) => answerText(sample.body));
      try {
        const result = await this.#send(
          request,
          judgeBody(request.url, request.body, texts, judge),
        );
        judgeUsage = result.usage;
        spend.push({ model, usage: result.usage });
        const raw = answerText(bodyOf(result));
        const choice = parseJudgeChoice(raw, successes.length);
        if (choice === undefined) {
          verdict = { method: 'judge', parsed: false, reason: 'unparseable', raw };
        } else {
          selected = successes[choice - 1] as SampleSuccess;
          verdict = { method: 'judge', parsed: true, raw };
        }
      } catch (error) {
        if (leavesLinePending(error, this.#runStopping())) throw error;
        verdict = {
          method: 'judge',
          parsed: false,
          reason: 'judge-failed',
          error: describeError(toError(error)),
        };
      }
    }
    const base = this.#base('judge', samples, successes);
    return {
      response: responseOf(selected),
      volley: {
        ...base,
        usage: sumUsage([base.usage ?? undefined, judgeUsage]) ?? null,
        selected: selected.index,
        model,
        verdict,
      },
      spend,
    };
  }

  /** The fields every mode's `volley` record field has. */
  #base<S extends SelectMode>(
    select: S,
    samples: readonly Sample[],
    successes: readonly SampleSuccess[],
  ): SampleMetaBase<S> {
    const errors = samples.flatMap((sample) =>
      sample.ok ? [] : [{ sample: sample.index, ...describeError(sample.error) }],
    );
    return {
      samples: this.#settings.samples,
      select,
      failed: errors.length,
      ...(errors.length === 0 ? {} : { errors }),
      usage: sumUsage(successes.map((sample) => sample.result.usage)) ?? null,
    };
  }
}

/**
 * The successful samples, in sample order. Throws what fails the whole line: a sample stopped
 * by the run (the line stays pending), or, when every sample failed, the first one's error.
 */
function settle(samples: readonly Sample[], runStopping: boolean): SampleSuccess[] {
  const failures = samples.flatMap((sample) => (sample.ok ? [] : [sample.error]));
  // A failure that leaves the line pending fails every sample of it (batch/failure.ts).
  const stop = failures.find((error) => leavesLinePending(error, runStopping));
  if (stop !== undefined) throw stop;
  const successes = samples.filter((sample): sample is SampleSuccess => sample.ok);
  if (successes.length === 0) {
    throw failures[0] ?? new Error('no sample was sent');
  }
  return [...successes].sort((a, b) => a.index - b.index);
}

/**
 * The vote's winner and the sample written for it: the earliest sample that gave the winning
 * answer. A tie (no strict winner) goes to the answer the earliest sample gave, as the tally
 * orders ties; when nobody voted (every answer empty), the first successful sample is written.
 */
function pickVoted(
  outcome: VoteResult,
  successes: readonly SampleSuccess[],
): { winner: string | undefined; selected: SampleSuccess } {
  const winner = outcome.winner ?? outcome.tally[0]?.answer;
  const index = outcome.votes.find(
    (record) => record.status === 'voted' && record.answer === winner,
  )?.index;
  const selected =
    successes.find((sample) => sample.index === index) ?? (successes[0] as SampleSuccess);
  return { winner, selected };
}

/** What `vote` reads of a sample: its first choice's text and its usage. */
function chatView(body: ResponseBody): ChatCompletion {
  return {
    id: typeof body.id === 'string' ? body.id : '',
    object: 'chat.completion',
    created: typeof body.created === 'number' ? body.created : 0,
    model: typeof body.model === 'string' ? body.model : '',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: answerText(body) },
        finish_reason: 'stop',
      },
    ],
    ...(body.usage === undefined ? {} : { usage: body.usage as Usage }),
  };
}

function bodyOf(result: CallResult): ResponseBody {
  const body: unknown = result.bodyText === undefined ? result.body : JSON.parse(result.bodyText);
  return typeof body === 'object' && body !== null ? (body as ResponseBody) : {};
}

function responseOf(sample: SampleSuccess): RecordResponse {
  const { result } = sample;
  return {
    status: result.status,
    requestId: result.requestId,
    bodyText: result.bodyText ?? JSON.stringify(result.body ?? null),
  };
}

function spendOf(request: BatchRequest, result: CallResult): Spend {
  const model = typeof request.body.model === 'string' ? request.body.model : '';
  return { model, usage: result.usage };
}

function describeError(error: Error): { code: string; message: string } {
  return {
    code: isVolleyError(error) ? error.code : ('VOLLEY_ERR_INTERNAL' satisfies CliErrorCode),
    message: scrubSecrets(error.message),
  };
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
