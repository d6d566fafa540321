/**
 * Adversarial-trial defects D2 and D3 end to end: createVolley against a real node:http server
 * (port 0) whose rate-limit headers or `usage` cannot be true. Every call must still finish
 * promptly, no timer may overflow into a busy loop, and no counter may show the impossible usage.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createVolley, fanOut } from 'volley';

interface Hostile {
  url: string;
  requests: number;
  close(): Promise<void>;
}

/** Answers every chat request with `usageJson` (raw JSON text) and the given headers. */
async function hostileServer(usageJson: string, headers: Record<string, string>): Promise<Hostile> {
  const state = { requests: 0 };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      state.requests++;
      res.writeHead(200, { 'content-type': 'application/json', ...headers });
      res.end(
        `{"id":"c${state.requests}","object":"chat.completion","created":0,"model":"m",` +
          `"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],` +
          `"usage":${usageJson}}`,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    get requests() {
      return state.requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const messages = (i: number) => [{ role: 'user' as const, content: `line ${i}` }];

describe('a server whose hints cannot be true', () => {
  let warnings: string[];
  const onWarning = (warning: Error) => warnings.push(warning.name);
  beforeEach(() => {
    warnings = [];
    process.on('warning', onWarning);
  });
  afterEach(() => {
    process.off('warning', onWarning);
  });

  it.each([
    ['Infinity (1e400)', '{"prompt_tokens":5,"completion_tokens":1,"total_tokens":1e400}'],
    ['1e12', '{"prompt_tokens":1000000000000,"completion_tokens":1,"total_tokens":1000000000001}'],
    ['negative', '{"prompt_tokens":-5000,"completion_tokens":-5000,"total_tokens":-10000}'],
  ])(
    '%s usage: all 20 calls go under a TPM limit, no counter shows it',
    async (_, usage) => {
      const server = await hostileServer(usage, {});
      const volley = await createVolley({
        endpoints: [{ baseUrl: server.url, tpm: 60_000 }],
        model: 'm',
        timeoutMs: 5_000,
        logger: false,
      });
      try {
        const results = await volley.map(
          Array.from({ length: 20 }, (_, i) => i),
          (i) => volley.chat({ messages: messages(i), max_tokens: 10 }),
        );
        expect(results.filter((result) => result.ok)).toHaveLength(20);
        expect(server.requests).toBe(20);
        const stats = volley.stats();
        expect(stats.promptTokens).toBe(0);
        expect(stats.completionTokens).toBe(0);
        const fanned = await fanOut(volley, [{ messages: messages(99), max_tokens: 10 }]);
        expect(fanned.cost).toMatchObject({ calls: 1, promptTokens: 0, totalTokens: 0 });
      } finally {
        await volley.close();
        await server.close();
      }
    },
    20_000,
  );

  it.each([
    ['a limit of 0', { 'x-ratelimit-limit-requests': '0', 'x-ratelimit-limit-tokens': '0' }],
    [
      'a reset of 999999999h',
      { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '999999999h' },
    ],
    [
      'a reset of 1h30m',
      { 'x-ratelimit-remaining-tokens': '0', 'x-ratelimit-reset-tokens': '1h30m' },
    ],
  ])(
    '%s: calls pace at the retry-after cap, no timer overflows',
    async (_, headers) => {
      const server = await hostileServer(
        '{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}',
        headers,
      );
      const volley = await createVolley({
        endpoints: [{ baseUrl: server.url }],
        model: 'm',
        concurrency: 1,
        retryAfterCapMs: 100,
        timeoutMs: 3_000,
        logger: false,
      });
      try {
        const started = performance.now();
        for (let i = 0; i < 5; i++) await volley.chat({ messages: messages(i) });
        expect(performance.now() - started).toBeLessThan(2_500);
        expect(server.requests).toBe(5);
        expect(warnings).not.toContain('TimeoutOverflowWarning');
      } finally {
        await volley.close();
        await server.close();
      }
    },
    20_000,
  );
});
