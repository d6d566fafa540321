import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { createSimulator } from '../src/index.js';
import { chatBody, send, waitFor } from './helpers.js';

describe('client aborts', () => {
  it('marks a long streaming request the client abandoned as aborted in the log and stats', async () => {
    // 20 tokens per second: a full answer takes seconds; the client leaves after the first chunk.
    const sim = await createSimulator({ latency: { tokensPerSecond: 20 } });
    try {
      await new Promise<void>((resolve, reject) => {
        const req = request(`${sim.url}/chat/completions`, { method: 'POST', agent: false });
        req.on('error', () => {});
        req.on('response', (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('close', () => resolve());
        setTimeout(() => reject(new Error('no data')), 5000);
        req.end(JSON.stringify(chatBody('a long story', { stream: true })));
      });
      await waitFor(() => sim.requests[0]?.finishedAt !== undefined);
      expect(sim.requests[0]).toMatchObject({ status: 200, stream: true, aborted: true });
      expect(sim.stats()).toMatchObject({ aborted: 1, inFlight: 0 });
    } finally {
      await sim.close();
    }
  });

  it('does not mark completed, faulted-by-reset or close()-ended requests as aborted', async () => {
    const sim = await createSimulator();
    await send(sim.url, '/chat/completions', { body: chatBody('done') });
    await send(sim.url, '/chat/completions', {
      body: chatBody('x'),
      headers: { 'x-volley-sim-fault': 'reset-mid-stream' },
    });
    const stalled = send(sim.url, '/chat/completions', {
      body: chatBody('x', { stream: true }),
      headers: { 'x-volley-sim-fault': 'stall-stream' },
    });
    await waitFor(() => sim.requests.length === 3 && sim.requests[2]!.headersSentAt !== undefined);
    await sim.close();
    const res = await stalled;
    expect(res.complete).toBe(false);
    expect(sim.requests.map((entry) => entry.aborted)).toEqual([false, false, false]);
    expect(sim.stats().aborted).toBe(0);
  });
});
