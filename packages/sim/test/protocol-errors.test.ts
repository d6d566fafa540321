import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimulator, type Simulator } from '../src/index.js';
import { chatBody, send, type WireResponse } from './helpers.js';

function error(res: WireResponse): {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
} {
  return JSON.parse(res.body).error;
}

describe('protocol errors', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await createSimulator({ maxBodyBytes: 4096 });
  });
  afterAll(() => sim.close());

  it('answers unknown routes and wrong methods with a 404 envelope', async () => {
    const unknown = await send(sim.url, '/nope');
    expect(unknown.status).toBe(404);
    expect(error(unknown)).toEqual({
      message: 'Invalid URL (GET /v1/nope)',
      type: 'invalid_request_error',
      param: null,
      code: null,
    });
    expect((await send(sim.url, '/chat/completions')).status).toBe(404);
    expect((await send(sim.url, '/models', { method: 'POST', body: {} })).status).toBe(404);
  });

  it('ignores query strings when routing', async () => {
    expect((await send(sim.url, '/models?limit=5')).status).toBe(200);
    expect(sim.requests.at(-1)!.path).toBe('/v1/models');
  });

  it('answers unparseable or non-object JSON with 400', async () => {
    for (const body of ['{"model":', '[1,2]', '', 'null']) {
      const res = await send(sim.url, '/chat/completions', { body });
      expect(res.status).toBe(400);
      expect(error(res).type).toBe('invalid_request_error');
    }
  });

  it.each([
    [{ messages: [{ role: 'user', content: 'x' }] }, 'model'],
    [{ model: 'm' }, 'messages'],
    [{ model: 'm', messages: [] }, 'messages'],
    [{ model: 'm', messages: ['hi'] }, 'messages'],
    [chatBody('x', { n: 0 }), 'n'],
    [chatBody('x', { max_tokens: -1 }), 'max_tokens'],
    [chatBody('x', { max_completion_tokens: 1.5 }), 'max_completion_tokens'],
  ])('refuses chat body %j with 400 naming %s', async (body, param) => {
    const res = await send(sim.url, '/chat/completions', { body });
    expect(res.status).toBe(400);
    expect(error(res).param).toBe(param);
  });

  it('refuses a completion without a usable prompt', async () => {
    const res = await send(sim.url, '/completions', { body: { model: 'm', prompt: [1, 2] } });
    expect([res.status, error(res).param]).toEqual([400, 'prompt']);
  });

  it('answers bodies over maxBodyBytes with 413 and closes the connection', async () => {
    const res = await send(sim.url, '/chat/completions', { body: chatBody('x'.repeat(10_000)) });
    expect(res.status).toBe(413);
    expect(res.headers.connection).toBe('close');
    expect(error(res).code).toBe('request_too_large');
    expect((await send(sim.url, '/models')).status).toBe(200);
  });
});
