import { describe, expect, it } from 'vitest';
import type { BatchLineDefaults } from '../src/jsonl/batch-line.js';
import { parseBatchLine } from '../src/jsonl/batch-line.js';

const chat = (body: Record<string, unknown>) =>
  JSON.stringify({ custom_id: 'id-1', method: 'POST', url: '/v1/chat/completions', body });
const MESSAGES = [{ role: 'user', content: 'x' }];

function codeOf(text: string, defaults: BatchLineDefaults = {}): string | undefined {
  const result = parseBatchLine({ lineNo: 2, offset: 10, text }, defaults);
  if (!result.ok) {
    expect(result.issue.lineNo).toBe(2);
    expect(result.issue.offset).toBe(10);
  }
  return result.ok ? undefined : result.issue.code;
}

describe('parseBatchLine request bodies', () => {
  it('refuses a line with no model and no default', () => {
    expect(codeOf(chat({ messages: MESSAGES }))).toBe('VOLLEY_INPUT_MODEL_MISSING');
    expect(codeOf('{"prompt":"x"}')).toBe('VOLLEY_INPUT_MODEL_MISSING');
  });

  it('refuses a non-string or empty model', () => {
    expect(codeOf(chat({ model: 3, messages: MESSAGES }))).toBe('VOLLEY_INPUT_MODEL_INVALID');
    expect(codeOf(chat({ model: '', messages: MESSAGES }))).toBe('VOLLEY_INPUT_MODEL_INVALID');
  });

  it('refuses a model outside the allowed list, including the default', () => {
    const allowed = { allowedModels: ['a'] };
    expect(codeOf(chat({ model: 'b', messages: MESSAGES }), allowed)).toBe(
      'VOLLEY_INPUT_MODEL_NOT_ALLOWED',
    );
    expect(codeOf(chat({ messages: MESSAGES }), { ...allowed, model: 'c' })).toBe(
      'VOLLEY_INPUT_MODEL_NOT_ALLOWED',
    );
  });

  it.each([
    ['missing', undefined],
    ['empty', []],
    ['an object', { role: 'user', content: 'x' }],
    ['a string item', ['hello']],
    ['an unknown role', [{ role: 'robot', content: 'x' }]],
    ['a missing role', [{ content: 'x' }]],
    ['missing content', [{ role: 'user' }]],
    ['numeric content', [{ role: 'user', content: 5 }]],
    ['a content part without type', [{ role: 'user', content: [{ text: 'x' }] }]],
  ])('refuses messages that are %s', (_name, messages) => {
    expect(codeOf(chat({ model: 'm', messages }))).toBe('VOLLEY_INPUT_MESSAGES_INVALID');
  });

  it('refuses malformed messages on a convenience line', () => {
    expect(codeOf('{"messages":[{"role":"user"}]}', { model: 'm' })).toBe(
      'VOLLEY_INPUT_MESSAGES_INVALID',
    );
    expect(codeOf('{"prompt":"x","system":5}', { model: 'm' })).toBe(
      'VOLLEY_INPUT_MESSAGES_INVALID',
    );
  });

  it('refuses stream:true in batch and convenience lines', () => {
    expect(codeOf(chat({ model: 'm', messages: MESSAGES, stream: true }))).toBe(
      'VOLLEY_INPUT_STREAM_NOT_ALLOWED',
    );
    expect(codeOf('{"prompt":"x","stream":true}', { model: 'm' })).toBe(
      'VOLLEY_INPUT_STREAM_NOT_ALLOWED',
    );
    expect(codeOf('{"prompt":"x","stream":"yes"}', { model: 'm' })).toBe(
      'VOLLEY_INPUT_STREAM_NOT_ALLOWED',
    );
  });

  it.each([[0], [-1], [1.5], ['100'], [true], [1e300]])('refuses max_tokens %s', (value) => {
    expect(codeOf(chat({ model: 'm', messages: MESSAGES, max_tokens: value }))).toBe(
      'VOLLEY_INPUT_MAX_TOKENS_INVALID',
    );
    expect(codeOf(chat({ model: 'm', messages: MESSAGES, max_completion_tokens: value }))).toBe(
      'VOLLEY_INPUT_MAX_TOKENS_INVALID',
    );
  });

  it('refuses a bad prompt (convenience line and /v1/completions)', () => {
    expect(codeOf('{"prompt":""}', { model: 'm' })).toBe('VOLLEY_INPUT_PROMPT_INVALID');
    expect(codeOf('{"prompt":["a"]}', { model: 'm' })).toBe('VOLLEY_INPUT_PROMPT_INVALID');
    const completion = (prompt: unknown) =>
      JSON.stringify({
        custom_id: 'c',
        method: 'POST',
        url: '/v1/completions',
        body: { model: 'm', prompt },
      });
    expect(codeOf(completion(undefined))).toBe('VOLLEY_INPUT_PROMPT_INVALID');
    expect(codeOf(completion([]))).toBe('VOLLEY_INPUT_PROMPT_INVALID');
    expect(codeOf(completion([1, 'a']))).toBe('VOLLEY_INPUT_PROMPT_INVALID');
    expect(codeOf(completion([[1, 2], [3]]))).toBeUndefined();
  });

  it('refuses bad embeddings input', () => {
    const embed = (input: unknown) =>
      JSON.stringify({
        custom_id: 'e',
        method: 'POST',
        url: '/v1/embeddings',
        body: { model: 'm', input },
      });
    for (const input of [undefined, '', [], [''], [{}], 5]) {
      expect(codeOf(embed(input)), JSON.stringify(input)).toBe(
        'VOLLEY_INPUT_EMBEDDING_INPUT_INVALID',
      );
    }
    expect(codeOf('{"input":""}', { model: 'm' })).toBe('VOLLEY_INPUT_EMBEDDING_INPUT_INVALID');
  });

  it('attaches the custom_id to body issues', () => {
    const result = parseBatchLine({
      lineNo: 1,
      offset: 0,
      text: chat({ model: 'm', messages: [] }),
    });
    expect(result).toMatchObject({ ok: false, issue: { customId: 'id-1' } });
  });
});
