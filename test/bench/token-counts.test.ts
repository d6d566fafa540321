/**
 * Output tokens come from the server's `usage`, and a sample of answers is re-counted with the
 * client's tokenizer: a server whose count disagrees gets a warning in the result, and a server
 * that sends no usage gets its tokens counted another way, with a warning saying so. The server
 * here is a real HTTP server answering "hello world again" (3 tokens in o200k) and claiming 6.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBenchmark } from '@volley/bench';
import { describe, expect, it } from 'vitest';
import { options, prompts, writeChatStream } from './helpers.js';

const WORDS = ['hello', ' world', ' again'];
const CLAIMED = 6;

async function server(sendUsage: boolean) {
  const usage = { prompt_tokens: 5, completion_tokens: CLAIMED, total_tokens: 5 + CLAIMED };
  const http = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if ((JSON.parse(body) as { stream?: boolean }).stream !== true) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            id: 'x',
            object: 'chat.completion',
            choices: [
              {
                index: 0,
                message: { role: 'assistant', content: WORDS.join('') },
                finish_reason: 'stop',
              },
            ],
            ...(sendUsage ? { usage } : {}),
          }),
        );
        return;
      }
      writeChatStream(res, WORDS, sendUsage ? usage : undefined);
    });
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: () => new Promise<void>((resolve) => http.close(() => resolve())),
  };
}

describe('token counts', () => {
  for (const stream of [true, false]) {
    it(`take the server's usage and warn when a re-count disagrees (${stream ? 'streaming' : 'JSON'})`, async () => {
      const s = await server(true);
      const bench = await createBenchmark(options(s.url, await prompts(20, 8, stream)));
      try {
        const r = await bench.run({
          ratePerSecond: Infinity,
          arrival: 'constant',
          maxConcurrency: 4,
        });
        expect(r.completed).toBe(20);
        expect(r.tokens.output_source.usage).toBe(20);
        expect(r.total_output_tokens).toBe(20 * CLAIMED);
        const check = r.tokens.recount_check;
        expect(check.sampled).toBeGreaterThan(0);
        expect(check.usage_total).toBe(check.sampled * CLAIMED);
        expect(check.recount_total).toBe(check.sampled * WORDS.length);
        expect(check.relative_difference).toBeCloseTo(-0.5, 6);
        expect(check.warning).toMatch(/differ by -50.0%/);
        expect(r.warnings).toContain(check.warning);
      } finally {
        await bench.close();
        await s.close();
      }
    }, 30_000);
  }

  it('count streamed tokens another way, and say how, when the server sends no usage', async () => {
    const s = await server(false);
    // Every 4th answer re-counted with the tokenizer, the others counted by content events.
    const bench = await createBenchmark({
      ...options(s.url, await prompts(40, 8, true)),
      recountStride: 4,
    });
    try {
      const r = await bench.run({
        ratePerSecond: Infinity,
        arrival: 'constant',
        maxConcurrency: 2,
      });
      expect(r.completed).toBe(40);
      expect(r.tokens.output_source).toEqual({ usage: 0, recount: 10, content_events: 30 });
      expect(r.total_output_tokens).toBe(40 * WORDS.length);
      expect(r.warnings.some((w) => /30 successful requests had no usage/.test(w))).toBe(true);
    } finally {
      await bench.close();
      await s.close();
    }
  }, 30_000);
});
