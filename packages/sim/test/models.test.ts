import { describe, expect, it } from 'vitest';
import { createSimulator } from '../src/index.js';
import { chatBody, send } from './helpers.js';

describe('models', () => {
  it('lists the configured models and retrieves one', async () => {
    const sim = await createSimulator();
    try {
      const list = JSON.parse((await send(sim.url, '/models')).body);
      expect(list).toEqual({
        object: 'list',
        data: [
          { id: 'volley-sim-1', object: 'model', created: 1_700_000_000, owned_by: 'volley-sim' },
          {
            id: 'volley-sim-embed-1',
            object: 'model',
            created: 1_700_000_000,
            owned_by: 'volley-sim',
          },
        ],
      });
      const one = await send(sim.url, '/models/volley-sim-1');
      expect(JSON.parse(one.body)).toEqual(list.data[0]);
      // acceptAnyModel (default) serves names it does not list.
      expect(
        (await send(sim.url, '/chat/completions', { body: { ...chatBody('x'), model: 'gpt-4o' } }))
          .status,
      ).toBe(200);
    } finally {
      await sim.close();
    }
  });

  it('answers 404 model_not_found for unknown models when acceptAnyModel is false', async () => {
    const sim = await createSimulator({ models: ['only-this'], acceptAnyModel: false });
    try {
      const res = await send(sim.url, '/chat/completions', {
        body: { ...chatBody('x'), model: 'gpt-4o' },
      });
      expect(res.status).toBe(404);
      expect(JSON.parse(res.body).error).toMatchObject({
        type: 'invalid_request_error',
        code: 'model_not_found',
      });
      expect((await send(sim.url, '/models/gpt-4o')).status).toBe(404);
      expect(
        (
          await send(sim.url, '/chat/completions', {
            body: { ...chatBody('x'), model: 'only-this' },
          })
        ).status,
      ).toBe(200);
      expect(
        JSON.parse((await send(sim.url, '/models')).body).data.map((m: { id: string }) => m.id),
      ).toEqual(['only-this']);
    } finally {
      await sim.close();
    }
  });
});
