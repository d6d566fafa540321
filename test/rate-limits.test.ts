/**
 * Rate limits, measured against a simulator that enforces them. These tests run in real time
 * (about 15 s each) because the claim is about real pacing; they assert on rates computed from
 * the simulator's own request log, not on client-side counters.
 */
import type { SimRequestLogEntry } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { describe, expect, it } from 'vitest';
import { createVolley } from 'volley';

const MODEL = 'volley-sim-1';

function prompt(i: number, extra: Record<string, unknown> = {}) {
  return { messages: [{ role: 'user' as const, content: `rate test ${i}` }], ...extra };
}

/** Requests per minute over the span of the accepted requests in the log. */
function acceptedPerMinute(log: readonly SimRequestLogEntry[]): {
  count: number;
  spanMs: number;
  perMinute: number;
} {
  const accepted = log.filter((entry) => entry.status === 200);
  const times = accepted.map((entry) => entry.receivedAt).sort((a, b) => a - b);
  const spanMs = (times.at(-1) ?? 0) - (times[0] ?? 0);
  return { count: accepted.length, spanMs, perMinute: ((accepted.length - 1) * 60_000) / spanMs };
}

describe('rate limits', () => {
  it('holds 6,000 RPM within 5% over 15 s with at most 0.5% 429s', async () => {
    const sim = await createSimulator({ limits: { rpm: 6000 }, logBodies: false });
    const volley = await createVolley({
      endpoints: [{ baseUrl: sim.url, rpm: 6000 }],
      model: MODEL,
      concurrency: 64,
      logger: false,
    });
    try {
      const results = await volley.map(
        Array.from({ length: 1_600 }, (_, i) => i),
        (i) => volley.chat(prompt(i)),
      );
      expect(results.every((result) => result.ok)).toBe(true);
      const { spanMs, perMinute } = acceptedPerMinute(sim.requests);
      expect(spanMs).toBeGreaterThanOrEqual(15_000);
      expect(Math.abs(perMinute - 6000) / 6000).toBeLessThan(0.05);
      const { requests, rateLimited } = sim.stats();
      expect(rateLimited / requests).toBeLessThanOrEqual(0.005);
      const [lane] = await volley.limiterStats();
      expect(lane?.totalWaitMs).toBeGreaterThan(0);
    } finally {
      await volley.close();
      await sim.close();
    }
  }, 60_000);

  it('with the limit unknown, adapts from 429 headers, finishes every call, never jumps a retry-after', async () => {
    const sim = await createSimulator({ limits: { rpm: 1200 } });
    const volley = await createVolley({
      endpoints: [{ baseUrl: sim.url }],
      model: MODEL,
      concurrency: 32,
      logger: false,
    });
    try {
      const results = await volley.map(
        Array.from({ length: 200 }, (_, i) => i),
        (i) => volley.chat(prompt(i)),
      );
      expect(results.every((result) => result.ok)).toBe(true);
      expect(sim.stats().rateLimited).toBeGreaterThan(0);
      // Every retry of a request that got a 429 arrived after the wait that 429 asked for.
      const byBody = new Map<string, SimRequestLogEntry[]>();
      for (const entry of sim.requests) {
        const key = JSON.stringify(entry.body);
        byBody.set(key, [...(byBody.get(key) ?? []), entry]);
      }
      let checked = 0;
      for (const attempts of byBody.values()) {
        for (let i = 1; i < attempts.length; i++) {
          const previous = attempts[i - 1] as SimRequestLogEntry;
          if (previous.status !== 429 || previous.retryAfterMs === undefined) continue;
          checked++;
          const waited =
            (attempts[i] as SimRequestLogEntry).receivedAt -
            (previous.headersSentAt ?? previous.receivedAt);
          expect(waited).toBeGreaterThanOrEqual(previous.retryAfterMs - 1);
        }
      }
      expect(checked).toBeGreaterThan(0);
      // After the first answers the lane paces itself at the announced limit: 429s stay rare.
      expect(sim.stats().rateLimited).toBeLessThan(200);
    } finally {
      await volley.close();
      await sim.close();
    }
  }, 60_000);

  it('holds a TPM limit within 5% with responses of varying length', async () => {
    const sim = await createSimulator({
      limits: { tpm: 60_000, tokenAccounting: 'usage' },
      logBodies: false,
    });
    const volley = await createVolley({
      endpoints: [{ baseUrl: sim.url, tpm: 60_000 }],
      model: MODEL,
      concurrency: 16,
      logger: false,
    });
    try {
      const started = performance.now();
      const results = await volley.map(
        Array.from({ length: 300 }, (_, i) => i),
        (i) => volley.chat(prompt(i, { max_tokens: 20 + ((i * 37) % 100) })),
      );
      expect(results.every((result) => result.ok)).toBe(true);
      const spanMs = performance.now() - started;
      expect(spanMs).toBeGreaterThanOrEqual(15_000);
      const { promptTokens, completionTokens, rateLimited, requests } = sim.stats();
      // The first second's burst is the server's, not the rate: leave it out.
      const tokensPerMinute = ((promptTokens + completionTokens - 1_000) * 60_000) / spanMs;
      expect(Math.abs(tokensPerMinute - 60_000) / 60_000).toBeLessThan(0.05);
      expect(rateLimited / requests).toBeLessThan(0.02);
    } finally {
      await volley.close();
      await sim.close();
    }
  }, 60_000);

  it('settling reservations against usage raises throughput far above reserving max_tokens', async () => {
    // max_tokens 600 but answers of ~10–100 tokens. Reserving max_tokens for good, 60,000 TPM
    // admits 1.6 requests per second; settled against usage, many times that.
    const sim = await createSimulator({
      limits: { tpm: 60_000, tokenAccounting: 'usage' },
      logBodies: false,
    });
    const volley = await createVolley({
      endpoints: [{ baseUrl: sim.url, tpm: 60_000 }],
      model: MODEL,
      concurrency: 8,
      logger: false,
    });
    try {
      const started = performance.now();
      const results = await volley.map(
        Array.from({ length: 60 }, (_, i) => i),
        (i) => volley.chat(prompt(i, { max_tokens: 600 })),
      );
      const seconds = (performance.now() - started) / 1000;
      expect(results.every((result) => result.ok)).toBe(true);
      const withoutRefunds = 60_000 / 60 / 610; // requests per second if every reservation stuck
      expect(60 / seconds).toBeGreaterThan(5 * withoutRefunds);
    } finally {
      await volley.close();
      await sim.close();
    }
  }, 60_000);

  it('paces a model with limits of its own separately from the endpoint', async () => {
    const sim = await createSimulator({ logBodies: false });
    const volley = await createVolley({
      endpoints: [{ baseUrl: sim.url, models: { 'slow-model': { rpm: 120 } } }],
      model: MODEL,
      logger: false,
    });
    try {
      const started = performance.now();
      const fast = await Promise.all(Array.from({ length: 50 }, (_, i) => volley.chat(prompt(i))));
      const fastSeconds = (performance.now() - started) / 1000;
      const slowStarted = performance.now();
      await Promise.all(
        Array.from({ length: 6 }, (_, i) => volley.chat({ ...prompt(i), model: 'slow-model' })),
      );
      const slowSeconds = (performance.now() - slowStarted) / 1000;
      expect(fast).toHaveLength(50);
      expect(fastSeconds).toBeLessThan(2);
      // 120 RPM is 2 per second after a burst of 1: six calls take at least 2.5 s.
      expect(slowSeconds).toBeGreaterThanOrEqual(2.4);
    } finally {
      await volley.close();
      await sim.close();
    }
  }, 30_000);
});
