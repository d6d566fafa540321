import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createSimulator,
  estimatePromptTokens,
  type Simulator,
  simulatedCompletionText,
} from '../src/index.js';
import { send, sseData } from './helpers.js';

interface CompletionChunk {
  object: string;
  choices: { index: number; text: string; finish_reason: string | null }[];
  usage?: { total_tokens: number };
}

describe('completions', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await createSimulator();
  });
  afterAll(() => sim.close());

  it('answers a string prompt with simulatedCompletionText', async () => {
    const body = { model: 'volley-sim-1', prompt: 'Once upon a time' };
    const json = JSON.parse((await send(sim.url, '/completions', { body })).body);
    const expected = simulatedCompletionText(body);
    expect(json.object).toBe('text_completion');
    expect(json.choices).toEqual([
      { text: expected.content, index: 0, logprobs: null, finish_reason: 'stop' },
    ]);
    expect(json.usage).toEqual({
      prompt_tokens: estimatePromptTokens(body),
      completion_tokens: expected.completionTokens,
      total_tokens: estimatePromptTokens(body) + expected.completionTokens,
    });
  });

  it('answers array prompts prompt-major, each independent of the others', async () => {
    const body = { model: 'volley-sim-1', prompt: ['alpha', 'beta'], n: 2, max_tokens: 6 };
    const json = JSON.parse((await send(sim.url, '/completions', { body })).body);
    expect(json.choices.map((c: { text: string }) => c.text)).toEqual(
      [0, 1, 2, 3].map((i) => simulatedCompletionText(body, i).content),
    );
    // The answer to 'beta' is the same whether or not 'alpha' shares the batch.
    expect(simulatedCompletionText(body, 2)).toEqual(
      simulatedCompletionText({ ...body, prompt: ['beta'] }, 0),
    );
    expect(json.choices.every((c: { finish_reason: string }) => c.finish_reason === 'length')).toBe(
      true,
    );
    expect(json.usage.prompt_tokens).toBe(estimatePromptTokens(body));
    expect(estimatePromptTokens(body)).toBe(Math.ceil(5 / 4) + Math.ceil(4 / 4));
  });

  it('streams text_completion chunks that reassemble to the same text, then [DONE]', async () => {
    const body = {
      model: 'volley-sim-1',
      prompt: 'Stream this',
      stream: true,
      stream_options: { include_usage: true },
    };
    const res = await send(sim.url, '/completions', { body });
    const events = sseData(res.body);
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1) as CompletionChunk[];
    const expected = simulatedCompletionText(body);
    expect(chunks.every((c) => c.object === 'text_completion')).toBe(true);
    expect(chunks.flatMap((c) => c.choices.map((x) => x.text)).join('')).toBe(expected.content);
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe('stop');
    expect(chunks.at(-1)).toMatchObject({
      choices: [],
      usage: { total_tokens: estimatePromptTokens(body) + expected.completionTokens },
    });
  });
});
