/**
 * vote against a real simulator, in both modes: early quorum aborts the runs still generating at
 * the server, normalisation, majority / threshold / plurality rules, and adaptive concurrency.
 */
import { describe, expect, it } from 'vitest';
import type { ChatInput } from 'volley';
import { ErrorCode, normaliseAnswer, vote } from 'volley';
import { codeOf, lastMessage, limiterIdle, MODES, parity, rig, waitFor, words } from './helpers.js';

const modes = parity();

/** Run i asks with seed i, so a script can answer each run differently. */
const ask =
  (question: string) =>
  (index: number): ChatInput => ({
    messages: [{ role: 'user', content: question }],
    seed: index,
  });

const seedOf = (body: unknown): number => (body as { seed?: number }).seed ?? 0;
const firstWord = (text: string): string | undefined => normaliseAnswer(text.split(/\s+/)[0] ?? '');

describe.each(MODES)('vote (%s mode)', (mode) => {
  it('stops at a majority and aborts the runs still generating at the server', async () => {
    // At 20 tokens/s, runs 0-2 answer within 150 ms; runs 3 and 4 would take 2 and 3 seconds.
    const lengths = [0, 1, 2, 40, 60];
    await using r = await rig(mode, {
      latency: { tokensPerSecond: 20 },
      script: ({ body }) => words('positive', lengths[seedOf(body)] ?? 0),
    });
    const started = Date.now();
    const result = await vote(r.volley, {
      request: ask('Sentiment of "great product"? One word.'),
      n: 5,
      normalise: firstWord,
    });
    expect(Date.now() - started).toBeLessThan(1500);
    expect(result.winner).toBe('positive');
    expect(result.decided).toBe(true);
    expect(result.needed).toBe(3);
    expect(result.stoppedEarly).toBe(true);
    expect(result.tally).toEqual([{ answer: 'positive', votes: 3 }]);
    expect(result.votes.map((v) => v.status)).toEqual([
      'voted',
      'voted',
      'voted',
      'cancelled',
      'cancelled',
    ]);
    expect(result.cost.calls).toBe(3);
    // The server saw all 5 start; only 3 completions finished, the other 2 were aborted early.
    const log = await waitFor(() => {
      const entries = r.log();
      return entries.length === 5 && entries.every((e) => e.finishedAt !== undefined) && entries;
    });
    const bySeed = [...log].sort((a, b) => seedOf(a.body) - seedOf(b.body));
    expect(bySeed.map((e) => e.aborted)).toEqual([false, false, false, true, true]);
    for (const entry of bySeed.slice(3)) {
      expect((entry.finishedAt ?? 0) - entry.receivedAt).toBeLessThan(1500);
    }
    await limiterIdle(r.volley);
    modes.record(mode, 'early quorum', [
      result.winner,
      result.tally,
      result.votes.map((v) => v.status),
    ]);
  });

  it('normalises answers by default and counts failures as no vote', async () => {
    const answers = ['Positive.', '**POSITIVE**', 'negative', '  positive ', 'Answer: Negative'];
    await using r = await rig(mode, {
      script: ({ body }) => answers[seedOf(body)],
      faultFor: ({ body }) =>
        lastMessage(body).startsWith('Sentiment') && seedOf(body) === 4
          ? 'status-400-context-length'
          : undefined,
    });
    const result = await vote(r.volley, {
      request: ask('Sentiment?'),
      n: 5,
      concurrency: 1, // one at a time, so the order of votes (and the early stop) is fixed
    });
    expect(result.winner).toBe('positive');
    expect(result.tally).toEqual([
      { answer: 'positive', votes: 3 },
      { answer: 'negative', votes: 1 },
    ]);
    expect(result.votes.map((v) => v.status)).toEqual([
      'voted',
      'voted',
      'voted',
      'voted',
      'skipped',
    ]);
    expect(r.log()).toHaveLength(4);
    modes.record(mode, 'normalised', [result.winner, result.tally]);
  });

  it('reports no winner when no answer can reach the majority', async () => {
    const answers = ['a', 'b', 'c', 'a', 'b'];
    await using r = await rig(mode, { script: ({ body }) => answers[seedOf(body)] });
    const result = await vote(r.volley, { request: ask('Pick'), n: 5, concurrency: 1 });
    expect(result.winner).toBeUndefined();
    expect(result.decided).toBe(false);
    expect(result.tally).toEqual([
      { answer: 'a', votes: 2 },
      { answer: 'b', votes: 2 },
      { answer: 'c', votes: 1 },
    ]);
    // Plurality has no winner on a tie either.
    const plurality = await vote(r.volley, { request: ask('Pick'), n: 5, threshold: 'plurality' });
    expect(plurality.decided).toBe(false);
    modes.record(mode, 'no majority', [result.tally, plurality.tally]);
  });

  it('a threshold flags as soon as enough runs agree', async () => {
    const answers = ['unsafe', 'safe', 'unsafe', 'safe', 'safe'];
    await using r = await rig(mode, { script: ({ body }) => answers[seedOf(body)] });
    const result = await vote(r.volley, {
      request: ask('Safe or unsafe?'),
      n: 5,
      threshold: 2,
      concurrency: 1,
    });
    expect(result.winner).toBe('unsafe');
    expect(result.needed).toBe(2);
    expect(result.votes.filter((v) => v.status === 'skipped')).toHaveLength(2);
    modes.record(mode, 'threshold', [result.winner, result.tally]);
  });

  it('with concurrency at the quorum, agreeing runs cost no more than the quorum', async () => {
    await using r = await rig(mode, { script: () => 'yes' });
    const result = await vote(r.volley, { request: ask('Is water wet?'), n: 7, concurrency: 4 });
    expect(result.winner).toBe('yes');
    expect(result.tally).toEqual([{ answer: 'yes', votes: 4 }]);
    expect(r.log()).toHaveLength(4);
    expect(result.votes.filter((v) => v.status === 'skipped')).toHaveLength(3);
    modes.record(
      mode,
      'adaptive',
      result.votes.map((v) => v.status),
    );
  });

  it('plurality stops once the leader cannot be caught', async () => {
    const answers = ['x', 'x', 'x', 'y', 'z'];
    await using r = await rig(mode, { script: ({ body }) => answers[seedOf(body)] });
    const result = await vote(r.volley, {
      request: ask('Pick one'),
      n: 5,
      threshold: 'plurality',
      concurrency: 1,
    });
    // After x, x, x with two runs left, y or z can reach 2 at most.
    expect(result.winner).toBe('x');
    expect(result.votes.map((v) => v.status)).toEqual([
      'voted',
      'voted',
      'voted',
      'skipped',
      'skipped',
    ]);
    modes.record(mode, 'plurality', result.winner);
  });

  it('a caller abort rejects with VOLLEY_ERR_ABORTED and cancels the runs at the server', async () => {
    await using r = await rig(mode, {
      latency: { tokensPerSecond: 20 },
      script: () => words('slow', 100),
    });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const error = await vote(r.volley, {
      request: ask('Slow'),
      n: 3,
      signal: controller.signal,
    }).catch((e: unknown) => e);
    expect(codeOf(error)).toBe(ErrorCode.ABORTED);
    const log = await waitFor(() => {
      const entries = r.log();
      return entries.length === 3 && entries.every((e) => e.finishedAt !== undefined) && entries;
    });
    expect(log.every((e) => e.aborted)).toBe(true);
    modes.record(mode, 'abort', codeOf(error));
  });
});

