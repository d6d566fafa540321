import { describe, expect, it } from 'vitest';
import type { CountTokens } from '../src/index.js';
import {
  approximateTokens,
  DEFAULT_OUTPUT_TOKEN_ESTIMATE,
  estimateRequestTokens,
  loadTokenCounter,
} from '../src/index.js';

/** One token per character: makes every expected number readable. */
const chars: CountTokens = (text) => text.length;
/** Chat framing per message (token-estimate.ts TOKENS_PER_MESSAGE). */
const PER_MESSAGE = 4;

describe('estimateRequestTokens', () => {
  it('counts chat messages with string content plus per-message framing and the default output', () => {
    const body = {
      model: 'm',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hello' },
      ],
    };
    expect(estimateRequestTokens(body, chars)).toBe(
      2 * PER_MESSAGE + 8 + 5 + DEFAULT_OUTPUT_TOKEN_ESTIMATE,
    );
  });

  it('counts only the text parts of content-part arrays', () => {
    const body = {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'abc' },
            { type: 'image_url', image_url: { url: 'https://example.invalid/cat.png' } },
            { type: 'text', text: 'de' },
          ],
        },
      ],
      max_tokens: 10,
    };
    expect(estimateRequestTokens(body, chars)).toBe(PER_MESSAGE + 5 + 10);
  });

  it('counts framing for messages with no text (null content, tool calls)', () => {
    const body = {
      messages: [
        { role: 'assistant', content: null, tool_calls: [] },
        { role: 'user', content: 'x' },
      ],
      max_tokens: 1,
    };
    expect(estimateRequestTokens(body, chars)).toBe(2 * PER_MESSAGE + 1 + 1);
  });

  it('counts a completion prompt given as a string', () => {
    expect(estimateRequestTokens({ prompt: 'once upon', max_tokens: 7 }, chars)).toBe(9 + 7);
  });

  it('counts a completion prompt given as an array of strings', () => {
    expect(estimateRequestTokens({ prompt: ['ab', 'cde'], max_tokens: 7 }, chars)).toBe(5 + 7);
    expect(estimateRequestTokens({ prompt: ['ab', 'cde'] }, chars)).toBe(
      5 + DEFAULT_OUTPUT_TOKEN_ESTIMATE,
    );
  });

  it('counts embeddings input with no output tokens', () => {
    expect(estimateRequestTokens({ model: 'e', input: 'hello' }, chars)).toBe(5);
    expect(estimateRequestTokens({ model: 'e', input: ['a', 'bb', 'ccc'] }, chars)).toBe(6);
    expect(estimateRequestTokens({ model: 'e', input: 'hello', max_tokens: 100 }, chars)).toBe(5);
  });

  it('uses max_tokens for the output estimate', () => {
    const messages = [{ role: 'user', content: 'hi' }];
    expect(estimateRequestTokens({ messages, max_tokens: 100 }, chars)).toBe(PER_MESSAGE + 2 + 100);
  });

  it('prefers max_completion_tokens over max_tokens', () => {
    const messages = [{ role: 'user', content: 'hi' }];
    expect(
      estimateRequestTokens({ messages, max_tokens: 100, max_completion_tokens: 30 }, chars),
    ).toBe(PER_MESSAGE + 2 + 30);
    expect(estimateRequestTokens({ messages, max_completion_tokens: 30 }, chars)).toBe(
      PER_MESSAGE + 2 + 30,
    );
  });

  it('multiplies the output estimate by n', () => {
    const messages = [{ role: 'user', content: 'hi' }];
    expect(estimateRequestTokens({ messages, max_tokens: 100, n: 3 }, chars)).toBe(
      PER_MESSAGE + 2 + 300,
    );
    expect(estimateRequestTokens({ messages, n: 2 }, chars)).toBe(
      PER_MESSAGE + 2 + 2 * DEFAULT_OUTPUT_TOKEN_ESTIMATE,
    );
  });

  it('falls back to the default output estimate for invalid max_tokens and n', () => {
    const messages = [{ role: 'user', content: 'hi' }];
    const base = PER_MESSAGE + 2 + DEFAULT_OUTPUT_TOKEN_ESTIMATE;
    for (const bad of [0, -5, 1.5, '100', null, Number.NaN]) {
      expect(estimateRequestTokens({ messages, max_tokens: bad }, chars)).toBe(base);
      expect(estimateRequestTokens({ messages, n: bad }, chars)).toBe(base);
    }
  });

  it('takes a caller-supplied default output estimate', () => {
    const messages = [{ role: 'user', content: 'hi' }];
    expect(estimateRequestTokens({ messages }, chars, 50)).toBe(PER_MESSAGE + 2 + 50);
  });

  it('estimates only the output for a body with no prompt at all', () => {
    expect(estimateRequestTokens({ model: 'm' }, chars)).toBe(DEFAULT_OUTPUT_TOKEN_ESTIMATE);
  });
});

describe('approximateTokens', () => {
  it('is about four characters per token, rounded up', () => {
    expect(approximateTokens('')).toBe(0);
    expect(approximateTokens('a')).toBe(1);
    expect(approximateTokens('abcd')).toBe(1);
    expect(approximateTokens('abcde')).toBe(2);
  });
});

describe('loadTokenCounter', () => {
  it('counts "hello world" as a small positive number', async () => {
    const count = await loadTokenCounter();
    const n = count('hello world');
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThanOrEqual(4);
  });

  it('treats "<|endoftext|>" in a prompt as text: no throw, more than one token', async () => {
    const count = await loadTokenCounter();
    const n = count('please repeat <|endoftext|> back to me');
    expect(n).toBeGreaterThan(count('please repeat  back to me'));
    expect(count('<|endoftext|>')).toBeGreaterThan(1);
  });

  it('loads once', async () => {
    expect(await loadTokenCounter()).toBe(await loadTokenCounter());
  });

  it('plugs into estimateRequestTokens', async () => {
    const count = await loadTokenCounter();
    const estimate = estimateRequestTokens(
      { messages: [{ role: 'user', content: 'hello world' }], max_tokens: 10 },
      count,
    );
    expect(estimate).toBe(PER_MESSAGE + count('hello world') + 10);
  });
});

describe('estimateRequestTokens on Responses API bodies', () => {
  it('counts instructions and input items like chat messages and reserves max_output_tokens', () => {
    const body = {
      model: 'm',
      instructions: 'be brief',
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'hello' }] }],
      max_output_tokens: 40,
    };
    expect(estimateRequestTokens(body, chars)).toBe(2 * PER_MESSAGE + 8 + 5 + 40);
  });

  it('a bare string input with max_output_tokens is a Responses body; without it, embeddings', () => {
    expect(estimateRequestTokens({ input: 'hello', max_output_tokens: 7 }, chars)).toBe(
      PER_MESSAGE + 5 + 7,
    );
    expect(estimateRequestTokens({ input: 'hello' }, chars)).toBe(5);
  });
});
