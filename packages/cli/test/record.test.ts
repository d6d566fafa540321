import { registerSecret } from '@volley/core';
import { describe, expect, it } from 'vitest';
import { errorRecord, parseRecordHead, recordId, successRecord } from '../src/run/record.js';

const RUN = '0123456789abcdef0123456789abcdef';

describe('record ids', () => {
  it('derive from the run, the custom_id and the line, in the OpenAI batch id shape', () => {
    const id = recordId(RUN, 'req-1', '{"prompt":"x"}');
    expect(id).toMatch(/^batch_req_[0-9a-f]{24}$/);
    expect(recordId(RUN, 'req-1', '{"prompt":"x"}')).toBe(id);
    expect(recordId(RUN, 'req-1', '{"prompt":"y"}')).not.toBe(id);
    expect(recordId(RUN, 'req-2', '{"prompt":"x"}')).not.toBe(id);
    expect(recordId('f'.repeat(32), 'req-1', '{"prompt":"x"}')).not.toBe(id);
  });

  it('keep the values earlier versions wrote, so --resume recognises their records', () => {
    // The first 12 bytes of SHA-256(run, NUL, custom_id, NUL, line) as hex, computed with the
    // Buffer-based code these ids were first written with.
    expect(recordId(RUN, 'req-1', '{"prompt":"x"}')).toBe('batch_req_2c3d2eb909b4e543a9da4c7f');
    expect(recordId(RUN, 'é "id"', '{"prompt":"naïve ☃"}')).toBe(
      'batch_req_5c2e6e9cd596c74fd6f6535d',
    );
  });
});

describe('parseRecordHead', () => {
  const result = {
    status: 200,
    requestId: 'req_1',
    bodyText: '{"choices":[]}',
    attempts: 1,
    endpoint: 0,
    latencyMs: 5,
    waitedMs: 0,
  };

  it('reads id and custom_id from success and error records without parsing the body', () => {
    const id = recordId(RUN, 'a "quoted" \\ id', 'x');
    const success = successRecord(id, 'a "quoted" \\ id', result);
    expect(JSON.parse(success)).toMatchObject({ id, custom_id: 'a "quoted" \\ id', error: null });
    expect(parseRecordHead(Buffer.from(success))).toEqual({ id, customId: 'a "quoted" \\ id' });
    const failure = errorRecord(id, 'é', {
      code: 'VOLLEY_ERR_HTTP',
      message: 'bad request',
      status: 400,
      attempts: 1,
      retryable: false,
      line: 3,
    });
    expect(JSON.parse(failure)).toMatchObject({
      response: { status_code: 400 },
      error: { code: 'VOLLEY_ERR_HTTP', status: 400, attempts: 1, retryable: false, line: 3 },
    });
    expect(parseRecordHead(Buffer.from(failure))?.customId).toBe('é');
  });

  it("writes a sampled line's volley field after the OpenAI Batch fields, head unchanged", () => {
    const id = recordId(RUN, 'a', 'x');
    const record = successRecord(id, 'a', result, { samples: 2, select: 'all', failed: 0 });
    const parsed = JSON.parse(record) as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual(['id', 'custom_id', 'response', 'error', 'volley']);
    expect(parsed.volley).toEqual({ samples: 2, select: 'all', failed: 0 });
    expect(parsed.response).toEqual({
      status_code: 200,
      request_id: 'req_1',
      body: { choices: [] },
    });
    expect(parseRecordHead(Buffer.from(record))).toEqual({ id, customId: 'a' });
  });

  it('refuses torn and foreign lines', () => {
    const whole = successRecord(recordId(RUN, 'a', 'x'), 'a', result);
    expect(parseRecordHead(Buffer.from(whole.slice(0, -1)))).toBeUndefined();
    expect(parseRecordHead(Buffer.from(whole.slice(0, 30)))).toBeUndefined();
    expect(parseRecordHead(Buffer.from('{"id":"x","custom_id":"a"}'))).toBeUndefined();
    expect(parseRecordHead(Buffer.from('\0\0\0\0'))).toBeUndefined();
  });

  it('re-serialises a pretty-printed body so a record stays on one line', () => {
    const record = successRecord('batch_req_000000000000000000000000', 'a', {
      ...result,
      bodyText: '{\n  "choices": []\n}',
    });
    expect(record).not.toContain('\n');
    expect(JSON.parse(record).response.body).toEqual({ choices: [] });
  });

  it('scrubs registered keys from error messages', () => {
    registerSecret('sk-proj-abcdefghijklmnopqrstuvwxyz123456');
    const record = errorRecord('batch_req_000000000000000000000000', 'a', {
      code: 'VOLLEY_ERR_AUTH',
      message: 'Incorrect API key provided: sk-proj-abcdefghijklmnopqrstuvwxyz123456',
      retryable: true,
      line: 1,
    });
    expect(record).not.toContain('abcdefghijklmnopqrstuvwxyz123456');
  });
});
