/**
 * bestOfN against a real simulator, in both modes: diverse candidates, a judge on a cheaper
 * model, the judge-answer parser, fallbacks when the judge answers nonsense or fails, scoring in
 * code, and the cost in tokens.
 */
import { simulatedChatContent } from '@volley/sim';
import { describe, expect, it } from 'vitest';
import { bestOfN, ErrorCode, PatternErrorCode, parseJudgeChoice } from 'volley';
import { codeOf, lastMessage, MODES, parity, rig } from './helpers.js';

const modes = parity();

const REQUEST = {
  messages: [{ role: 'user' as const, content: 'Write a tagline for a bicycle shop.' }],
  max_tokens: 12,
};
const isJudge = (body: unknown): boolean => lastMessage(body).includes('of the best response');

/** The judge answers whatever `verdict` says; candidates get generated content. */
function judgeScript(verdict: string) {
  return ({ body }: { body: unknown }): string | undefined => (isJudge(body) ? verdict : undefined);
}

describe.each(MODES)('bestOfN (%s mode)', (mode) => {
  it('generates diverse candidates at once and lets a cheaper judge pick', async () => {
    await using r = await rig(mode, { script: judgeScript('Response 2') });
    const result = await bestOfN(r.volley, {
      request: REQUEST,
      n: 3,
      judge: { model: 'judge-mini' },
    });
    const temperatures = [0.4, 0.7, 1];
    expect(result.candidates.map((c) => c.temperature)).toEqual(temperatures);
    for (const [i, candidate] of result.candidates.entries()) {
      expect(candidate.ok).toBe(true);
      if (candidate.ok) {
        const body = { model: 'volley-sim-1', ...REQUEST, temperature: temperatures[i] };
        expect(candidate.text).toBe(simulatedChatContent(body).content);
      }
    }
    expect(result.verdict).toEqual({ method: 'judge', parsed: true, raw: 'Response 2', choice: 1 });
    expect(result.winner.index).toBe(1);
    expect(result.winner).toBe(result.candidates[1]);

    const log = r.log();
    const judgeCalls = log.filter((e) => isJudge(e.body));
    expect(judgeCalls).toHaveLength(1);
    const judgeBody = judgeCalls[0]?.body as { model: string; temperature: number };
    expect(judgeBody.model).toBe('judge-mini');
    expect(judgeBody.temperature).toBe(0);
    const judgePrompt = lastMessage(judgeBody);
    for (const candidate of result.candidates) {
      if (candidate.ok) expect(judgePrompt).toContain(candidate.text);
    }
    // The cost is what the server counted, candidates and judge apart.
    expect(result.cost.candidates.calls).toBe(3);
    expect(result.cost.judge.calls).toBe(1);
    expect(result.cost.total.totalTokens).toBe(
      result.cost.candidates.totalTokens + result.cost.judge.totalTokens,
    );
    const completionTokens = result.candidates.reduce(
      (sum, c) => sum + (c.ok ? (c.completion.usage?.completion_tokens ?? 0) : 0),
      0,
    );
    expect(result.cost.candidates.completionTokens).toBe(completionTokens);
    modes.record(mode, 'judge', [result.winner.text, result.verdict]);
  });

  it('falls back to the first candidate, clearly marked, when the judge answers nonsense', async () => {
    await using r = await rig(mode, { script: judgeScript('They are all lovely!') });
    const result = await bestOfN(r.volley, { request: REQUEST, n: 3 });
    expect(result.verdict).toEqual({
      method: 'judge',
      parsed: false,
      reason: 'unparseable',
      raw: 'They are all lovely!',
      choice: 0,
    });
    expect(result.winner.index).toBe(0);
    modes.record(mode, 'nonsense', result.verdict);
  });

  it('falls back when the judge call fails, keeping its error', async () => {
    await using r = await rig(mode, {
      faultFor: ({ body }) => (isJudge(body) ? 'status-400-context-length' : undefined),
    });
    const result = await bestOfN(r.volley, { request: REQUEST, n: 2 });
    expect(result.verdict.method).toBe('judge');
    if (result.verdict.method === 'judge' && !result.verdict.parsed) {
      expect(result.verdict.reason).toBe('judge-failed');
      expect(codeOf(result.verdict.error)).toBe(ErrorCode.HTTP);
    } else {
      expect.unreachable('the verdict should be a fallback');
    }
    expect(result.winner.index).toBe(0);
    modes.record(mode, 'judge failed', result.winner.text);
  });

  it('judges only the candidates that succeeded and maps the choice back', async () => {
    await using r = await rig(mode, {
      script: judgeScript('2'),
      faultFor: ({ body }) =>
        !isJudge(body) && (body as { temperature?: number }).temperature === 0.4
          ? 'status-400-context-length'
          : undefined,
    });
    const result = await bestOfN(r.volley, { request: REQUEST, n: 3 });
    expect(result.candidates.map((c) => c.ok)).toEqual([false, true, true]);
    const judgePrompt = lastMessage(r.log().find((e) => isJudge(e.body))?.body);
    expect(judgePrompt).toContain('--- Response 2 ---');
    expect(judgePrompt).not.toContain('--- Response 3 ---');
    // "2" is the second response the judge saw: candidate 2.
    expect(result.winner.index).toBe(2);
    modes.record(mode, 'partial', [result.winner.text, result.candidates.map((c) => c.ok)]);
  });

  it('spreads candidates over several models and scores them in code', async () => {
    await using r = await rig(mode, {
      script: ({ body }) =>
        (body as { model: string }).model === 'model-b' ? 'a much longer tagline here' : 'short',
    });
    const result = await bestOfN(r.volley, {
      request: REQUEST,
      models: ['model-a', 'model-b'],
      temperatures: [0.2],
      score: (candidate) => candidate.text.length,
    });
    expect(result.candidates.map((c) => [c.model, c.temperature])).toEqual([
      ['model-a', 0.2],
      ['model-b', 0.2],
    ]);
    expect(result.verdict).toEqual({ method: 'score', scores: [5, 26], choice: 1 });
    expect(result.winner.model).toBe('model-b');
    expect(r.log().some((e) => isJudge(e.body))).toBe(false);
    expect(result.cost.judge.calls).toBe(0);
    modes.record(mode, 'score', result.verdict);
  });

  it('skips the judge when one candidate is left, and rejects when none is', async () => {
    await using r = await rig(mode, {
      faultFor: ({ body }) =>
        (body as { temperature?: number }).temperature !== 1
          ? 'status-400-context-length'
          : undefined,
    });
    const single = await bestOfN(r.volley, { request: REQUEST, n: 3 });
    expect(single.verdict).toEqual({ method: 'single', choice: 2 });
    const none = await bestOfN(r.volley, { request: REQUEST, temperatures: [0.4, 0.7] }).catch(
      (e: unknown) => e,
    );
    expect(codeOf(none)).toBe(PatternErrorCode.QUORUM_NOT_MET);
    expect((none as { errors: unknown[] }).errors).toHaveLength(2);
    modes.record(mode, 'single', single.winner.text);
  });
});

