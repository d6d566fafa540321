/**
 * Errors visible where the user looks: the summary lists the top error messages (not only their
 * codes) with counts and an example custom_id, `--json` has them as `topErrors`, and the errors
 * file keeps the server's message (scrubbed, capped at 4 KiB) and error code in its record.
 * Before, a 20,000-line run against a missing model showed only `VOLLEY_ERR_HTTP: 20,000`.
 */

import { readFile, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJsonl, runCli, tempDir } from './helpers.js';

const LONG = `${'the request was refused because '.repeat(300)}end`;
let server: ReturnType<typeof createServer>;
let baseUrl = '';

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    req.on('end', () => {
      const body = JSON.parse(text) as { model: string };
      res.setHeader('content-type', 'application/json');
      if (body.model === 'missing') {
        res.statusCode = 404;
        res.end(
          JSON.stringify({
            error: {
              message: `The model \`${body.model}\` does not exist.`,
              type: 'invalid_request_error',
              code: 'model_not_found',
            },
          }),
        );
      } else if (body.model === 'long') {
        res.statusCode = 400;
        res.end(JSON.stringify({ error: { message: LONG, type: 'invalid_request_error' } }));
      } else {
        res.end(
          JSON.stringify({
            id: 'chatcmpl-1',
            object: 'chat.completion',
            created: 0,
            model: body.model,
            choices: [
              { index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' },
            ],
            usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
          }),
        );
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

function line(id: string, model: string): string {
  return JSON.stringify({
    custom_id: id,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model, messages: [{ role: 'user', content: 'hi' }] },
  });
}

describe('top errors', () => {
  it('are listed by message in the summary and in --json, with counts and an example id', async () => {
    await using dir = await tempDir();
    const lines = [
      ...Array.from({ length: 6 }, (_, i) => line(`gone-${i}`, 'missing')),
      line('long-0', 'long'),
      line('long-1', 'long'),
      line('fine-0', 'real'),
      '{"custom_id": "broken", not json',
    ];
    await writeFile(dir.file('in.jsonl'), `${lines.join('\n')}\n`);
    const result = await runCli([
      'run',
      dir.file('in.jsonl'),
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      baseUrl,
      '--concurrency',
      '1',
      '--progress',
      'plain',
      '--json',
    ]);
    expect(result.code).toBe(1);
    const summary = JSON.parse(result.stdout) as {
      topErrors: Array<Record<string, unknown>>;
      wallMs: number;
    };
    expect(summary.topErrors).toHaveLength(3);
    expect(summary.topErrors[0]).toEqual({
      code: 'VOLLEY_ERR_HTTP',
      status: 404,
      message: 'HTTP 404: The model `missing` does not exist.',
      count: 6,
      exampleId: 'gone-0',
    });
    expect(summary.topErrors[1]).toMatchObject({
      code: 'VOLLEY_ERR_HTTP',
      status: 400,
      count: 2,
      exampleId: 'long-0',
    });
    const longMessage = summary.topErrors[1]?.message as string;
    expect(longMessage.startsWith('HTTP 400: the request was refused')).toBe(true);
    expect(longMessage.length).toBeLessThanOrEqual(120);
    expect(summary.topErrors[2]).toMatchObject({
      code: 'VOLLEY_INPUT_JSON_UNQUOTED_KEY',
      count: 1,
      exampleId: '#line-10',
    });
    expect(Number.isInteger(summary.wallMs)).toBe(true);

    expect(result.stderr).toMatch(
      /top errors:\n {4}6 {2}VOLLEY_ERR_HTTP 404: HTTP 404: The model `missing` does not exist\. \(e\.g\. gone-0\)\n {4}2 {2}VOLLEY_ERR_HTTP 400: HTTP 400: the request/,
    );

    const errors = parseJsonl(await readFile(dir.file('out.errors.jsonl'), 'utf8')) as Array<{
      custom_id: string;
      response: { status_code: number; body: { error: { message: string; code: unknown } } } | null;
      error: { message: string; server_code?: string };
    }>;
    const gone = errors.find((e) => e.custom_id === 'gone-3');
    expect(gone?.response?.body.error).toEqual({
      message: 'The model `missing` does not exist.',
      code: 'model_not_found',
    });
    expect(gone?.error.server_code).toBe('model_not_found');
    const long = errors.find((e) => e.custom_id === 'long-1');
    expect(Buffer.byteLength(long?.error.message ?? '')).toBeLessThanOrEqual(4096);
    expect(long?.error.message.startsWith('HTTP 400: the request was refused')).toBe(true);
    expect(long?.error.message.endsWith('\u2026')).toBe(true);
  }, 30_000);

  it('volley embed lists them too', async () => {
    await using dir = await tempDir();
    await writeFile(
      dir.file('in.jsonl'),
      ['{"id":"a","text":"x"}', '{"id":"b"}', '{"id":"c"}', '{"id":"d","text":""}'].join('\n'),
    );
    const result = await runCli([
      'embed',
      dir.file('in.jsonl'),
      '-o',
      dir.file('vectors.jsonl'),
      '--progress',
      'none',
      '--json',
    ]);
    expect(result.code).toBe(1);
    const summary = JSON.parse(result.stdout) as { topErrors: unknown[] };
    expect(summary.topErrors).toEqual([
      {
        code: 'VOLLEY_INPUT_TEXT_INVALID',
        message: 'line 2: "text" must be a non-empty string, got nothing',
        count: 2,
        exampleId: 'b',
      },
      {
        code: 'VOLLEY_INPUT_TEXT_INVALID',
        message: 'line 4: "text" must be a non-empty string, got an empty string',
        count: 1,
        exampleId: 'd',
      },
    ]);
  }, 30_000);
});
