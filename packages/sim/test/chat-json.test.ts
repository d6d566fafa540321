import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createSimulator,
  estimatePromptTokens,
  type Simulator,
  simulatedChatContent,
} from '../src/index.js';
import { chatBody, send } from './helpers.js';

describe('chat completions (JSON)', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await createSimulator();
  });
  afterAll(() => sim.close());

  it('answers with simulatedChatContent and consistent usage', async () => {
    const body = chatBody('Summarise the plot of Hamlet.');
    const res = await send(sim.url, '/chat/completions', { body });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.headers['openai-model']).toBe('volley-sim-1');
    expect(res.headers['x-request-id']).toMatch(/^req_[0-9a-f]{12}[0-9a-z]+$/);
    expect(Number(res.headers['openai-processing-ms'])).toBeGreaterThanOrEqual(0);
    const json = JSON.parse(res.body);
    const expected = simulatedChatContent(body);
    expect(json.object).toBe('chat.completion');
    expect(json.model).toBe('volley-sim-1');
    expect(json.choices).toEqual([
      {
        index: 0,
        message: { role: 'assistant', content: expected.content, refusal: null },
        logprobs: null,
        finish_reason: 'stop',
      },
    ]);
    const promptTokens = estimatePromptTokens(body);
    expect(promptTokens).toBe(3 + 4 + Math.ceil('Summarise the plot of Hamlet.'.length / 4));
    expect(json.usage).toEqual({
      prompt_tokens: promptTokens,
      completion_tokens: expected.completionTokens,
      total_tokens: promptTokens + expected.completionTokens,
    });
  });

  it('gives every response a unique x-request-id', async () => {
    const [a, b] = await Promise.all([
      send(sim.url, '/chat/completions', { body: chatBody('a') }),
      send(sim.url, '/chat/completions', { body: chatBody('a') }),
    ]);
    expect(a.headers['x-request-id']).not.toBe(b.headers['x-request-id']);
    expect(JSON.parse(a.body).choices).toEqual(JSON.parse(b.body).choices);
  });

  it('returns n distinct choices, each equal to its simulatedChatContent', async () => {
    const body = chatBody('Pick a name.', { n: 3 });
    const json = JSON.parse((await send(sim.url, '/chat/completions', { body })).body);
    expect(json.choices.map((c: { message: { content: string } }) => c.message.content)).toEqual([
      simulatedChatContent(body, 0).content,
      simulatedChatContent(body, 1).content,
      simulatedChatContent(body, 2).content,
    ]);
    expect(
      new Set(json.choices.map((c: { message: { content: string } }) => c.message.content)).size,
    ).toBe(3);
    const completion = [0, 1, 2].reduce(
      (sum, i) => sum + simulatedChatContent(body, i).completionTokens,
      0,
    );
    expect(json.usage.completion_tokens).toBe(completion);
  });

  it('caps the answer at max_tokens with finish_reason length, as a prefix of the full answer', async () => {
    const full = simulatedChatContent(chatBody('Tell me a story.'));
    for (const field of ['max_tokens', 'max_completion_tokens']) {
      const body = chatBody('Tell me a story.', { [field]: 5 });
      const json = JSON.parse((await send(sim.url, '/chat/completions', { body })).body);
      expect(json.choices[0].finish_reason).toBe('length');
      expect(json.usage.completion_tokens).toBe(5);
      expect(json.choices[0].message.content).toBe(simulatedChatContent(body).content);
      expect(full.content.startsWith(json.choices[0].message.content)).toBe(true);
    }
  });

  it('varies content with temperature and seed but not with unrelated fields', () => {
    const base = simulatedChatContent(chatBody('Same prompt'));
    expect(simulatedChatContent(chatBody('Same prompt', { temperature: 0.7 })).content).not.toBe(
      base.content,
    );
    expect(simulatedChatContent(chatBody('Same prompt', { seed: 42 })).content).not.toBe(
      base.content,
    );
    expect(simulatedChatContent(chatBody('Same prompt', { user: 'x', tools: [] })).content).toBe(
      base.content,
    );
    expect(simulatedChatContent(chatBody('Same prompt')).content).toBe(base.content);
  });

  it('reads text content parts like a plain string', () => {
    const parts = {
      model: 'volley-sim-1',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Hi ' },
            { type: 'text', text: 'there' },
          ],
        },
      ],
    };
    expect(simulatedChatContent(parts)).toEqual(simulatedChatContent(chatBody('Hi there')));
  });
});

describe('chat completions with a script', () => {
  it('answers with the script text, per choice, and falls back to generated content', async () => {
    const sim = await createSimulator({
      script: ({ body, choiceIndex }) =>
        body.messages[0].content === 'ping' ? `pong number ${choiceIndex}` : undefined,
    });
    try {
      const json = JSON.parse(
        (await send(sim.url, '/chat/completions', { body: chatBody('ping', { n: 2 }) })).body,
      );
      expect(json.choices.map((c: { message: { content: string } }) => c.message.content)).toEqual([
        'pong number 0',
        'pong number 1',
      ]);
      expect(json.usage.completion_tokens).toBe(6);

      const capped = JSON.parse(
        (await send(sim.url, '/chat/completions', { body: chatBody('ping', { max_tokens: 2 }) }))
          .body,
      );
      expect(capped.choices[0]).toMatchObject({
        message: { content: 'pong number' },
        finish_reason: 'length',
      });

      const other = chatBody('other');
      const fallback = JSON.parse((await send(sim.url, '/chat/completions', { body: other })).body);
      expect(fallback.choices[0].message.content).toBe(simulatedChatContent(other).content);
    } finally {
      await sim.close();
    }
  });

  it('turns a throwing script into a 500 error envelope without crashing', async () => {
    const sim = await createSimulator({
      script: () => {
        throw new Error('script broke');
      },
    });
    try {
      const res = await send(sim.url, '/chat/completions', { body: chatBody('x') });
      expect(res.status).toBe(500);
      expect(JSON.parse(res.body).error).toMatchObject({
        type: 'server_error',
        code: 'simulator_error',
      });
      expect((await send(sim.url, '/models')).status).toBe(200);
    } finally {
      await sim.close();
    }
  });
});
