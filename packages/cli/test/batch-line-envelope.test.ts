import { describe, expect, it } from 'vitest';
import type { InputIssue } from '../src/jsonl/batch-line.js';
import { parseBatchLine } from '../src/jsonl/batch-line.js';

const BODY = { model: 'm', messages: [{ role: 'user', content: 'x' }] };
const GOOD = { custom_id: 'a', method: 'POST', url: '/v1/chat/completions', body: BODY };

function issueOf(line: unknown, lineNo = 9): InputIssue {
  const result = parseBatchLine({ lineNo, offset: 50, text: JSON.stringify(line) });
  if (result.ok) throw new Error(`expected an issue for ${JSON.stringify(line)}`);
  return result.issue;
}

describe('parseBatchLine line shape and envelope', () => {
  it.each([
    ['an array', [1, 2]],
    ['a string', 'hello'],
    ['a number', 42],
    ['null', null],
  ])('refuses %s as NOT_OBJECT', (_name, value) => {
    expect(issueOf(value)).toMatchObject({
      code: 'VOLLEY_INPUT_NOT_OBJECT',
      lineNo: 9,
      offset: 50,
    });
  });

  it('refuses an object of neither shape, and one with several convenience fields', () => {
    expect(issueOf({ custom_id: 'a', text: 'x' }).code).toBe('VOLLEY_INPUT_UNRECOGNIZED_LINE');
    expect(issueOf({ prompt: 'x', input: 'y' }).code).toBe('VOLLEY_INPUT_AMBIGUOUS_LINE');
  });

  it.each([
    ['missing', undefined, 'VOLLEY_INPUT_CUSTOM_ID_MISSING'],
    ['a number', 12, 'VOLLEY_INPUT_CUSTOM_ID_NOT_STRING'],
    ['null', null, 'VOLLEY_INPUT_CUSTOM_ID_NOT_STRING'],
    ['empty', '', 'VOLLEY_INPUT_CUSTOM_ID_EMPTY'],
    ['whitespace', '   ', 'VOLLEY_INPUT_CUSTOM_ID_EMPTY'],
    ['513 characters', 'x'.repeat(513), 'VOLLEY_INPUT_CUSTOM_ID_TOO_LONG'],
    ['a newline', 'a\nb', 'VOLLEY_INPUT_CUSTOM_ID_UNSAFE'],
    ['an escape sequence', 'a\u001b[2Jb', 'VOLLEY_INPUT_CUSTOM_ID_UNSAFE'],
    ['a bidi override', 'abc\u202edef', 'VOLLEY_INPUT_CUSTOM_ID_UNSAFE'],
    ['a lone surrogate', 'a\ud800b', 'VOLLEY_INPUT_CUSTOM_ID_UNSAFE'],
  ])('refuses a custom_id that is %s', (_name, id, code) => {
    expect(issueOf({ ...GOOD, custom_id: id }).code).toBe(code);
  });

  it('accepts a 512-character custom_id with non-ASCII text', () => {
    const id = `é😀${'x'.repeat(509)}`;
    expect(
      parseBatchLine({ lineNo: 1, offset: 0, text: JSON.stringify({ ...GOOD, custom_id: id }) }),
    ).toMatchObject({
      ok: true,
      request: { customId: id },
    });
  });

  it('validates a convenience line custom_id the same way', () => {
    const result = parseBatchLine(
      { lineNo: 1, offset: 0, text: '{"custom_id":"","prompt":"x"}' },
      { model: 'm' },
    );
    expect(result).toMatchObject({ ok: false, issue: { code: 'VOLLEY_INPUT_CUSTOM_ID_EMPTY' } });
  });

  it.each([['GET'], ['post'], [undefined]])('refuses method %s', (method) => {
    expect(issueOf({ ...GOOD, method })).toMatchObject({
      code: 'VOLLEY_INPUT_METHOD_INVALID',
      customId: 'a',
    });
  });

  it.each([
    ['https://evil.example/v1/chat/completions'],
    ['http://localhost:8000/v1/chat/completions'],
    ['//evil.example/v1/chat/completions'],
    ['file:///etc/passwd'],
  ])('refuses absolute url %s', (url) => {
    expect(issueOf({ ...GOOD, url }).code).toBe('VOLLEY_INPUT_URL_ABSOLUTE');
  });

  it.each([
    ['/v1/moderations'],
    ['/v1/chat/completions/'],
    ['/chat/completions'],
    [undefined],
    [7],
  ])('refuses unsupported url %s', (url) => {
    expect(issueOf({ ...GOOD, url }).code).toBe('VOLLEY_INPUT_URL_UNSUPPORTED');
  });

  it('accepts /v1/responses lines with a string or item input, and checks input and max_output_tokens', () => {
    const responses = { custom_id: 'r', method: 'POST', url: '/v1/responses' };
    for (const input of ['Hi', [{ role: 'user', content: 'Hi' }]]) {
      const body = { model: 'm', input, max_output_tokens: 50 };
      const result = parseBatchLine({
        lineNo: 1,
        offset: 0,
        text: JSON.stringify({ ...responses, body }),
      });
      expect(result).toMatchObject({ ok: true, request: { url: '/v1/responses', body } });
    }
    expect(issueOf({ ...responses, body: BODY }).code).toBe('VOLLEY_INPUT_RESPONSE_INPUT_INVALID');
    expect(issueOf({ ...responses, body: { model: 'm', input: [] } }).code).toBe(
      'VOLLEY_INPUT_RESPONSE_INPUT_INVALID',
    );
    expect(
      issueOf({ ...responses, body: { model: 'm', input: 'x', max_output_tokens: 0 } }).code,
    ).toBe('VOLLEY_INPUT_MAX_TOKENS_INVALID');
  });

  it('refuses a missing, non-object or empty body', () => {
    expect(issueOf({ ...GOOD, body: undefined }).code).toBe('VOLLEY_INPUT_BODY_MISSING');
    expect(issueOf({ ...GOOD, body: [] }).code).toBe('VOLLEY_INPUT_BODY_NOT_OBJECT');
    expect(issueOf({ ...GOOD, body: 'x' }).code).toBe('VOLLEY_INPUT_BODY_NOT_OBJECT');
    expect(issueOf({ ...GOOD, body: null }).code).toBe('VOLLEY_INPUT_BODY_NOT_OBJECT');
    expect(issueOf({ ...GOOD, body: {} }).code).toBe('VOLLEY_INPUT_BODY_EMPTY');
  });

  it('accepts unknown top-level fields with a warning', () => {
    const result = parseBatchLine({
      lineNo: 3,
      offset: 7,
      text: JSON.stringify({ ...GOOD, note: 1, extra: 2 }),
    });
    expect(result).toMatchObject({
      ok: true,
      request: { customId: 'a' },
      warnings: [{ code: 'VOLLEY_INPUT_UNKNOWN_FIELD', lineNo: 3, offset: 7, customId: 'a' }],
    });
  });

  it('names the field in the message', () => {
    expect(issueOf({ ...GOOD, custom_id: 5 }, 12).message).toContain('line 12: "custom_id"');
  });
});
