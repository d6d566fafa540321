import { describe, expect, it } from 'vitest';
import {
  createSimulator,
  estimatePromptTokens,
  simulatedChatContent,
  simulatedCompletionText,
} from '../src/index.js';
import { chatBody, send } from './helpers.js';

describe('generated content', () => {
  it('is one token per word, 8 to 96 tokens, ending in a full stop when not capped', () => {
    const lengths = new Set<number>();
    for (let i = 0; i < 500; i++) {
      const { content, completionTokens, finishReason } = simulatedChatContent(
        chatBody(`prompt ${i}`),
      );
      expect(content.split(' ')).toHaveLength(completionTokens);
      expect(completionTokens).toBeGreaterThanOrEqual(8);
      expect(completionTokens).toBeLessThanOrEqual(96);
      expect(finishReason).toBe('stop');
      expect(content.endsWith('.')).toBe(true);
      lengths.add(completionTokens);
    }
    expect(lengths.size).toBeGreaterThan(60);
  });

  it('depends on the model, the messages and their roles', () => {
    const base = simulatedChatContent(chatBody('x')).content;
    expect(simulatedChatContent({ ...chatBody('x'), model: 'other' }).content).not.toBe(base);
    expect(
      simulatedChatContent({ model: 'volley-sim-1', messages: [{ role: 'system', content: 'x' }] })
        .content,
    ).not.toBe(base);
    expect(simulatedChatContent(chatBody('y')).content).not.toBe(base);
  });

  it('treats chat and completions independently and tolerates junk input', () => {
    expect(simulatedCompletionText({ model: 'm', prompt: 'x' }).content).not.toBe(
      simulatedChatContent(chatBody('x')).content,
    );
    expect(simulatedChatContent(null).completionTokens).toBeGreaterThanOrEqual(8);
    expect(simulatedChatContent(chatBody('x', { max_tokens: 0 }))).toEqual({
      content: '',
      completionTokens: 0,
      finishReason: 'length',
    });
  });

  it('estimates prompt tokens at four characters per token plus message overhead', () => {
    expect(estimatePromptTokens(chatBody('12345678'))).toBe(3 + 4 + 2);
    expect(
      estimatePromptTokens({
        messages: [
          { role: 'system', content: 'abc' },
          { role: 'user', content: [{ type: 'text', text: 'abcde' }] },
          { role: 'assistant', content: null },
        ],
      }),
    ).toBe(3 + (4 + 1) + (4 + 2) + 4);
    expect(estimatePromptTokens({ prompt: ['abcd', 'abcde'] })).toBe(1 + 2);
    expect(estimatePromptTokens({ input: 'abcdefghi' })).toBe(3);
    expect(estimatePromptTokens(undefined)).toBe(0);
  });
});

describe("vLLM's ignore_eos", () => {
  it('runs a generated answer on to max_tokens, past its natural end', async () => {
    const body = chatBody('run on', { max_tokens: 300 });
    const natural = simulatedChatContent(body);
    const runOn = simulatedChatContent({ ...body, ignore_eos: true });
    expect(runOn.completionTokens).toBe(300);
    expect(runOn.finishReason).toBe('length');
    // The same words, without the natural ending's full stop, then more.
    expect(runOn.content.startsWith(natural.content.slice(0, -1))).toBe(true);
    // Below the natural length it is the plain capped answer.
    const capped = chatBody('run on', { max_tokens: 5 });
    expect(simulatedChatContent({ ...capped, ignore_eos: true })).toEqual(
      simulatedChatContent(capped),
    );

    const sim = await createSimulator();
    try {
      const res = await send(sim.url, '/chat/completions', { body: { ...body, ignore_eos: true } });
      const json = JSON.parse(res.body);
      expect(json.choices[0].message.content).toBe(runOn.content);
      expect(json.usage.completion_tokens).toBe(300);
    } finally {
      await sim.close();
    }
  });
});
