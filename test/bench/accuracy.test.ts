/**
 * Low-load accuracy: against a simulator whose times are known analytically, bench's medians are
 * within 5% of the truth. The simulator sends headers and the role-only chunk after `headersMs`,
 * then one content chunk every 1000 / tokensPerSecond ms, so:
 *   first chunk = headersMs, TTFT = headersMs + gap, TPOT = ITL = gap.
 * The latencies are large (hundreds of ms, 25 ms gaps) so that scheduling noise on a shared
 * machine stays well inside 5%.
 */
import { createBenchmark } from '@volley/bench';
import { createSimulator } from '@volley/sim';
import { describe, expect, it } from 'vitest';
import { options, prompts } from './helpers.js';

const HEADERS_MS = 300;
const TOKENS_PER_SECOND = 40;
const GAP_MS = 1000 / TOKENS_PER_SECOND;

const within5 = (measured: number | null | undefined, truth: number): void => {
  expect(measured).not.toBeNull();
  expect(Math.abs((measured as number) - truth) / truth).toBeLessThan(0.05);
};

describe('volley bench accuracy at low load', () => {
  it('medians of TTFT, first chunk, TPOT and ITL match the simulator within 5%', async () => {
    const sim = await createSimulator({
      latency: { headersMs: HEADERS_MS, tokensPerSecond: TOKENS_PER_SECOND },
    });
    // Two warm-up requests take connection set-up and JIT out of the measured ones.
    const bench = await createBenchmark(
      options(sim.url, await prompts(24, 12), { warmupRequests: 2 }),
    );
    try {
      const r = await bench.run({ ratePerSecond: 4, arrival: 'constant' });
      expect(r.completed).toBe(24);
      expect(r.failed).toBe(0);
      within5(r.metrics.ttft_ms.percentiles.p50, HEADERS_MS + GAP_MS);
      within5(r.median_ttft_ms, HEADERS_MS + GAP_MS);
      within5(r.metrics.first_chunk_ms.percentiles.p50, HEADERS_MS);
      within5(r.median_tpot_ms, GAP_MS);
      within5(r.metrics.itl_per_chunk_ms.percentiles.p50, GAP_MS);
      // The simulator's own log: headers written headersMs after it received each request.
      const server = sim.requests
        .filter((e) => e.path === '/v1/chat/completions')
        .map((e) => (e.headersSentAt as number) - e.receivedAt)
        .sort((a, b) => a - b);
      within5(server[server.length >> 1], HEADERS_MS);
      // Output tokens come from usage, and the re-count agrees within the tolerance.
      expect(r.tokens.output_source.usage).toBe(24);
      expect(r.tokens.recount_check.sampled).toBeGreaterThan(0);
      expect(r.tokens.recount_check.warning).toBeNull();
      // E2E = TTFT + (tokens - 1) gaps, request by request.
      const tokens = r.total_output_tokens / r.completed;
      within5(r.metrics.e2el_ms.mean, HEADERS_MS + GAP_MS * tokens);
    } finally {
      await bench.close();
      await sim.close();
    }
  }, 60_000);

  it('non-streaming runs report E2E only: no TTFT, TPOT or ITL', async () => {
    const sim = await createSimulator({ latency: { headersMs: 50 } });
    const bench = await createBenchmark(options(sim.url, await prompts(10, 8, false)));
    try {
      const r = await bench.run({
        ratePerSecond: Infinity,
        arrival: 'constant',
        maxConcurrency: 2,
      });
      expect(r.completed).toBe(10);
      expect(r.metrics.ttft_ms.count).toBe(0);
      expect(r.median_ttft_ms).toBeNull();
      expect(r.metrics.e2el_ms.count).toBe(10);
      expect(r.median_e2el_ms).toBeGreaterThanOrEqual(50);
      expect(r.metrics.tpot_ms.count).toBe(0);
      // Usage read from the JSON bodies: the simulator's own count of what it generated.
      expect(r.tokens.output_source.usage).toBe(10);
      expect(r.total_output_tokens).toBe(sim.stats().completionTokens);
      expect(r.total_input_tokens).toBe(sim.stats().promptTokens);
      expect(r.metrics.itl_per_chunk_ms.count).toBe(0);
    } finally {
      await bench.close();
      await sim.close();
    }
  }, 60_000);
});
