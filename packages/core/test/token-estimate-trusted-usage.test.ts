// D3 (adversarial trial): the one check of a response's `usage`. Impossible counts make the whole
// usage unknown; counts that can be true pass unchanged.
import { describe, expect, it } from 'vitest';
import type { Usage } from '../src/protocol/openai.js';
import { MAX_TOKENS_PER_CALL, trustedUsage } from '../src/token-estimate.js';

const usage = (fields: Record<string, unknown>) => fields as unknown as Usage;

describe('trustedUsage', () => {
  it('passes usage that can be true, embeddings (no completion tokens) included', () => {
    const chat = usage({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 });
    expect(trustedUsage(chat)).toBe(chat);
    const embeddings = usage({ prompt_tokens: 2, total_tokens: 2 });
    expect(trustedUsage(embeddings)).toBe(embeddings);
    const atBound = usage({
      prompt_tokens: 0,
      completion_tokens: 0,
      total_tokens: MAX_TOKENS_PER_CALL,
    });
    expect(trustedUsage(atBound)).toBe(atBound);
    expect(trustedUsage(undefined)).toBeUndefined();
  });

  it.each([
    ['non-finite total', { prompt_tokens: 1, completion_tokens: 1, total_tokens: Infinity }],
    ['NaN prompt', { prompt_tokens: Number.NaN, completion_tokens: 1, total_tokens: 2 }],
    ['negative completion', { prompt_tokens: 5, completion_tokens: -1, total_tokens: 4 }],
    ['fractional prompt', { prompt_tokens: 2.5, completion_tokens: 1, total_tokens: 3.5 }],
    ['above the bound', { prompt_tokens: 1, completion_tokens: 1, total_tokens: 1e12 }],
    ['a string', { prompt_tokens: '5', completion_tokens: 1, total_tokens: 6 }],
    ['a missing total', { prompt_tokens: 5, completion_tokens: 1 }],
  ])('treats %s as unknown', (_, fields) => {
    expect(trustedUsage(usage(fields))).toBeUndefined();
  });
});
