/** The summary's top errors, and the errors file's messages: grouped, scrubbed, then cut. */
import { registerSecret } from '@volley/core';
import { describe, expect, it } from 'vitest';
import { createErrorTally, shortMessage } from '../src/run/error-tally.js';
import { errorRecord, recordMessage } from '../src/run/record.js';

const SECRET = 'sk-tally-0123456789abcdefghij';
registerSecret(SECRET);

describe('createErrorTally', () => {
  it('groups messages that differ only in numbers, most frequent first, first example kept', () => {
    const tally = createErrorTally();
    tally.add({ code: 'VOLLEY_INPUT_X', message: 'line 3: bad', customId: 'a' });
    tally.add({
      code: 'VOLLEY_ERR_HTTP',
      status: 404,
      message: 'HTTP 404: no model',
      customId: 'b',
    });
    tally.add({
      code: 'VOLLEY_ERR_HTTP',
      status: 404,
      message: 'HTTP 404: no model',
      customId: 'c',
    });
    tally.add({ code: 'VOLLEY_INPUT_X', message: 'line 17: bad', customId: 'd' });
    tally.add({ code: 'VOLLEY_INPUT_X', message: 'line 18: bad', customId: 'e' });
    tally.add({ code: 'VOLLEY_ERR_HTTP', status: 500, message: 'HTTP 500: oops', customId: 'f' });
    expect(tally.top()).toEqual([
      { code: 'VOLLEY_INPUT_X', message: 'line 3: bad', count: 3, exampleId: 'a' },
      {
        code: 'VOLLEY_ERR_HTTP',
        status: 404,
        message: 'HTTP 404: no model',
        count: 2,
        exampleId: 'b',
      },
      { code: 'VOLLEY_ERR_HTTP', status: 500, message: 'HTTP 500: oops', count: 1, exampleId: 'f' },
    ]);
    expect(tally.top(1)).toHaveLength(1);
  });

  it('keeps the top five by default', () => {
    const tally = createErrorTally();
    for (let i = 0; i < 8; i++)
      tally.add({ code: `C${'x'.repeat(i)}`, message: 'm', customId: `${i}` });
    expect(tally.top()).toHaveLength(5);
  });
});

describe('shortMessage', () => {
  it('scrubs a secret before cutting, so no start of a key survives the cut', () => {
    const message = `${'a'.repeat(100)} ${SECRET} tail`;
    const short = shortMessage(message);
    expect(short).not.toContain('sk-tally');
    expect(short).toContain('[REDACTED]');
    expect(short.length).toBeLessThanOrEqual(120);
  });

  it('folds whitespace and marks a cut', () => {
    expect(shortMessage('a\n\n  b')).toBe('a b');
    expect(shortMessage('x'.repeat(200))).toBe(`${'x'.repeat(119)}\u2026`);
  });
});

describe('error records', () => {
  it('cap the message at 4 KiB after scrubbing', () => {
    const message = `${'é'.repeat(2040)}${SECRET}${'z'.repeat(5000)}`;
    const kept = recordMessage(message);
    expect(Buffer.byteLength(kept)).toBeLessThanOrEqual(4096);
    expect(kept).not.toContain('sk-tally');
    expect(kept).toContain('[REDACTED]');
    expect(kept.endsWith('\u2026')).toBe(true);
    expect(kept).not.toContain('\uFFFD');
  });

  it("keep the server's message and error code as the response body", () => {
    const record = JSON.parse(
      errorRecord('batch_req_000000000000000000000000', 'req-1', {
        code: 'VOLLEY_ERR_HTTP',
        message: 'HTTP 404: The model `x` does not exist.',
        status: 404,
        retryable: false,
        line: 1,
        serverCode: 'model_not_found',
      }),
    ) as { response: { body: unknown }; error: { server_code: string } };
    expect(record.response.body).toEqual({
      error: { message: 'The model `x` does not exist.', code: 'model_not_found' },
    });
    expect(record.error.server_code).toBe('model_not_found');
  });
});
