import { describe, expect, it } from 'vitest';
import { createSimulator, formatGoDuration } from '../src/index.js';
import { chatBody, send, type WireResponse } from './helpers.js';

/** Parses Go's time.Duration.String() output into milliseconds; throws on anything else. */
function parseGoDuration(text: string): number {
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)$|^(\d+)ms$/.exec(text);
  if (match === null) throw new Error(`not a Go duration: ${text}`);
  if (match[4] !== undefined) return Number(match[4]);
  return (
    Number(match[1] ?? 0) * 3_600_000 + Number(match[2] ?? 0) * 60_000 + Number(match[3]) * 1000
  );
}

function limitHeaders(res: WireResponse, kind: 'requests' | 'tokens'): [number, number, number] {
  return [
    Number(res.headers[`x-ratelimit-limit-${kind}`]),
    Number(res.headers[`x-ratelimit-remaining-${kind}`]),
    parseGoDuration(String(res.headers[`x-ratelimit-reset-${kind}`])),
  ];
}

describe('formatGoDuration', () => {
  it('prints durations the way Go (and OpenAI) do', () => {
    expect(
      [0, 120, 999.2, 1000, 1500, 60_000, 360_000, 3_600_000, 3_723_004].map((ms) =>
        formatGoDuration(ms),
      ),
    ).toEqual(['0s', '120ms', '1s', '1s', '1.5s', '1m0s', '6m0s', '1h0m0s', '1h2m3.004s']);
  });
});

describe('rate limits', () => {
  it('refuses requests over the RPM with 429, retry hints and parseable x-ratelimit headers', async () => {
    let now = 0;
    const sim = await createSimulator({ limits: { rpm: 60 }, clock: () => now });
    try {
      const ok = await send(sim.url, '/chat/completions', { body: chatBody('a') });
      expect(ok.status).toBe(200);
      expect(limitHeaders(ok, 'requests')).toEqual([60, 0, 1000]);
      expect(ok.headers['x-ratelimit-reset-requests']).toBe('1s');

      const refused = await send(sim.url, '/chat/completions', { body: chatBody('b') });
      expect(refused.status).toBe(429);
      expect(JSON.parse(refused.body).error).toMatchObject({
        type: 'requests',
        code: 'rate_limit_exceeded',
        param: null,
      });
      expect(refused.headers['retry-after']).toBe('1');
      expect(refused.headers['retry-after-ms']).toBe('1000');
      expect(limitHeaders(refused, 'requests')).toEqual([60, 0, 1000]);
      expect(refused.headers['x-ratelimit-limit-tokens']).toBeUndefined();

      now = 400;
      const sooner = await send(sim.url, '/chat/completions', { body: chatBody('c') });
      expect([
        sooner.status,
        sooner.headers['retry-after'],
        sooner.headers['retry-after-ms'],
      ]).toEqual([429, '1', '600']);
      expect(sooner.headers['x-ratelimit-reset-requests']).toBe('600ms');

      now = 1000;
      expect((await send(sim.url, '/chat/completions', { body: chatBody('d') })).status).toBe(200);
      expect(sim.stats().rateLimited).toBe(2);
      expect(sim.requests.map((r) => r.status)).toEqual([200, 429, 429, 200]);
    } finally {
      await sim.close();
    }
  });

  it('allows a burst of one second of refill, then spaces requests evenly', async () => {
    let now = 0;
    const sim = await createSimulator({ limits: { rpm: 600 }, clock: () => now });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 11; i++) statuses.push((await send(sim.url, '/models')).status);
      for (let i = 0; i < 11; i++)
        statuses.push(
          (await send(sim.url, '/embeddings', { body: { model: 'm', input: 'x', dimensions: 2 } }))
            .status,
        );
      // /v1/models is never limited; embeddings are.
      expect(statuses).toEqual([...Array(11).fill(200), ...Array(10).fill(200), 429]);
      const refused = sim.requests.at(-1)!;
      expect(refused.status).toBe(429);
      now = 100;
      expect(
        (await send(sim.url, '/embeddings', { body: { model: 'm', input: 'x', dimensions: 2 } }))
          .status,
      ).toBe(200);
    } finally {
      await sim.close();
    }
  });

  it('charges prompt tokens + max_tokens x n against the TPM at admission', async () => {
    let now = 0;
    const sim = await createSimulator({ limits: { tpm: 6000, rpm: 6000 }, clock: () => now });
    try {
      // 8 prompt tokens (3 + 4 + ceil(1/4)) + 50 max_tokens = 58 of a 100-token (one second) bucket.
      const body = chatBody('x', { max_tokens: 50 });
      const ok = await send(sim.url, '/chat/completions', { body });
      expect(ok.status).toBe(200);
      expect(limitHeaders(ok, 'tokens')).toEqual([6000, 42, 580]);
      expect(limitHeaders(ok, 'requests')).toEqual([6000, 99, 10]);

      const refused = await send(sim.url, '/chat/completions', { body });
      expect(refused.status).toBe(429);
      expect(JSON.parse(refused.body).error).toMatchObject({
        type: 'tokens',
        code: 'rate_limit_exceeded',
      });
      expect([refused.headers['retry-after'], refused.headers['retry-after-ms']]).toEqual([
        '1',
        '160',
      ]);

      // A refused request spends nothing: the request bucket still holds 99.
      expect(limitHeaders(refused, 'requests')).toEqual([6000, 99, 10]);
      now = 160;
      expect((await send(sim.url, '/chat/completions', { body })).status).toBe(200);
    } finally {
      await sim.close();
    }
  });

  it('admits a request larger than the burst when the bucket is full, then makes later ones wait', async () => {
    const now = 0;
    const sim = await createSimulator({ limits: { tpm: 600 }, clock: () => now });
    try {
      const big = chatBody('x', { max_tokens: 100 }); // 108 tokens against a 10-token burst
      expect((await send(sim.url, '/chat/completions', { body: big })).status).toBe(200);
      const refused = await send(sim.url, '/chat/completions', {
        body: chatBody('y', { max_tokens: 1 }),
      });
      // Level is 10 - 108 = -98; a 9-token request waits for 107 tokens at 0.01 per ms.
      expect(refused.headers['retry-after-ms']).toBe('10700');
      expect(refused.headers['retry-after']).toBe('11');
    } finally {
      await sim.close();
    }
  });

  it('setOptions changes limits live with fresh buckets', async () => {
    const now = 0;
    const sim = await createSimulator({ clock: () => now });
    try {
      expect(
        (await send(sim.url, '/chat/completions', { body: chatBody('a') })).headers[
          'x-ratelimit-limit-requests'
        ],
      ).toBeUndefined();
      sim.setOptions({ limits: { rpm: 1 } });
      expect((await send(sim.url, '/chat/completions', { body: chatBody('a') })).status).toBe(200);
      const refused = await send(sim.url, '/chat/completions', { body: chatBody('a') });
      expect([
        refused.status,
        refused.headers['retry-after'],
        refused.headers['x-ratelimit-reset-requests'],
      ]).toEqual([429, '60', '1m0s']);
      sim.setOptions({ limits: {} });
      expect((await send(sim.url, '/chat/completions', { body: chatBody('a') })).status).toBe(200);
    } finally {
      await sim.close();
    }
  });
});
