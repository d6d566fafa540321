import { describe, expect, it } from 'vitest';
import { createSimulator } from '../src/index.js';
import { chatBody, send } from './helpers.js';

const KEY = 'sk-canary-4f1b2c9d8e7a6b5c';

describe('apiKey', () => {
  it('answers 401 without the right bearer token and never echoes a key', async () => {
    const sim = await createSimulator({ apiKey: KEY });
    try {
      const cases = [undefined, 'Bearer wrong-key', KEY, `Bearer ${KEY}x`, `bearer ${KEY}`];
      for (const authorization of cases) {
        const headers: Record<string, string> =
          authorization === undefined ? {} : { authorization };
        const res = await send(sim.url, '/chat/completions', { body: chatBody('x'), headers });
        expect(res.status).toBe(401);
        expect(JSON.parse(res.body).error).toMatchObject({
          type: 'invalid_request_error',
          code: 'invalid_api_key',
        });
        const wire = res.body + JSON.stringify(res.headers);
        expect(wire).not.toContain('canary');
        expect(wire).not.toContain('wrong-key');
      }
      const ok = await send(sim.url, '/chat/completions', {
        body: chatBody('x'),
        headers: { authorization: `Bearer ${KEY}` },
      });
      expect(ok.status).toBe(200);
      expect((await send(sim.url, '/models')).status).toBe(401);
    } finally {
      await sim.close();
    }
  });

  it('does not put the key in option errors either', async () => {
    await expect(createSimulator({ apiKey: KEY, port: -1 })).rejects.toMatchObject({
      option: 'port',
    });
    const error = await createSimulator({ apiKey: KEY, port: -1 }).catch((e: Error) => e);
    expect(String((error as Error).message)).not.toContain('canary');
  });
});