describe('both modes', () => {
  it('give the same results', () => {
    modes.check();
  });
});

describe('vote options', () => {
  const never = { chat: () => Promise.reject(new Error('unreachable')) };

  it('rejects a threshold outside 1..n', () => {
    expect(() => vote(never, { request: ask('x'), n: 3, threshold: 4 })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_OPTIONS }),
    );
  });

  it('a throwing normaliser rejects the vote with its error instead of leaving it unhandled', async () => {
    const client = {
      chat: () =>
        Promise.resolve({
          id: 'x',
          object: 'chat.completion' as const,
          created: 0,
          model: 'm',
          choices: [
            {
              index: 0,
              message: { role: 'assistant' as const, content: 'yes' },
              finish_reason: 'stop' as const,
            },
          ],
        }),
    };
    const bug = new Error('normaliser bug');
    await expect(
      vote(client, {
        request: ask('x'),
        n: 3,
        normalise: () => {
          throw bug;
        },
      }),
    ).rejects.toBe(bug);
  });

  it('normaliseAnswer folds case, quotes, markdown, prefixes and punctuation', () => {
    expect(normaliseAnswer('**Positive.**')).toBe('positive');
    expect(normaliseAnswer('"Yes!"')).toBe('yes');
    expect(normaliseAnswer('Answer: 42.')).toBe('42');
    expect(normaliseAnswer('-3')).toBe('-3');
    expect(normaliseAnswer('(B)')).toBe('b');
    expect(normaliseAnswer('   ')).toBeUndefined();
  });
});
