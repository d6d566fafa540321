import { request } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createSimulator, simulatedChatContent } from '../src/index.js';
import { chatBody, send, sseData } from './helpers.js';

describe('latency', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('waits headersMs before answering', async () => {
    const sim = await createSimulator({ latency: { headersMs: 100 } });
    try {
      const res = await send(sim.url, '/chat/completions', { body: chatBody('x') });
      expect(res.headersMs).toBeGreaterThanOrEqual(95);
      expect(Number(res.headers['openai-processing-ms'])).toBeGreaterThanOrEqual(99);
    } finally {
      await sim.close();
    }
  });

  it('draws headersMs from a seeded distribution', async () => {
    const sim = await createSimulator({
      latency: { headersMs: { distribution: 'uniform', minMs: 60, maxMs: 80 } },
    });
    try {
      const res = await send(sim.url, '/embeddings', {
        body: { model: 'm', input: 'x', dimensions: 4 },
      });
      expect(res.headersMs).toBeGreaterThanOrEqual(55);
      expect(res.headersMs).toBeLessThan(500);
    } finally {
      await sim.close();
    }
  });

  it('paces streams at tokensPerSecond and delays JSON by tokens / speed', async () => {
    const sim = await createSimulator({ latency: { tokensPerSecond: 200, interTokenJitter: 0.5 } });
    try {
      const body = chatBody('pace me', { max_tokens: 20, stream: true });
      const stream = await send(sim.url, '/chat/completions', { body });
      // The role chunk comes at once, then 20 tokens at 5 ms ± 50% each (seeded, so the same every run).
      expect(stream.totalMs - stream.firstByteMs).toBeGreaterThanOrEqual(80);
      const events = sseData(stream.body);
      expect(events.at(-1)).toBe('[DONE]');
      const text = (events.slice(0, -1) as { choices: { delta: { content?: string } }[] }[])
        .map((e) => e.choices[0]?.delta.content ?? '')
        .join('');
      expect(text).toBe(simulatedChatContent(body).content);

      const json = await send(sim.url, '/chat/completions', { body: { ...body, stream: false } });
      expect(json.headersMs).toBeGreaterThanOrEqual(95);
    } finally {
      await sim.close();
    }
  });

  it('sets no timer at all for a zero-latency request', async () => {
    const sim = await createSimulator();
    try {
      const timeouts = vi.spyOn(globalThis, 'setTimeout');
      const intervals = vi.spyOn(globalThis, 'setInterval');
      const immediates = vi.spyOn(globalThis, 'setImmediate');
      for (const stream of [false, true]) {
        const status = await new Promise<number>((resolve, reject) => {
          const req = request(
            `${sim.url}/chat/completions`,
            { method: 'POST', agent: false },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.on('error', reject);
          req.end(JSON.stringify(chatBody('no timers', { stream })));
        });
        expect(status).toBe(200);
      }
      expect([
        timeouts.mock.calls.length,
        intervals.mock.calls.length,
        immediates.mock.calls.length,
      ]).toEqual([0, 0, 0]);
    } finally {
      await sim.close();
    }
  });
});
