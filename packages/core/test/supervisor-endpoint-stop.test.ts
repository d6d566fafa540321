import { describe, expect, it } from 'vitest';
import type { VolleyError } from '../src/index.js';
import { ErrorCode } from '../src/index.js';
import { causeCodeOf, codeOf } from './helpers/async.js';
import { createHarness, useSupervisorHarness } from './helpers/supervisor-harness.js';

useSupervisorHarness();

describe('supervisor: auth and quota failures stop the endpoint', () => {
  it('with one endpoint, the call and every queued call reject VOLLEY_ERR_NO_ENDPOINT (cause AUTH)', async () => {
    const h = createHarness({ concurrency: 1 });
    const stopped: Array<{ endpoint: number; error: VolleyError }> = [];
    h.events.on('endpointStopped', (e) => stopped.push(e));
    const calls = [h.call(), h.call(), h.call()];
    await h.settle();
    h.dispatcher.fail(h.dispatcher.last().id, { code: ErrorCode.AUTH, status: 401 });
    await h.settle();
    await h.advance(600_000);
    expect(h.dispatcher.dispatched).toHaveLength(1);
    for (const call of calls) {
      expect(call.state).toBe('rejected');
      expect(codeOf(call.error)).toBe(ErrorCode.NO_ENDPOINT);
      expect(causeCodeOf(call.error)).toBe(ErrorCode.AUTH);
    }
    expect(stopped).toHaveLength(1);
    expect(stopped[0]?.endpoint).toBe(0);
    expect(stopped[0]?.error.code).toBe(ErrorCode.AUTH);
    expect(h.supervisor.stats()).toMatchObject({ failed: 3, queued: 0, inFlight: 0, retries: 0 });
    expect(h.supervisor.stats().byEndpoint[0]?.stopped).toBe(true);
  });

  it('rejects later calls with VOLLEY_ERR_NO_ENDPOINT without dispatching them', async () => {
    const h = createHarness();
    h.call();
    await h.settle();
    h.dispatcher.fail(h.dispatcher.last().id, {
      code: ErrorCode.QUOTA,
      status: 429,
      errorType: 'insufficient_quota',
    });
    await h.settle();
    const late = h.call();
    await h.settle();
    expect(codeOf(late.error)).toBe(ErrorCode.NO_ENDPOINT);
    expect(causeCodeOf(late.error)).toBe(ErrorCode.QUOTA);
    expect(h.dispatcher.dispatched).toHaveLength(1);
  });

  it('does not cool down or count a QUOTA 429 as rate limiting', async () => {
    const h = createHarness({ endpointCount: 2 });
    h.call();
    await h.settle();
    h.dispatcher.fail(h.dispatcher.last().id, { code: ErrorCode.QUOTA, status: 429 });
    await h.settle();
    expect(h.supervisor.stats().rateLimited).toBe(0);
  });

  it('with two endpoints, moves the work to the live one', async () => {
    const h = createHarness({ endpointCount: 2, concurrency: 1 });
    const first = h.call({ body: { n: 1 } });
    const second = h.call({ body: { n: 2 } });
    await h.settle();
    expect(h.dispatcher.last().endpoint).toBe(0);
    h.dispatcher.fail(h.dispatcher.last().id, { code: ErrorCode.AUTH, status: 403 });
    await h.settle();
    expect(h.dispatcher.dispatched).toHaveLength(2);
    expect(h.dispatcher.last()).toMatchObject({ endpoint: 1, body: { n: 1 } });
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(h.dispatcher.last()).toMatchObject({ endpoint: 1, body: { n: 2 } });
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    // The stopped endpoint was not the call's fault: it does not count as an attempt.
    expect(first.value).toMatchObject({ endpoint: 1, attempts: 1 });
    expect(second.value).toMatchObject({ endpoint: 1, attempts: 1 });
    expect(h.supervisor.stats().byEndpoint.map((e) => e.stopped)).toEqual([true, false]);
    expect(h.supervisor.stats()).toMatchObject({ succeeded: 2, failed: 0 });
  });
});
