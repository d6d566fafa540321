import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createSimulator,
  estimatePromptTokens,
  type Simulator,
  simulatedChatContent,
} from '../src/index.js';
import { chatBody, send, sseData } from './helpers.js';

interface Chunk {
  object: string;
  choices: {
    index: number;
    delta: { role?: string; content?: string };
    finish_reason: string | null;
  }[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
}

function reassemble(events: unknown[], index = 0): string {
  let text = '';
  for (const event of events) {
    if (event === '[DONE]') continue;
    for (const choice of (event as Chunk).choices)
      if (choice.index === index) text += choice.delta.content ?? '';
  }
  return text;
}

describe('chat completions (SSE)', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await createSimulator();
  });
  afterAll(() => sim.close());

  it('streams a role chunk, one chunk per token, a finish chunk and [DONE]', async () => {
    const body = chatBody('Stream me something.', { stream: true });
    const res = await send(sim.url, '/chat/completions', { body });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(res.body.endsWith('data: [DONE]\n\n')).toBe(true);
    const events = sseData(res.body);
    const expected = simulatedChatContent(body);
    const chunks = events.slice(0, -1) as Chunk[];
    expect(chunks[0]!.choices[0]).toMatchObject({
      index: 0,
      delta: { role: 'assistant', content: '' },
      finish_reason: null,
    });
    expect(chunks).toHaveLength(expected.completionTokens + 2);
    expect(chunks.at(-1)!.choices[0]).toEqual({
      index: 0,
      delta: {},
      logprobs: null,
      finish_reason: 'stop',
    });
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.usage === undefined)).toBe(
      true,
    );
    expect(reassemble(events)).toBe(expected.content);
    expect(sim.requests.at(-1)).toMatchObject({ stream: true, status: 200, aborted: false });
  });

  it('adds a usage chunk with empty choices when stream_options.include_usage is set', async () => {
    const body = chatBody('Count my tokens.', {
      stream: true,
      stream_options: { include_usage: true },
    });
    const events = sseData((await send(sim.url, '/chat/completions', { body })).body);
    const chunks = events.slice(0, -1) as Chunk[];
    const expected = simulatedChatContent(body);
    const prompt = estimatePromptTokens(body);
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(chunks.at(-1)).toMatchObject({
      choices: [],
      usage: {
        prompt_tokens: prompt,
        completion_tokens: expected.completionTokens,
        total_tokens: prompt + expected.completionTokens,
      },
    });
    expect(events.at(-1)).toBe('[DONE]');
  });

  it('interleaves n choices and caps each at max_tokens with finish_reason length', async () => {
    const body = chatBody('Two short answers.', { stream: true, n: 2, max_tokens: 4 });
    const events = sseData((await send(sim.url, '/chat/completions', { body })).body);
    expect(reassemble(events, 0)).toBe(simulatedChatContent(body, 0).content);
    expect(reassemble(events, 1)).toBe(simulatedChatContent(body, 1).content);
    const finals = (events.slice(0, -1) as Chunk[])
      .flatMap((c) => c.choices)
      .filter((c) => c.finish_reason !== null);
    expect(finals.map((c) => [c.index, c.finish_reason])).toEqual([
      [0, 'length'],
      [1, 'length'],
    ]);
    const contentOrder = (events.slice(1, -1) as Chunk[])
      .flatMap((c) => c.choices)
      .filter((c) => c.delta.content)
      .map((c) => c.index);
    expect(contentOrder).toEqual([0, 1, 0, 1, 0, 1, 0, 1]);
  });
});
