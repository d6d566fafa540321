// D2 and D3 (adversarial trial) through the supervisor: a response's rate-limit headers and
// `usage` are hints from the server, and impossible ones must not stall a lane or poison counters.
import { describe, expect, it } from 'vitest';
import type { Usage } from '../src/protocol/openai.js';
import { createHarness, useSupervisorHarness } from './helpers/supervisor-harness.js';

/** The documented bound of `trustedUsage` (token-estimate.ts). */
const MAX_TOKENS_PER_CALL = 10_000_000;

useSupervisorHarness();

describe('supervisor: impossible server hints', () => {
  it('waits out an hour-and-a-half reset only as long as the retry-after cap', async () => {
    const h = createHarness({ retryAfterCapMs: 60_000, timeoutMs: 600_000 });
    const first = h.call();
    await h.settle();
    // `x-ratelimit-remaining-requests: 0` with `x-ratelimit-reset-requests: 1h30m`.
    h.dispatcher.succeed(
      h.dispatcher.last().id,
      {},
      { rateLimit: { remainingRequests: 0, resetRequestsMs: 5_400_000 } },
    );
    await h.settle();
    expect(first.state).toBe('fulfilled');
    const second = h.call();
    await h.settle();
    expect(h.dispatcher.dispatched).toHaveLength(1);
    await h.advance(60_000);
    expect(h.dispatcher.dispatched).toHaveLength(2);
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(second.state).toBe('fulfilled');
    expect(second.value?.waitedMs).toBe(60_000);
  });

  it.each<[string, Partial<Usage>]>([
    ['Infinity (1e400)', { prompt_tokens: 5, completion_tokens: 5, total_tokens: Infinity }],
    ['1e12', { prompt_tokens: 1e12, completion_tokens: 5, total_tokens: 1e12 + 5 }],
    ['negative', { prompt_tokens: -500, completion_tokens: -500, total_tokens: -1_000 }],
    ['fractional', { prompt_tokens: 2.5, completion_tokens: 5, total_tokens: 7.5 }],
    [
      'above the bound',
      { prompt_tokens: 5, completion_tokens: 5, total_tokens: MAX_TOKENS_PER_CALL + 1 },
    ],
  ])('treats %s usage as unknown: TPM keeps flowing, no counter moves', async (_, usage) => {
    // 60,000 TPM with a one-second burst: 1,000 tokens a second; each call reserves 106.
    const h = createHarness({
      lanes: [{ tpm: 60_000 }],
      burstMs: 1_000,
      tokenCounter: (text) => text.length,
      concurrency: 20,
      timeoutMs: 30_000,
    });
    const body = { messages: [{ role: 'user', content: 'hi' }], max_tokens: 100 };
    const calls = Array.from({ length: 20 }, () => h.call({ body }));
    const completes: unknown[] = [];
    h.events.on('complete', (event) => completes.push(event.usage));
    for (let round = 0; round < 10; round++) {
      await h.settle();
      for (const id of h.dispatcher.openIds())
        h.dispatcher.succeed(id, {}, { usage: usage as Usage });
      await h.advance(1_000);
    }
    expect(calls.map((call) => call.state)).toEqual(calls.map(() => 'fulfilled'));
    expect(calls.every((call) => call.value?.usage === undefined)).toBe(true);
    expect(completes).toEqual(calls.map(() => undefined));
    expect(h.supervisor.stats()).toMatchObject({ promptTokens: 0, completionTokens: 0 });
    // Every reservation stood at its estimate and has refilled since.
    expect((await h.bucket.stats())[0]?.availableTokens).toBe(1_000);
  });

  it('still settles and counts usage that can be true', async () => {
    const h = createHarness({ lanes: [{ tpm: 60_000 }], tokenCounter: (text) => text.length });
    const call = h.call({ body: { messages: [{ role: 'user', content: 'hi' }], max_tokens: 100 } });
    await h.settle();
    const usage = { prompt_tokens: 0, completion_tokens: MAX_TOKENS_PER_CALL, total_tokens: 10 };
    h.dispatcher.succeed(h.dispatcher.last().id, {}, { usage });
    await h.settle();
    expect(call.value?.usage).toEqual(usage);
    expect(h.supervisor.stats()).toMatchObject({
      promptTokens: 0,
      completionTokens: MAX_TOKENS_PER_CALL,
    });
    // Embeddings report no completion tokens: still usage.
    const embed = h.call({ body: { input: 'hi' } });
    await h.settle();
    h.dispatcher.succeed(
      h.dispatcher.last().id,
      {},
      {
        usage: { prompt_tokens: 2, total_tokens: 2 } as Usage,
      },
    );
    await h.settle();
    expect(embed.value?.usage).toEqual({ prompt_tokens: 2, total_tokens: 2 });
    expect(h.supervisor.stats().promptTokens).toBe(2);
  });
});
