import { describe, expect, it } from 'vitest';
import type { RetryEvent } from '../src/index.js';
import { ErrorCode } from '../src/index.js';
import { causeCodeOf, codeOf } from './helpers/async.js';
import { createHarness, useSupervisorHarness } from './helpers/supervisor-harness.js';

useSupervisorHarness();

describe('supervisor: ambiguous failures (sent, then lost)', () => {
  it('retries a CONNECTION_LOST that was sent and counts it as possibly billed', async () => {
    const h = createHarness();
    const retries: RetryEvent[] = [];
    h.events.on('retry', (e) => retries.push(e));
    const call = h.call();
    await h.settle();
    h.dispatcher.fail(h.dispatcher.last().id, { code: ErrorCode.CONNECTION_LOST, sent: true });
    await h.settle();
    await h.advance(500);
    expect(h.dispatcher.dispatched).toHaveLength(2);
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(call.value?.attempts).toBe(2);
    expect(retries[0]?.ambiguous).toBe(true);
    expect(h.supervisor.stats()).toMatchObject({ extraBilledCalls: 1, retries: 1, succeeded: 1 });
  });

  it('uses the separate maxAmbiguousRetries budget, however large maxRetries is', async () => {
    const h = createHarness({ maxRetries: 10, maxAmbiguousRetries: 1 });
    const call = h.call();
    await h.settle();
    h.dispatcher.fail(h.dispatcher.last().id, { code: ErrorCode.CONNECTION_LOST, sent: true });
    await h.settle();
    await h.advance(500);
    h.dispatcher.fail(h.dispatcher.last().id, { code: ErrorCode.CONNECTION_LOST, sent: true });
    await h.settle();
    await h.advance(600_000);
    expect(h.dispatcher.dispatched).toHaveLength(2);
    expect(codeOf(call.error)).toBe(ErrorCode.RETRIES_EXHAUSTED);
    expect(causeCodeOf(call.error)).toBe(ErrorCode.CONNECTION_LOST);
  });

  it('does not spend the ambiguous budget on plain retryable failures', async () => {
    const h = createHarness({ maxRetries: 5, maxAmbiguousRetries: 0 });
    const call = h.call();
    await h.settle();
    for (let i = 0; i < 3; i++) {
      h.dispatcher.fail(h.dispatcher.last().id, { code: ErrorCode.HTTP, status: 502 });
      await h.settle();
      await h.advance(60_000);
    }
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(call.value?.attempts).toBe(4);
    expect(h.supervisor.stats().extraBilledCalls).toBe(0);
  });

  it('treats a connection lost before sending as a plain retry, not billed', async () => {
    const h = createHarness({ maxAmbiguousRetries: 0 });
    const call = h.call();
    await h.settle();
    h.dispatcher.fail(h.dispatcher.last().id, { code: ErrorCode.CONNECTION_LOST, sent: false });
    await h.settle();
    await h.advance(500);
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(call.state).toBe('fulfilled');
    expect(h.supervisor.stats().extraBilledCalls).toBe(0);
  });

  it('counts a truncated stream as possibly billed while retrying it normally', async () => {
    const h = createHarness({ maxAmbiguousRetries: 0 });
    const call = h.call();
    await h.settle();
    h.dispatcher.fail(h.dispatcher.last().id, { code: ErrorCode.TRUNCATED_STREAM, sent: true });
    await h.settle();
    await h.advance(500);
    h.dispatcher.succeed(h.dispatcher.last().id);
    await h.settle();
    expect(call.state).toBe('fulfilled');
    expect(h.supervisor.stats().extraBilledCalls).toBe(1);
  });
});