describe('both modes', () => {
  it('give the same results', () => {
    modes.check();
  });
});

describe('parseJudgeChoice', () => {
  it.each([
    ['2', 2],
    ['Response 2', 2],
    ['#2', 2],
    ['**2**', 2],
    ['Response #3.', 3],
    ['the second', 2],
    ['Second.', 2],
    ['The second one is strongest.', 2],
    ['two', 2],
    ['Candidate 1', 1],
    ['(2)', 2],
    ['[3]', 3],
    ['2nd', 2],
    ['Response 2 is the best because it covers all three points.', 2],
    ['I choose response 3.', 3],
    ['The best response is #1.', 1],
    ['Winner: 3', 3],
    ["I'd pick the third.", 3],
    ['1 is good but 3 is better.', 3],
    ['2. It is more complete than 1.', 2],
    ['After comparing them, response 3 wins.', 3],
  ] as const)('reads %j as %i', (text, expected) => {
    expect(parseJudgeChoice(text, 3)).toBe(expected);
  });

  it.each([
    'banana',
    '',
    'I cannot decide.',
    '5',
    '0',
    'Response 4',
    'Response 1 and Response 2 are both good.',
    'No one response is best.',
    'The best is response 10.',
  ])('refuses %j', (text) => {
    expect(parseJudgeChoice(text, 3)).toBeUndefined();
  });
});
