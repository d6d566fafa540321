/**
 * `createVolley({ metrics: true })`: the registry an application scrapes agrees with `stats()`
 * after a mix of successes, failures, retries and streamed calls, in both modes.
 */

import { readFile } from 'node:fs/promises';
import type { Simulator } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVolley } from 'volley';
import { allLabelValues, byLabel, parseScrape, poisonAndFlaky, sumOf } from './metrics-helpers.js';

const CANARY_KEY = 'sk-canary-metrics-5f0e1d2c3b4a';

describe('volley.metrics', () => {
  let sim: Simulator;

  beforeAll(async () => {
    sim = await createSimulator({
      apiKey: CANARY_KEY,
      faultFor: poisonAndFlaky(),
    });
  });
  afterAll(() => sim.close());

  for (const mode of ['async', 'threads'] as const) {
    it(`counts what stats() counts (${mode})`, async () => {
      const volley = await createVolley({
        endpoints: [{ baseUrl: `${sim.url}?key=${CANARY_KEY}`, apiKey: CANARY_KEY }],
        model: 'volley-sim-1',
        mode,
        threads: 2,
        maxRetries: 3,
        backoff: { baseDelayMs: 1, maxDelayMs: 5 },
        logger: false,
        metrics: true,
      });
      try {
        const calls: Array<Promise<unknown>> = [];
        for (let i = 0; i < 200; i++) {
          const word = i % 10 === 3 ? 'poison' : i % 10 === 5 ? 'flaky' : 'plain';
          const content = `${word} question ${i} (${mode})`;
          calls.push(
            volley.chat(
              { messages: [{ role: 'user', content }], max_tokens: 8 },
              { stream: i % 2 === 0 },
            ),
          );
        }
        await Promise.allSettled(calls);
        const stats = volley.stats();
        const registry = volley.metrics;
        expect(registry).toBeInstanceOf(Registry);
        const scrape = parseScrape(await (registry as Registry).metrics());

        const outcomes = byLabel(scrape, 'volley_requests_total', 'outcome');
        expect(outcomes.success).toBe(stats.succeeded);
        expect(stats.succeeded).toBe(180);
        expect(sumOf(scrape, 'volley_requests_total') - (outcomes.success ?? 0)).toBe(stats.failed);
        expect(outcomes.VOLLEY_ERR_HTTP).toBe(20);
        expect(sumOf(scrape, 'volley_retries_total')).toBe(stats.retries);
        expect(stats.retries).toBe(20);
        expect(sumOf(scrape, 'volley_tokens_total', { direction: 'input' })).toBe(
          stats.promptTokens,
        );
        expect(sumOf(scrape, 'volley_tokens_total', { direction: 'output' })).toBe(
          stats.completionTokens,
        );
        expect(sumOf(scrape, 'volley_attempts_total')).toBe(
          stats.succeeded + stats.failed + stats.retries,
        );
        expect(sumOf(scrape, 'volley_request_duration_seconds')).toBe(stats.succeeded);
        expect(sumOf(scrape, 'volley_time_to_first_token_seconds')).toBeGreaterThan(0);
        expect(sumOf(scrape, 'volley_extra_billed_calls_total')).toBe(stats.extraBilledCalls);
        expect(sumOf(scrape, 'volley_in_flight')).toBe(0);
        expect(sumOf(scrape, 'volley_queued')).toBe(0);
        expect(sumOf(scrape, 'volley_limiter_waits_total')).toBe(0);
        const endpoints = new Set(
          scrape.get('volley_requests_total')?.metrics.map((s) => s.labels?.endpoint),
        );
        expect([...endpoints]).toEqual([new URL(sim.url).origin]);
        expect(
          new Set(scrape.get('volley_requests_total')?.metrics.map((s) => s.labels?.model)),
        ).toEqual(new Set(['volley-sim-1']));
        for (const value of allLabelValues(scrape)) expect(value).not.toContain('canary');
        expect(await (registry as Registry).metrics()).not.toContain(CANARY_KEY);
      } finally {
        await volley.close();
      }
    });
  }

  it('adds to an application registry, and attaches nothing without the option', async () => {
    const registry = new Registry();
    const withMetrics = await createVolley({ logger: false, metrics: { registry } });
    const without = await createVolley({ logger: false });
    try {
      await withMetrics.chat({ messages: [{ role: 'user', content: 'hi' }] });
      expect(withMetrics.metrics).toBe(registry);
      expect(sumOf(parseScrape(await registry.metrics()), 'volley_requests_total')).toBe(1);
      expect(without.metrics).toBeUndefined();
      // A second runtime in the same registry would mix two runtimes' numbers under one name.
      await expect(createVolley({ logger: false, metrics: { registry } })).rejects.toMatchObject({
        code: 'VOLLEY_ERR_INVALID_OPTIONS',
      });
      // The runtime is an event emitter: without metrics, nobody listens to its outcomes.
      const emitter = without as unknown as { listenerCount(event: string): number };
      expect(emitter.listenerCount('complete')).toBe(0);
    } finally {
      await withMetrics.close();
      await without.close();
    }
  });

  it('the example Grafana dashboard queries only metrics the registry has', async () => {
    const volley = await createVolley({ logger: false, metrics: true });
    try {
      const registry = volley.metrics as Registry;
      const dashboard = await readFile(
        new URL('../examples/grafana-dashboard.json', import.meta.url),
        'utf8',
      );
      const names = new Set(
        [...dashboard.matchAll(/\bvolley_[a-z_]+/g)].map(([name]) => name.replace(/_bucket$/, '')),
      );
      expect(names.size).toBeGreaterThan(10);
      for (const name of names) expect(registry.getSingleMetric(name), name).toBeDefined();
    } finally {
      await volley.close();
    }
  });
});
