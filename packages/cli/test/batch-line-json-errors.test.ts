import { describe, expect, it } from 'vitest';
import { parseBatchLine } from '../src/jsonl/batch-line.js';
import { hasUnsafeTextChars } from '../src/text.js';

function issueOf(text: string) {
  const result = parseBatchLine({ lineNo: 4, offset: 99, text }, { model: 'm' });
  if (result.ok) throw new Error(`expected an issue for ${text}`);
  return result.issue;
}

describe('parseBatchLine invalid JSON', () => {
  it.each([
    ['truncated object', '{"prompt":"x"', 'VOLLEY_INPUT_JSON_TRUNCATED'],
    ['truncated string', '{"prompt":"unfinished', 'VOLLEY_INPUT_JSON_TRUNCATED'],
    ['truncated after colon', '{"prompt":', 'VOLLEY_INPUT_JSON_TRUNCATED'],
    ['single quotes', "{'prompt':'x'}", 'VOLLEY_INPUT_JSON_SINGLE_QUOTE'],
    ['single-quoted value', '{"prompt":\'x\'}', 'VOLLEY_INPUT_JSON_SINGLE_QUOTE'],
    ['trailing comma in object', '{"prompt":"x",}', 'VOLLEY_INPUT_JSON_TRAILING_COMMA'],
    [
      'trailing comma in array',
      '{"messages":[{"role":"user","content":"x"},]}',
      'VOLLEY_INPUT_JSON_TRAILING_COMMA',
    ],
    ['NaN', '{"prompt":"x","temperature":NaN}', 'VOLLEY_INPUT_JSON_NON_STANDARD_LITERAL'],
    ['Infinity', '{"prompt":"x","temperature":Infinity}', 'VOLLEY_INPUT_JSON_NON_STANDARD_LITERAL'],
    [
      '-Infinity',
      '{"prompt":"x","temperature":-Infinity}',
      'VOLLEY_INPUT_JSON_NON_STANDARD_LITERAL',
    ],
    ['undefined', '{"prompt":"x","seed":undefined}', 'VOLLEY_INPUT_JSON_NON_STANDARD_LITERAL'],
    ['Python True', '{"prompt":"x","logprobs":True}', 'VOLLEY_INPUT_JSON_NON_STANDARD_LITERAL'],
    ['a comment', '{"prompt":"x"} // note', 'VOLLEY_INPUT_JSON_COMMENT'],
    ['an unquoted key', '{prompt:"x"}', 'VOLLEY_INPUT_JSON_UNQUOTED_KEY'],
    ['a raw tab in a string', '{"prompt":"a\tb"}', 'VOLLEY_INPUT_JSON_CONTROL_CHAR'],
    ['two objects on one line', '{"prompt":"x"}{"prompt":"y"}', 'VOLLEY_INPUT_JSON_TRAILING_DATA'],
    ['CR-joined records', '{"prompt":"x"}\r{"prompt":"y"}', 'VOLLEY_INPUT_JSON_TRAILING_DATA'],
    ['a stray character', '{"prompt":"x" @}', 'VOLLEY_INPUT_JSON_SYNTAX'],
    ['mismatched brackets', '{"prompt":["x"}', 'VOLLEY_INPUT_JSON_SYNTAX'],
  ])('reports %s with its own code', (_name, text, code) => {
    const issue = issueOf(text);
    expect(issue).toMatchObject({ code, lineNo: 4, offset: 99 });
    expect(issue.message.startsWith('line 4: ')).toBe(true);
    expect(issue.snippet.length).toBeLessThanOrEqual(80);
    expect(hasUnsafeTextChars(issue.snippet)).toBe(false);
  });

  it('keeps snippets short and escaped for long lines with control characters', () => {
    const issue = issueOf(`{"prompt":"${'\u001b[31m'.repeat(200)}`);
    expect(issue.code).toBe('VOLLEY_INPUT_JSON_CONTROL_CHAR');
    expect(issue.snippet.length).toBeLessThanOrEqual(80);
    expect(issue.snippet).toContain('\\x1b');
  });
});
