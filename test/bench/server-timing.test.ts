/**
 * The simulator engine's per-request truth, as its contract gives it: a header
 * `x-volley-sim-timing: {json}` on JSON answers and a final SSE comment
 * `: x-volley-sim-timing {json}` before `data: [DONE]`. A real HTTP server here speaks exactly
 * that, so the parsing is checked before the engine itself is merged; the engine's acceptance
 * tests then compare `metrics.ttft_ms` with `metrics.server_ttft_ms`.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBenchmark } from '@volley/bench';
import { describe, expect, it } from 'vitest';
import { options, prompts } from './helpers.js';

const TIMING = {
  queuedMs: 4,
  prefillMs: 6,
  ttftMs: 12.5,
  tpotMs: 3.25,
  e2eMs: 40,
  outputTokens: 3,
  runningAtAdmission: 1,
};

function chunk(delta: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  return `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: null }], ...extra })}\n\n`;
}

describe('server timing from the simulator engine contract', () => {
  it('reads the header (JSON) and the final SSE comment (streams) into server_* metrics', async () => {
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const stream = (JSON.parse(body) as { stream?: boolean }).stream === true;
        if (!stream) {
          res.writeHead(200, {
            'content-type': 'application/json',
            'x-volley-sim-timing': JSON.stringify(TIMING),
          });
          res.end(
            JSON.stringify({
              id: 'x',
              object: 'chat.completion',
              choices: [
                {
                  index: 0,
                  message: { role: 'assistant', content: 'a b c' },
                  finish_reason: 'stop',
                },
              ],
              usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
            }),
          );
          return;
        }
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(chunk({ role: 'assistant', content: '' }));
        for (const word of ['a', ' b', ' c']) res.write(chunk({ content: word }));
        res.write(
          `data: ${JSON.stringify({ id: 'x', choices: [], usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 } })}\n\n`,
        );
        res.write(`: x-volley-sim-timing ${JSON.stringify(TIMING)}\n\n`);
        res.end('data: [DONE]\n\n');
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    try {
      for (const stream of [true, false]) {
        const bench = await createBenchmark(options(url, await prompts(6, 3, stream)));
        try {
          const r = await bench.run({
            ratePerSecond: Infinity,
            arrival: 'constant',
            maxConcurrency: 2,
          });
          expect(r.completed).toBe(6);
          expect(r.metrics.server_ttft_ms.count).toBe(6);
          expect(r.metrics.server_ttft_ms.mean).toBeCloseTo(12.5, 3);
          expect(r.metrics.server_tpot_ms.mean).toBeCloseTo(3.25, 3);
          expect(r.metrics.server_queue_ms.mean).toBeCloseTo(4, 3);
          expect(r.metrics.server_e2e_ms.mean).toBeCloseTo(40, 3);
          expect(r.total_output_tokens).toBe(18);
          if (stream) {
            // The role-only chunk is the first chunk, not the first token.
            expect(r.metrics.first_chunk_ms.count).toBe(6);
            expect(r.metrics.ttft_ms.count).toBe(6);
            expect(r.metrics.tpot_ms.count).toBe(6);
          }
        } finally {
          await bench.close();
        }
      }
    } finally {
      server.close();
    }
  }, 60_000);
});
