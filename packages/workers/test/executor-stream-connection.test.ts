/**
 * A streamed answer is complete at `[DONE]`; what follows on the wire (the chunked terminator)
 * is read and dropped so the connection serves the next request. A server that sends `[DONE]`
 * and never ends the body still gets its answer taken at once, and loses the connection later.
 */
import { once } from 'node:events';
import type { Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { WorkRequest } from '@volley/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createExecutor } from '../src/executor.js';

const chunk = (content: string, finish: string | null = null): string =>
  `data: ${JSON.stringify({
    id: 'chatcmpl-1',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'm',
    choices: [{ index: 0, delta: { content }, finish_reason: finish }],
  })}\n\n`;

describe('executor: the connection after a complete stream', () => {
  let server: Server;
  let baseUrl: string;
  const sockets: Socket[] = [];
  /** How each response ends after `[DONE]`: ended, or left open. */
  let endAfterDone = true;
  const open: ServerResponse[] = [];

  beforeEach(async () => {
    sockets.length = 0;
    open.length = 0;
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(chunk('Hello'));
        res.write(chunk(' world', 'stop'));
        res.write('data: [DONE]\n\n');
        if (endAfterDone) res.end();
        else open.push(res);
      });
    });
    server.on('connection', (socket: Socket) => sockets.push(socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  afterEach(async () => {
    for (const res of open) res.destroy();
    server.closeAllConnections();
    server.close();
  });

  const executor = () =>
    createExecutor({
      endpoints: [
        {
          baseUrl,
          connections: 1,
          connectTimeoutMs: 5_000,
          headersTimeoutMs: 10_000,
          idleTimeoutMs: 10_000,
          maxResponseBytes: 1024 * 1024,
        },
      ],
    });

  const request = (id: number): WorkRequest => ({
    id,
    endpoint: 0,
    path: '/chat/completions',
    body: { model: 'm', messages: [{ role: 'user', content: 'hi' }] },
    stream: true,
    deltas: false,
    raw: false,
    embeddings: 'none',
    timeoutMs: 10_000,
  });

  it('serves streamed requests one after another on one connection', async () => {
    endAfterDone = true;
    const volley = executor();
    try {
      for (let id = 1; id <= 5; id++) {
        const outcome = await volley.execute(request(id));
        expect(outcome.ok).toBe(true);
        if (outcome.ok)
          expect(outcome.body).toMatchObject({
            choices: [{ message: { content: 'Hello world' }, finish_reason: 'stop' }],
          });
      }
      expect(sockets).toHaveLength(1);
    } finally {
      await volley.destroy();
    }
  });

  it('answers at [DONE] from a server that never ends the body, then gives the connection up', async () => {
    endAfterDone = false;
    const volley = executor();
    try {
      const started = performance.now();
      const outcome = await volley.execute(request(1));
      expect(outcome.ok).toBe(true);
      expect(performance.now() - started).toBeLessThan(2_000);
      // The drain grace (5 s) ends the exchange: the server sees its socket closed.
      const [socket] = sockets;
      await once(socket as Socket, 'close');
      expect(performance.now() - started).toBeGreaterThan(4_000);
      // The next request gets a new connection and its answer.
      const next = await volley.execute(request(2));
      expect(next.ok).toBe(true);
      expect(sockets).toHaveLength(2);
    } finally {
      await volley.destroy();
    }
  }, 20_000);
});
