/**
 * `map`, `fanOut` and `withDeadline` settle each item the same way: one exported `Settled` type,
 * `{ ok, index, value | error, latencyMs }`, so code that reads one reads them all.
 */
import { createSimulator } from '@volley/sim';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { ChatCompletion, FanOutValue, Settled } from 'volley';
import { createVolley, fanOut, withDeadline } from 'volley';

describe('one settled-result shape', () => {
  it('map, fanOut and withDeadline return the same shape for successes and failures', async () => {
    const sim = await createSimulator({
      faultFor: ({ body }) =>
        JSON.stringify(body).includes('fail') ? 'status-400-context-length' : undefined,
    });
    const volley = await createVolley({
      endpoints: [{ baseUrl: sim.url }],
      model: 'volley-sim-1',
      logger: false,
    });
    try {
      const ask = (content: string) => ({ messages: [{ role: 'user' as const, content }] });
      const mapped = await volley.map(['ok', 'fail'], (content) => volley.chat(ask(content)));
      const fanned = await fanOut(volley, [ask('ok'), ask('fail')]);
      const deadline = await withDeadline(
        [
          (signal) => volley.chat(ask('ok'), { signal }),
          (signal) => volley.chat(ask('fail'), { signal }),
        ],
        { deadlineMs: 10_000 },
      );
      expectTypeOf(mapped).toEqualTypeOf<Array<Settled<ChatCompletion>>>();
      expectTypeOf(fanned.results).toEqualTypeOf<Array<Settled<FanOutValue>>>();
      expectTypeOf(deadline.results).toEqualTypeOf<Array<Settled<ChatCompletion>>>();
      for (const results of [mapped, fanned.results, deadline.results]) {
        expect(results.map((r) => Object.keys(r).sort())).toEqual([
          ['index', 'latencyMs', 'ok', 'value'],
          ['error', 'index', 'latencyMs', 'ok'],
        ]);
        expect(results.map((r) => [r.ok, r.index])).toEqual([
          [true, 0],
          [false, 1],
        ]);
        expect(results[1]).toMatchObject({ error: { status: 400 } });
      }
    } finally {
      await volley.close();
      await sim.close();
    }
  });
});
