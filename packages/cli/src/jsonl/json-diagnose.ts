/**
 * Why `JSON.parse` refused a line, in words a person can act on: a tolerant linear scan that
 * names the first anomaly (a single quote, a trailing comma, a comment, `NaN`, an unquoted key, a
 * raw control character, a truncated line, a second value). Runs only on the error path.
 */

import type { InputIssueCode } from '../codes.js';

/** What {@link diagnoseJsonError} found: the first anomaly in text order. */
export interface JsonDiagnosis {
  code: Extract<
    InputIssueCode,
    | 'VOLLEY_INPUT_JSON_TRUNCATED'
    | 'VOLLEY_INPUT_JSON_SINGLE_QUOTE'
    | 'VOLLEY_INPUT_JSON_TRAILING_COMMA'
    | 'VOLLEY_INPUT_JSON_NON_STANDARD_LITERAL'
    | 'VOLLEY_INPUT_JSON_COMMENT'
    | 'VOLLEY_INPUT_JSON_UNQUOTED_KEY'
    | 'VOLLEY_INPUT_JSON_CONTROL_CHAR'
    | 'VOLLEY_INPUT_JSON_TRAILING_DATA'
    | 'VOLLEY_INPUT_JSON_SYNTAX'
  >;
  detail: string;
  index: number | undefined;
}

const NON_STANDARD_LITERALS: Record<string, string> = {
  NaN: 'NaN is not JSON; use null or a string',
  Infinity: 'Infinity is not JSON; use null or a string',
  undefined: 'undefined is not JSON; use null or leave the field out',
  True: 'True is not JSON; use true',
  False: 'False is not JSON; use false',
  None: 'None is not JSON; use null',
};

/**
 * Names what is wrong with text that `JSON.parse` rejected, by a tolerant linear scan. Runs on
 * the error path only. Falls back to `VOLLEY_INPUT_JSON_SYNTAX` when nothing specific is found.
 */
export function diagnoseJsonError(text: string): JsonDiagnosis {
  const stack: number[] = [];
  // What came last: the start, `{`/`[`, `,`, `:`, a key or a value.
  let prev: 'start' | 'open' | 'comma' | 'colon' | 'key' | 'value' = 'start';
  let lastComma = 0;
  let complete = false;
  const n = text.length;
  const diag = (code: JsonDiagnosis['code'], detail: string, index?: number): JsonDiagnosis => ({
    code,
    detail,
    index,
  });
  const afterValue = (): void => {
    prev = 'value';
    if (stack.length === 0) complete = true;
  };

  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
      i++;
      continue;
    }
    if (complete) {
      if (c === 0x2f && (text.charCodeAt(i + 1) === 0x2f || text.charCodeAt(i + 1) === 0x2a)) {
        return diag('VOLLEY_INPUT_JSON_COMMENT', 'comments are not allowed in JSON', i);
      }
      return diag(
        'VOLLEY_INPUT_JSON_TRAILING_DATA',
        'unexpected text after the end of the JSON value',
        i,
      );
    }
    if (c === 0x22) {
      let j = i + 1;
      for (; j < n; j++) {
        const d = text.charCodeAt(j);
        if (d === 0x22) break;
        if (d === 0x5c) {
          j++;
          continue;
        }
        if (d < 0x20) {
          return diag(
            'VOLLEY_INPUT_JSON_CONTROL_CHAR',
            `raw control character U+${d.toString(16).padStart(4, '0')} inside a string; escape it`,
            j,
          );
        }
      }
      if (j >= n)
        return diag('VOLLEY_INPUT_JSON_TRUNCATED', 'unterminated string: the line ends early', i);
      const isKey = stack[stack.length - 1] === 0x7b && (prev === 'open' || prev === 'comma');
      if (isKey) prev = 'key';
      else afterValue();
      i = j + 1;
      continue;
    }
    switch (c) {
      case 0x27:
        return diag(
          'VOLLEY_INPUT_JSON_SINGLE_QUOTE',
          'single-quoted string; JSON needs double quotes',
          i,
        );
      case 0x2f:
        if (text.charCodeAt(i + 1) === 0x2f || text.charCodeAt(i + 1) === 0x2a) {
          return diag('VOLLEY_INPUT_JSON_COMMENT', 'comments are not allowed in JSON', i);
        }
        return diag('VOLLEY_INPUT_JSON_SYNTAX', 'unexpected "/"', i);
      case 0x7b:
      case 0x5b:
        stack.push(c);
        prev = 'open';
        i++;
        continue;
      case 0x7d:
      case 0x5d: {
        if (prev === 'comma') {
          return diag(
            'VOLLEY_INPUT_JSON_TRAILING_COMMA',
            `trailing comma before "${text[i]}"`,
            lastComma,
          );
        }
        const open = stack.pop();
        if (open === undefined || (open === 0x7b) !== (c === 0x7d)) {
          return diag('VOLLEY_INPUT_JSON_SYNTAX', `unexpected "${text[i]}"`, i);
        }
        afterValue();
        i++;
        continue;
      }
      case 0x2c:
        prev = 'comma';
        lastComma = i;
        i++;
        continue;
      case 0x3a:
        prev = 'colon';
        i++;
        continue;
    }
    if (c === 0x2d && text.startsWith('-Infinity', i)) {
      return diag(
        'VOLLEY_INPUT_JSON_NON_STANDARD_LITERAL',
        NON_STANDARD_LITERALS.Infinity as string,
        i,
      );
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let j = i + 1;
      while (j < n && /[0-9.eE+-]/.test(text[j] as string)) j++;
      afterValue();
      i = j;
      continue;
    }
    if (/[A-Za-z_$]/.test(text[i] as string)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_$]/.test(text[j] as string)) j++;
      const word = text.slice(i, j);
      const nonStandard = NON_STANDARD_LITERALS[word];
      if (nonStandard !== undefined) {
        return diag('VOLLEY_INPUT_JSON_NON_STANDARD_LITERAL', nonStandard, i);
      }
      if (stack[stack.length - 1] === 0x7b && (prev === 'open' || prev === 'comma')) {
        return diag(
          'VOLLEY_INPUT_JSON_UNQUOTED_KEY',
          `key ${word.slice(0, 40)} must be in double quotes`,
          i,
        );
      }
      if (word !== 'true' && word !== 'false' && word !== 'null') {
        return diag('VOLLEY_INPUT_JSON_SYNTAX', `unexpected word ${word.slice(0, 40)}`, i);
      }
      afterValue();
      i = j;
      continue;
    }
    return diag('VOLLEY_INPUT_JSON_SYNTAX', `unexpected character ${JSON.stringify(text[i])}`, i);
  }
  if (!complete) {
    return diag(
      'VOLLEY_INPUT_JSON_TRUNCATED',
      stack.length > 0
        ? `the line ends with ${stack.length} unclosed object(s)/array(s)`
        : 'the line ends early',
    );
  }
  return diag('VOLLEY_INPUT_JSON_SYNTAX', 'invalid JSON');
}
