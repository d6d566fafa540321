import { describe, expect, it } from 'vitest';
import { createSimulator } from '../src/index.js';
import { chatBody, send } from './helpers.js';

describe('request log', () => {
  it('records each request with its timing, status and body', async () => {
    const sim = await createSimulator();
    try {
      const body = chatBody('log me', { stream: true });
      const res = await send(sim.url, '/chat/completions', { body });
      const [entry] = sim.requests;
      expect(entry).toMatchObject({
        seq: 0,
        method: 'POST',
        path: '/v1/chat/completions',
        requestId: res.headers['x-request-id'],
        status: 200,
        stream: true,
        aborted: false,
        fault: undefined,
        body,
      });
      expect(entry!.receivedAt).toBeLessThanOrEqual(entry!.headersSentAt!);
      expect(entry!.headersSentAt).toBeLessThanOrEqual(entry!.finishedAt!);
      expect(Math.abs(entry!.receivedAt - Date.now())).toBeLessThan(5000);
    } finally {
      await sim.close();
    }
  });

  it('keeps only the newest logCapacity entries while stats count everything', async () => {
    const sim = await createSimulator({ logCapacity: 3, logBodies: false });
    try {
      for (let i = 0; i < 5; i++)
        await send(sim.url, '/chat/completions', { body: chatBody(`n${i}`) });
      expect(sim.requests.map((entry) => entry.seq)).toEqual([2, 3, 4]);
      expect(sim.requests.every((entry) => entry.body === undefined)).toBe(true);
      expect(sim.stats()).toMatchObject({ requests: 5, inFlight: 0, byStatus: { 200: 5 } });
    } finally {
      await sim.close();
    }
  });
});
