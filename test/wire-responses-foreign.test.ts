/**
 * Responses API streams from servers other than the simulator (node:http on port 0): a stream
 * that reports `response.failed` is a failure, never a success; one that ends with `[DONE]`
 * after its final event (as some compatible servers do) is a success; one that closes before
 * its final event is retried, and a server that never sends one fails as a truncated stream.
 */
import type { Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Volley } from 'volley';
import { createVolley, isVolleyError } from 'volley';

const RESPONSE = {
  id: 'resp_1',
  object: 'response',
  status: 'completed',
  output: [
    {
      type: 'message',
      id: 'msg_1',
      role: 'assistant',
      status: 'completed',
      content: [{ type: 'output_text', text: 'Hi there', annotations: [] }],
    },
  ],
  usage: { input_tokens: 3, output_tokens: 2, total_tokens: 5 },
};

function event(res: ServerResponse, type: string, fields: Record<string, unknown>): void {
  res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...fields })}\n\n`);
}

describe('Responses API streams from a foreign server', () => {
  let server: Server;
  let baseUrl: string;
  let calls = 0;

  beforeAll(async () => {
    // The case each request plays comes from its `x-case` header (a per-endpoint header).
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        calls++;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const kind = req.headers['x-case'];
        event(res, 'response.created', {
          response: { ...RESPONSE, status: 'in_progress', output: [] },
        });
        event(res, 'response.output_text.delta', { output_index: 0, delta: 'Hi' });
        event(res, 'response.output_text.delta', { output_index: 0, delta: ' there' });
        if (kind === 'failed') {
          event(res, 'response.failed', {
            response: {
              ...RESPONSE,
              status: 'failed',
              error: { code: 'server_error', message: 'boom' },
            },
          });
        } else if (kind === 'done') {
          event(res, 'response.completed', { response: RESPONSE });
          res.write('data: [DONE]\n\n');
        }
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    baseUrl = `http://127.0.0.1:${port}/v1`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** Runs `call` on a runtime whose requests all play `kind`; returns its result or error. */
  async function playing<T>(
    kind: string,
    call: (volley: Volley) => Promise<T>,
  ): Promise<{ result?: T; error?: unknown }> {
    const volley = await createVolley({
      endpoints: [{ baseUrl, headers: { 'x-case': kind } }],
      model: 'm',
      maxRetries: 2,
      backoff: { baseDelayMs: 1, maxDelayMs: 2 },
      logger: false,
    });
    try {
      return { result: await call(volley) };
    } catch (error) {
      return { error };
    } finally {
      await volley.close();
    }
  }

  it('a final event followed by [DONE] is the answer, usage mapped into the counters', async () => {
    const deltas: string[] = [];
    const { result, error } = await playing('done', (volley) =>
      volley.request({
        path: '/responses',
        body: { input: 'Hi' },
        onDelta: (delta) => deltas.push(delta.content),
      }),
    );
    expect(error).toBeUndefined();
    expect(deltas.join('')).toBe('Hi there');
    expect(result?.body).toEqual(RESPONSE);
    expect(result?.usage).toEqual({ prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 });
  });

  it('response.failed is a failure naming the server’s error, never a success', async () => {
    const { error } = await playing('failed', (volley) =>
      volley.request({ path: '/responses', body: { input: 'Hi' }, stream: true }),
    );
    expect(isVolleyError(error)).toBe(true);
    expect(String((error as Error).message)).toContain('boom');
  });

  it('a stream that closes before its final event is retried, then fails as truncated', async () => {
    const before = calls;
    const { error } = await playing('cut', (volley) =>
      volley.request({ path: '/responses', body: { input: 'Hi' }, stream: true }),
    );
    expect(isVolleyError(error)).toBe(true);
    expect(String((error as Error).message)).toContain('stream ended without response.completed');
    // The first attempt and both retries.
    expect(calls - before).toBe(3);
  });
});
