import { describe, expect, it } from 'vitest';
import { parseBatchLine } from '../src/jsonl/batch-line.js';
import { scanJsonStructure } from '../src/jsonl/json-structure.js';

function codeOf(text: string): string | undefined {
  const result = parseBatchLine({ lineNo: 1, offset: 0, text }, { model: 'm' });
  return result.ok ? undefined : result.issue.code;
}

describe('parseBatchLine structural checks on valid JSON', () => {
  it('refuses __proto__ keys at any depth without polluting prototypes', () => {
    expect(codeOf('{"prompt":"x","__proto__":{"polluted":1}}')).toBe(
      'VOLLEY_INPUT_JSON_FORBIDDEN_KEY',
    );
    expect(codeOf('{"prompt":"x","metadata":{"a":[{"__proto__":{"polluted":1}}]}}')).toBe(
      'VOLLEY_INPUT_JSON_FORBIDDEN_KEY',
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses constructor keys and escaped spellings of forbidden keys', () => {
    expect(codeOf('{"prompt":"x","constructor":{"prototype":{}}}')).toBe(
      'VOLLEY_INPUT_JSON_FORBIDDEN_KEY',
    );
    expect(codeOf('{"prompt":"x","\\u005f_proto__":{}}')).toBe('VOLLEY_INPUT_JSON_FORBIDDEN_KEY');
  });

  it('refuses integer literals beyond 2^53 but not floats or safe integers', () => {
    expect(codeOf('{"prompt":"x","seed":9007199254740993}')).toBe(
      'VOLLEY_INPUT_JSON_UNSAFE_INTEGER',
    );
    expect(codeOf('{"prompt":"x","seed":-12345678901234567890}')).toBe(
      'VOLLEY_INPUT_JSON_UNSAFE_INTEGER',
    );
    expect(codeOf('{"prompt":"x","seed":9007199254740991}')).toBeUndefined();
    expect(codeOf('{"prompt":"x","temperature":0.12345678901234567}')).toBeUndefined();
    // Digits inside strings are not numbers.
    expect(codeOf('{"prompt":"123456789012345678901234567890"}')).toBeUndefined();
  });

  it('refuses number literals beyond the double range, naming the line and the field path', () => {
    const batch = (temperature: string) =>
      `{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":${temperature}}}`;
    for (const literal of ['1e400', '-1e400', '1.5E+309', `1${'0'.repeat(400)}.5`]) {
      const result = parseBatchLine({ lineNo: 7, offset: 0, text: batch(literal) });
      expect(result.ok, literal).toBe(false);
      if (result.ok) continue;
      expect(result.issue.code).toBe('VOLLEY_INPUT_JSON_NUMBER_OUT_OF_RANGE');
      expect(result.issue.customId).toBe('a');
      expect(result.issue.message).toMatch(/^line 7: "body\.temperature": number /);
    }
    // Deep inside arrays and convenience lines too.
    const nested = parseBatchLine(
      { lineNo: 2, offset: 0, text: '{"prompt":"x","metadata":{"w":[1,2,{"v":[0,3e999]}]}}' },
      { model: 'm' },
    );
    expect(nested.ok ? undefined : nested.issue.message).toMatch(
      /^line 2: "metadata\.w\[2\]\.v\[1\]": number 3e999 /,
    );
    // Large and tiny numbers that stay finite are fine (underflow to 0 is harmless).
    expect(codeOf('{"prompt":"x","temperature":1.7e308}')).toBeUndefined();
    expect(codeOf('{"prompt":"x","temperature":1e-400}')).toBeUndefined();
    expect(codeOf('{"prompt":"x","e":"1e400"}')).toBeUndefined();
  });

  it('names the field path of an unsafe integer', () => {
    const result = parseBatchLine(
      { lineNo: 3, offset: 0, text: '{"prompt":"x","seed":9007199254740993}' },
      { model: 'm' },
    );
    expect(result.ok ? undefined : result.issue.message).toMatch(/^line 3: "seed": integer /);
  });

  it('refuses nesting deeper than 64 levels', () => {
    const deep = (n: number) => `{"prompt":"x","metadata":${'['.repeat(n)}${']'.repeat(n)}}`;
    expect(codeOf(deep(63))).toBeUndefined(); // 1 (line) + 63 = 64 levels
    expect(codeOf(deep(64))).toBe('VOLLEY_INPUT_JSON_TOO_DEEP');
    expect(codeOf(deep(100_000))).toBe('VOLLEY_INPUT_JSON_TOO_DEEP');
  });

  it('refuses duplicate keys, at the top level and inside the body', () => {
    expect(codeOf('{"custom_id":"a","custom_id":"b","prompt":"x"}')).toBe(
      'VOLLEY_INPUT_JSON_DUPLICATE_KEY',
    );
    expect(
      codeOf(
        '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"a","messages":[{"role":"user","content":"x"}],"model":"b"}}',
      ),
    ).toBe('VOLLEY_INPUT_JSON_DUPLICATE_KEY');
  });

  it('compares keys after decoding escapes and handles escaped quotes in strings', () => {
    expect(codeOf('{"prompt":"x","a":1,"\\u0061":2}')).toBe('VOLLEY_INPUT_JSON_DUPLICATE_KEY');
    expect(codeOf('{"prompt":"say \\"a\\":1, \\\\","a":1,"b":"\\\\"}')).toBeUndefined();
  });

  it('finds a duplicate among many keys (the Set path) in linear time', () => {
    const keys = Array.from({ length: 50_000 }, (_, i) => `"k${i}":${i}`);
    const unique = `{"prompt":"x","metadata":{${keys.join(',')}}}`;
    const dup = `{"prompt":"x","metadata":{${keys.join(',')},"k123":0}}`;
    const started = performance.now();
    expect(scanJsonStructure(unique)).toBeUndefined();
    expect(scanJsonStructure(dup)).toMatchObject({ code: 'VOLLEY_INPUT_JSON_DUPLICATE_KEY' });
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('keeps the custom_id on structural issues when it is known', () => {
    const result = parseBatchLine(
      {
        lineNo: 1,
        offset: 0,
        text: '{"custom_id":"keep-me","prompt":"x","seed":99999999999999999999}',
      },
      { model: 'm' },
    );
    expect(result).toMatchObject({ ok: false, issue: { customId: 'keep-me' } });
  });
});

describe('scanJsonStructure with the parsed value (the fast proof)', () => {
  // Each text is valid JSON; the proof may only skip the scan when the scan finds nothing.
  const cases = [
    '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"hi"}]}}',
    '{"a":1,"a":2}',
    '{"a":{"x":1},"a":2}',
    '{"a" : 1, "b"\t:\n{"c" :1}, "a" : 3}',
    '{"a":"x\\":","a":1}',
    '{"a":"colon: inside","b":"quote then colon \\":"}',
    '{"a":1,"\\u0061":2}',
    '{"__proto__":{"polluted":1}}',
    '{"x":[{"constructor":1}]}',
    '{"n":9007199254740993}',
    '{"n":-9007199254740993}',
    '{"n":9007199254740991}',
    '{"n":1e400}',
    '{"n":1e20}',
    '{"n":12345678901234567.5}',
    `{"deep":${'['.repeat(63)}${']'.repeat(63)}}`,
    `{"deep":${'['.repeat(64)}${']'.repeat(64)}}`,
    '"top-level: string"',
    '[1,2,{"a":1,"a":1}]',
  ];
  it.each(cases)('agrees with the full scan on %s', (text) => {
    expect(scanJsonStructure(text, JSON.parse(text))).toEqual(scanJsonStructure(text));
  });
});
