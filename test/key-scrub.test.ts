/**
 * D9: a server that echoes the API key must not get it into messages, request ids or records. The
 * key is scrubbed from a server's whole text before it is cut to an excerpt (cut first, a key
 * straddling the cut lost its tail and leaked the rest), from `x-request-id`, and in base64 form.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVolley } from 'volley';

const KEY = 'sk-test-0123456789abcdefghijklmnop';

/** Every 6-character piece of the key: none may appear anywhere a user can read. */
const FRAGMENTS = Array.from({ length: KEY.length - 5 }, (_, i) => KEY.slice(i, i + 6)).filter(
  (piece) => !'sk-test-'.includes(piece),
);

function leaked(text: string): string[] {
  return FRAGMENTS.filter((piece) => text.includes(piece));
}

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

const handlers: Record<string, Handler> = {
  // A 500 page of 500+ characters with the key straddling character 500 (the excerpt's cut).
  '/long-500/chat/completions': (_, response) => {
    response.writeHead(500, { 'content-type': 'text/plain' });
    response.end(`${'x'.repeat(490)}${KEY} tail`);
  },
  // A 200 that is not JSON, the key straddling character 80.
  '/bad-200/chat/completions': (_, response) => {
    response.writeHead(200, { 'content-type': 'text/plain' });
    response.end(`${'y'.repeat(60)}${KEY}`);
  },
  // A proxy that echoes the Authorization header as the request id.
  '/echo-id/chat/completions': (request, response) => {
    response.writeHead(200, {
      'content-type': 'application/json',
      'x-request-id': String(request.headers.authorization),
    });
    response.end(
      JSON.stringify({
        id: 'x',
        object: 'chat.completion',
        choices: [
          { index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' },
        ],
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      }),
    );
  },
  // A debugging server that answers with the request's headers, base64-encoded.
  '/base64/chat/completions': (request, response) => {
    const dump = Buffer.from(`authorization: ${request.headers.authorization}`).toString('base64');
    response.writeHead(400, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ error: { message: `bad request; headers were ${dump}` } }));
  },
};

describe('the API key never leaks through what a server echoes', () => {
  let base: string;
  const server = createServer((request, response) => {
    request.resume();
    const handler = handlers[request.url ?? ''];
    if (handler === undefined) {
      response.writeHead(404).end();
      return;
    }
    handler(request, response);
  });

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  it.each(['long-500', 'bad-200', 'base64'])(
    'a failure (%s) carries no piece of the key',
    async (path) => {
      for (const mode of ['async', 'threads'] as const) {
        const volley = await createVolley({
          mode,
          endpoints: [{ baseUrl: `${base}/${path}`, apiKey: KEY }],
          model: 'm',
          maxRetries: 0,
          logger: false,
        });
        const error = await volley
          .chat({ messages: [{ role: 'user', content: 'hi' }] })
          .catch((e: Error) => e);
        await volley.close();
        expect(error).toBeInstanceOf(Error);
        let text = '';
        for (let cause: unknown = error; cause instanceof Error; cause = cause.cause)
          text += `${cause.message}\n`;
        expect(leaked(text)).toEqual([]);
        expect(text).toContain('[REDACTED]');
      }
    },
  );

  it('a request id that echoes the Authorization header is scrubbed', async () => {
    for (const mode of ['async', 'threads'] as const) {
      const volley = await createVolley({
        mode,
        endpoints: [{ baseUrl: `${base}/echo-id`, apiKey: KEY }],
        model: 'm',
        logger: false,
      });
      const result = await volley.request({
        path: '/chat/completions',
        body: { model: 'm', messages: [{ role: 'user', content: 'hi' }] },
      });
      await volley.close();
      expect(result.requestId).toBe('Bearer [REDACTED]');
    }
  });
});
