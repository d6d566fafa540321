/**
 * How one attempt ends on the wire, in both modes: cancelled mid-flight, over the size cap,
 * truncated or garbage responses (retried, never returned as success), and stalled streams.
 */
import type { FaultKind, Simulator } from '@volley/sim';
import { createSimulator, simulatedChatContent } from '@volley/sim';
import { afterEach, describe, expect, it } from 'vitest';
import type { VolleyOptions } from 'volley';
import { createVolley, ErrorCode } from 'volley';

const MODES = ['async', 'threads'] as const;

/** Faults the first request whose prompt contains `marker`, and lets its retries through. */
function faultOnce(
  marker: string,
  kind: FaultKind,
): (request: { body: unknown }) => FaultKind | undefined {
  let fired = false;
  return ({ body }) => {
    if (fired || !JSON.stringify(body).includes(marker)) return undefined;
    fired = true;
    return kind;
  };
}

describe.each(MODES)('%s mode', (mode) => {
  let sim: Simulator | undefined;
  afterEach(async () => {
    await sim?.close();
    sim = undefined;
  });

  async function start(
    simOptions: Parameters<typeof createSimulator>[0],
    options: VolleyOptions = {},
  ) {
    sim = await createSimulator(simOptions);
    return createVolley({
      mode,
      endpoints: [{ baseUrl: sim.url }],
      model: 'volley-sim-1',
      logger: false,
      ...options,
    });
  }

  it('an abort mid-flight cancels the HTTP request at the server', async () => {
    const volley = await start({ latency: { tokensPerSecond: 20 } });
    const controller = new AbortController();
    const call = volley.chat(
      { messages: [{ role: 'user', content: 'a long answer' }], max_tokens: 200 },
      {
        signal: controller.signal,
        onDelta: () => controller.abort(),
      },
    );
    await expect(call).rejects.toMatchObject({ code: ErrorCode.ABORTED });
    await volley.close();
    await expect.poll(() => sim?.requests.at(-1)?.aborted).toBe(true);
  });

  it('a response over the size cap fails with RESPONSE_TOO_LARGE and is not retried', async () => {
    const volley = await start(
      { faultFor: () => 'huge-sse-line' },
      { maxResponseBytes: 1024 * 1024 },
    );
    await expect(
      volley.chat({ messages: [{ role: 'user', content: 'json' }] }),
    ).rejects.toMatchObject({
      code: ErrorCode.RESPONSE_TOO_LARGE,
    });
    await expect(
      volley.chat({ messages: [{ role: 'user', content: 'sse' }] }, { stream: true }),
    ).rejects.toMatchObject({
      code: ErrorCode.RESPONSE_TOO_LARGE,
    });
    expect(sim?.stats().requests).toBe(2);
    await volley.close();
  });

  it.each(['truncate-stream', 'bad-json-event', 'reset-mid-stream'] as const)(
    'a %s is retried and the complete answer returned, counted as possibly billed',
    async (kind) => {
      const volley = await start(
        { faultFor: faultOnce('flaky', kind) },
        { backoff: { baseDelayMs: 1 } },
      );
      const body = {
        model: 'volley-sim-1',
        messages: [{ role: 'user' as const, content: 'flaky stream' }],
      };
      const reply = await volley.chat(body, { stream: true });
      expect(reply.choices[0]?.message.content).toBe(simulatedChatContent(body).content);
      expect(volley.stats()).toMatchObject({ retries: 1, extraBilledCalls: 1, succeeded: 1 });
      await volley.close();
    },
  );

  it.each(['html-200', 'empty-200', 'error-200'] as const)(
    'a %s is never returned as success',
    async (kind) => {
      const volley = await start(
        { faultFor: faultOnce('garbage', kind) },
        { backoff: { baseDelayMs: 1 } },
      );
      const body = {
        model: 'volley-sim-1',
        messages: [{ role: 'user' as const, content: 'garbage please' }],
      };
      const reply = await volley.chat(body);
      expect(reply.choices[0]?.message.content).toBe(simulatedChatContent(body).content);
      expect(volley.stats().retries).toBe(1);
      await volley.close();
    },
  );

  it('a stalled stream ends at the idle timeout even when the server sends keep-alive comments', async () => {
    const volley = await start(
      { faultFor: () => ({ kind: 'stall-stream', keepaliveMs: 50 }) },
      { idleTimeoutMs: 400, maxRetries: 0, maxAmbiguousRetries: 0 },
    );
    const started = performance.now();
    const call = volley.chat({ messages: [{ role: 'user', content: 'stall' }] }, { stream: true });
    await expect(call).rejects.toMatchObject({
      code: ErrorCode.RETRIES_EXHAUSTED,
      cause: { code: ErrorCode.TIMEOUT },
    });
    expect(performance.now() - started).toBeLessThan(5_000);
    await volley.close();
  });
});
