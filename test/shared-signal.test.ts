/**
 * One AbortController for a whole fan-out: the signal is handed to every call, so the runtime
 * must not add a listener per call (Node would print MaxListenersExceededWarning, a leak warning
 * for what is not a leak), and one abort must still reach every call, queued or in flight.
 */
import { createSimulator } from '@volley/sim';
import { describe, expect, it } from 'vitest';
import { createVolley, ErrorCode } from 'volley';

describe('one signal shared by many calls', () => {
  for (const mode of ['async', 'threads'] as const) {
    it(`${mode}: aborts all 200 calls with no listener warning`, async () => {
      const warnings: string[] = [];
      const onWarning = (warning: Error): void => {
        warnings.push(warning.name);
      };
      process.on('warning', onWarning);
      const sim = await createSimulator({ latency: { tokensPerSecond: 20 } });
      // A rate limit keeps some calls waiting in the token bucket, the rest on the wire.
      const volley = await createVolley({
        mode,
        endpoints: [{ baseUrl: sim.url, rpm: 6_000 }],
        model: 'volley-sim-1',
        concurrency: 64,
        logger: false,
      });
      try {
        const controller = new AbortController();
        const calls = Array.from({ length: 200 }, (_, i) =>
          volley.chat(
            { messages: [{ role: 'user', content: `call ${i}` }], max_tokens: 200 },
            { signal: controller.signal },
          ),
        );
        await new Promise((resolve) => setTimeout(resolve, 300));
        controller.abort();
        const settled = await Promise.allSettled(calls);
        for (const result of settled) {
          expect(result.status).toBe('rejected');
          expect((result as PromiseRejectedResult).reason).toMatchObject({
            code: ErrorCode.ABORTED,
          });
        }
        await new Promise((resolve) => setImmediate(resolve));
        expect(warnings).not.toContain('MaxListenersExceededWarning');
      } finally {
        process.off('warning', onWarning);
        await volley.close();
        await sim.close();
      }
    }, 30_000);
  }
});
