import { describe, expect, it } from 'vitest';
import type { TokenEstimate } from '../src/run/lines.js';
import { scaleEstimate } from '../src/run/samples/estimate.js';
import { DEFAULT_JUDGE_INSTRUCTIONS, judgeBody } from '../src/run/samples/judge.js';
import { answerText, mergeSamples, sumUsage } from '../src/run/samples/merge.js';

const chatBody = (content: unknown, usage?: Record<string, unknown>) => ({
  id: `chatcmpl-${String(content)}`,
  object: 'chat.completion',
  model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
  ...(usage === undefined ? {} : { usage }),
});

describe('answerText', () => {
  it('reads the first choice of chat and completion bodies', () => {
    expect(answerText(chatBody('Yes.'))).toBe('Yes.');
    expect(
      answerText(
        chatBody([
          { type: 'text', text: 'a' },
          { type: 'text', text: 'b' },
        ]),
      ),
    ).toBe('ab');
    expect(answerText({ choices: [{ index: 0, text: ' Paris' }] })).toBe(' Paris');
  });

  it('is empty for bodies without text', () => {
    expect(answerText(chatBody(null))).toBe('');
    expect(answerText({ choices: [] })).toBe('');
    expect(answerText({})).toBe('');
  });
});

describe('sumUsage', () => {
  it('adds every number, nested details included', () => {
    expect(
      sumUsage([
        {
          prompt_tokens: 3,
          completion_tokens: 1,
          total_tokens: 4,
          completion_tokens_details: { reasoning_tokens: 2 },
        },
        undefined,
        {
          prompt_tokens: 3,
          completion_tokens: 5,
          total_tokens: 8,
          completion_tokens_details: { reasoning_tokens: 1, audio_tokens: 0 },
        },
      ]),
    ).toEqual({
      prompt_tokens: 6,
      completion_tokens: 6,
      total_tokens: 12,
      completion_tokens_details: { reasoning_tokens: 3, audio_tokens: 0 },
    });
  });

  it('is undefined when no sample reported usage, and never touches a prototype', () => {
    expect(sumUsage([undefined, null])).toBeUndefined();
    const sum = sumUsage([JSON.parse('{"__proto__":{"polluted":1},"prompt_tokens":1}')]);
    expect(sum).toEqual({ prompt_tokens: 1 });
    expect(Object.getPrototypeOf(sum)).toBe(Object.prototype);
  });
});

describe('mergeSamples', () => {
  it("keeps the first body's fields, re-indexes every choice and sums usage", () => {
    const usage = { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 };
    const merged = mergeSamples([
      chatBody('a', usage),
      {
        ...chatBody('b', usage),
        choices: [
          { index: 0, message: { role: 'assistant', content: 'b0' } },
          { index: 1, message: { role: 'assistant', content: 'b1' } },
        ],
      },
      chatBody('c', usage),
    ]);
    expect(merged.id).toBe('chatcmpl-a');
    expect(merged.choices).toEqual([
      { index: 0, message: { role: 'assistant', content: 'a' }, finish_reason: 'stop' },
      { index: 1, message: { role: 'assistant', content: 'b0' } },
      { index: 2, message: { role: 'assistant', content: 'b1' } },
      { index: 3, message: { role: 'assistant', content: 'c' }, finish_reason: 'stop' },
    ]);
    expect(merged.usage).toEqual({ prompt_tokens: 15, completion_tokens: 6, total_tokens: 21 });
  });

  it('leaves usage out when no sample had any', () => {
    expect(mergeSamples([chatBody('a'), chatBody('b')])).not.toHaveProperty('usage');
  });
});

describe('judgeBody', () => {
  it('asks a chat judge with the numbered answers and the default instructions', () => {
    const body = judgeBody(
      '/v1/chat/completions',
      { model: 'line-model', messages: [{ role: 'user', content: 'Capital of France?' }] },
      ['Paris', 'Lyon'],
      { model: null, instructions: null },
    );
    expect(body).toMatchObject({ model: 'line-model', temperature: 0, max_tokens: 16 });
    const [system, user] = body.messages as Array<{ role: string; content: string }>;
    expect(system).toEqual({ role: 'system', content: DEFAULT_JUDGE_INSTRUCTIONS });
    expect(user?.content).toBe(
      'Query:\nCapital of France?\n\n--- Response 1 ---\nParis\n\n--- Response 2 ---\nLyon\n\n' +
        'Reply with ONLY the number (1 to 2) of the best response.',
    );
  });

  it('asks a completion judge for a completion line, with the chosen model and instructions', () => {
    const body = judgeBody('/v1/completions', { model: 'base', prompt: 'Once upon' }, ['a', 'b'], {
      model: 'judge-1',
      instructions: 'Pick the funniest.',
    });
    expect(body.model).toBe('judge-1');
    expect(body).not.toHaveProperty('messages');
    expect(body.prompt).toMatch(
      /^Pick the funniest\.\n\nQuery:\nOnce upon\n\n--- Response 1 ---\na/,
    );
  });
});

describe('scaleEstimate', () => {
  const perLine: TokenEstimate = {
    prompt: 30,
    maxOutput: 200,
    byModel: new Map([
      ['a', { lines: 2, prompt: 20, maxOutput: 100 }],
      ['b', { lines: 1, prompt: 10, maxOutput: 100 }],
    ]),
  };

  it('counts every sample', () => {
    const scaled = scaleEstimate(perLine, {
      samples: 3,
      select: 'vote',
      judgeModel: null,
      judgeInstructions: null,
    });
    expect(scaled.prompt).toBe(90);
    expect(scaled.maxOutput).toBe(600);
    expect(scaled.byModel.get('a')).toEqual({ lines: 2, prompt: 60, maxOutput: 300 });
  });

  it("adds the judge's query, answers and framing under the judge's model", () => {
    const scaled = scaleEstimate(perLine, {
      samples: 2,
      select: 'judge',
      judgeModel: 'j',
      judgeInstructions: null,
    });
    // Samples: 2 × (30, 200). Judge: the queries, both answers of every line, framing per line.
    const framing = 3 * (60 + 2 * 8);
    expect(scaled.byModel.get('j')).toEqual({
      lines: 0,
      prompt: 30 + 2 * 200 + framing,
      maxOutput: 3 * 16,
    });
    expect(scaled.prompt).toBe(60 + 30 + 400 + framing);
    expect(scaled.maxOutput).toBe(400 + 48);
  });
});
