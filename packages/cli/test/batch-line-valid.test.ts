import { describe, expect, it } from 'vitest';
import { parseBatchLine } from '../src/jsonl/batch-line.js';

const at = (text: string, lineNo = 7) => ({ lineNo, offset: 1234, text });

describe('parseBatchLine accepted shapes', () => {
  it('accepts an OpenAI Batch chat line as is', () => {
    const body = {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 5,
    };
    const line = { custom_id: 'req-1', method: 'POST', url: '/v1/chat/completions', body };
    expect(parseBatchLine(at(JSON.stringify(line)))).toEqual({
      ok: true,
      request: { customId: 'req-1', url: '/v1/chat/completions', body },
    });
  });

  it('accepts completions and embeddings batch lines', () => {
    const completion = parseBatchLine(
      at(
        '{"custom_id":"c","method":"POST","url":"/v1/completions","body":{"model":"m","prompt":[1,2,3]}}',
      ),
    );
    expect(completion).toMatchObject({ ok: true, request: { url: '/v1/completions' } });
    const embedding = parseBatchLine(
      at(
        '{"custom_id":"e","method":"POST","url":"/v1/embeddings","body":{"model":"m","input":["a","b"]}}',
      ),
    );
    expect(embedding).toMatchObject({ ok: true, request: { url: '/v1/embeddings' } });
  });

  it('fills body.model from the default only when absent', () => {
    const line =
      '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"x"}]}}';
    expect(parseBatchLine(at(line), { model: 'dflt' })).toMatchObject({
      ok: true,
      request: { body: { model: 'dflt' } },
    });
    const own = line.replace('{"messages"', '{"model":"own","messages"');
    expect(parseBatchLine(at(own), { model: 'dflt' })).toMatchObject({
      ok: true,
      request: { body: { model: 'own' } },
    });
  });

  it('accepts a model from the allowed list', () => {
    expect(
      parseBatchLine(at('{"prompt":"x","model":"b"}'), { allowedModels: ['a', 'b'] }),
    ).toMatchObject({ ok: true, request: { body: { model: 'b' } } });
  });

  it('turns a prompt line into one user message, passing other fields to the body', () => {
    const result = parseBatchLine(
      at('{"prompt":"Hello\\u2028there","model":"m","max_tokens":16,"temperature":0.2}', 12),
    );
    expect(result).toEqual({
      ok: true,
      request: {
        customId: 'line-12',
        url: '/v1/chat/completions',
        body: {
          model: 'm',
          max_tokens: 16,
          temperature: 0.2,
          messages: [{ role: 'user', content: 'Hello\u2028there' }],
        },
      },
    });
  });

  it('puts a prompt line\'s "system" first as a system message', () => {
    expect(
      parseBatchLine(at('{"custom_id":"s","prompt":"q","system":"be brief"}'), { model: 'm' }),
    ).toMatchObject({
      ok: true,
      request: {
        customId: 's',
        body: {
          messages: [
            { role: 'system', content: 'be brief' },
            { role: 'user', content: 'q' },
          ],
        },
      },
    });
  });

  it('accepts a messages line, including tool calls and content parts', () => {
    const messages = [
      { role: 'developer', content: 'rules' },
      { role: 'user', content: [{ type: 'text', text: 'hi' }] },
      {
        role: 'assistant',
        tool_calls: [{ id: 't', type: 'function', function: { name: 'f', arguments: '{}' } }],
      },
      { role: 'tool', tool_call_id: 't', content: 'ok' },
      { role: 'assistant', content: null },
    ];
    expect(
      parseBatchLine(at(JSON.stringify({ custom_id: 'm1', messages })), { model: 'm' }),
    ).toEqual({
      ok: true,
      request: { customId: 'm1', url: '/v1/chat/completions', body: { model: 'm', messages } },
    });
  });

  it('turns an input line into an embeddings request', () => {
    expect(parseBatchLine(at('{"input":"embed me"}', 3), { model: 'e5' })).toEqual({
      ok: true,
      request: {
        customId: 'line-3',
        url: '/v1/embeddings',
        body: { model: 'e5', input: 'embed me' },
      },
    });
  });

  it('accepts stream:false, null max_tokens and 16-digit safe integers', () => {
    expect(
      parseBatchLine(
        at('{"prompt":"x","stream":false,"max_tokens":null,"seed":9007199254740991}'),
        {
          model: 'm',
        },
      ),
    ).toMatchObject({ ok: true });
  });

  it('accepts keys that merely contain "__proto__" or "constructor" and such string values', () => {
    expect(
      parseBatchLine(
        at('{"prompt":"__proto__ constructor","metadata":{"my__proto__":1,"constructors":2}}'),
        {
          model: 'm',
        },
      ),
    ).toMatchObject({ ok: true });
  });

  it('accepts the same key in different objects', () => {
    expect(
      parseBatchLine(
        at(
          '{"custom_id":"a","messages":[{"role":"user","content":"x"},{"role":"user","content":"y"}]}',
        ),
        {
          model: 'm',
        },
      ),
    ).toMatchObject({ ok: true });
  });
});
