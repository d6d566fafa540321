import { describe, expect, it } from 'vitest';
import type { AttemptEvent, CompleteEvent } from '../src/index.js';
import { createHarness, defaultSpec, useSupervisorHarness } from './helpers/supervisor-harness.js';

useSupervisorHarness();

describe('supervisor: a successful call', () => {
  it('dispatches one WorkRequest built from the spec and resolves with the body', async () => {
    const h = createHarness({ attemptTimeoutMs: 30_000 });
    const call = h.call({
      path: '/embeddings',
      body: { model: 'e', input: 'x' },
      raw: true,
      embeddings: 'vectors',
    });
    await h.settle();
    expect(h.dispatcher.dispatched).toHaveLength(1);
    const request = h.dispatcher.last();
    expect(request).toEqual({
      id: request.id,
      endpoint: 0,
      path: '/embeddings',
      body: { model: 'e', input: 'x' },
      stream: false,
      deltas: false,
      raw: true,
      embeddings: 'vectors',
      timeoutMs: 30_000,
    });
    expect(call.state).toBe('pending');
    const usage = { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 };
    h.dispatcher.succeed(
      request.id,
      { answer: 42 },
      { usage, timing: { latencyMs: 12, headersMs: 3, ttftMs: 8 } },
    );
    await h.settle();
    expect(call.state).toBe('fulfilled');
    expect(call.value).toEqual({
      status: 200,
      requestId: `req-${request.id}`,
      body: { answer: 42 },
      usage,
      attempts: 1,
      endpoint: 0,
      latencyMs: 12,
      ttftMs: 8,
      waitedMs: 0,
    });
  });

  it('marks stream and delta requests and forwards deltas to onDelta', async () => {
    const h = createHarness();
    const deltas: Array<{ choice: number; content: string }> = [];
    const call = h.call({
      stream: true,
      onDelta: (d) => deltas.push({ choice: d.choice, content: d.content }),
    });
    await h.settle();
    const request = h.dispatcher.last();
    expect(request).toMatchObject({ stream: true, deltas: true, raw: false, embeddings: 'none' });
    h.dispatcher.sink.deltas([
      { id: request.id, choice: 0, content: 'Hel' },
      { id: request.id, choice: 0, content: 'lo' },
      { id: 9_999, choice: 0, content: 'not mine' },
    ]);
    await h.settle();
    expect(deltas).toEqual([
      { choice: 0, content: 'Hel' },
      { choice: 0, content: 'lo' },
    ]);
    h.dispatcher.succeed(request.id);
    await h.settle();
    expect(call.state).toBe('fulfilled');
  });

  it('gives an attempt the smaller of attemptTimeoutMs and what is left of the call budget', async () => {
    const h = createHarness({ attemptTimeoutMs: 30_000 });
    h.call({ timeoutMs: 5_000 });
    await h.settle();
    expect(h.dispatcher.last().timeoutMs).toBe(5_000);
  });

  it('counts the call in stats and emits request and complete events', async () => {
    const h = createHarness();
    const requests: AttemptEvent[] = [];
    const completes: CompleteEvent[] = [];
    h.events.on('request', (e) => requests.push(e));
    h.events.on('complete', (e) => completes.push(e));
    const call = h.call();
    await h.settle();
    expect(h.supervisor.stats()).toMatchObject({
      submitted: 1,
      inFlight: 1,
      queued: 0,
      succeeded: 0,
    });
    expect(h.supervisor.stats().byEndpoint[0]?.inFlight).toBe(1);
    const usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };
    h.dispatcher.succeed(h.dispatcher.last().id, {}, { usage });
    await h.settle();
    expect(call.state).toBe('fulfilled');
    expect(h.supervisor.stats()).toMatchObject({
      submitted: 1,
      succeeded: 1,
      failed: 0,
      inFlight: 0,
      retries: 0,
      promptTokens: 10,
      completionTokens: 5,
    });
    expect(h.supervisor.stats().byEndpoint[0]).toMatchObject({ succeeded: 1, inFlight: 0 });
    expect(requests).toEqual([{ callId: expect.any(Number), attempt: 1, endpoint: 0, model: 'm' }]);
    expect(completes).toHaveLength(1);
    expect(completes[0]).toMatchObject({
      attempt: 1,
      endpoint: 0,
      usage,
      callId: requests[0]?.callId,
    });
  });

  it('sends grants that land together as one batch', async () => {
    const h = createHarness({ concurrency: 8 });
    for (let i = 0; i < 5; i++) h.call({ body: { ...defaultSpec.body, i } });
    await h.settle();
    expect(h.dispatcher.batches).toEqual([5]);
  });

  it('reserves estimated tokens when a token counter is given and settles with the real usage', async () => {
    const h = createHarness({ lanes: [{ tpm: 60_000 }], tokenCounter: (text) => text.length });
    // 4 framing + 2 ("hi") + 100 max_tokens = 106 reserved out of 250
    const call = h.call({ body: { messages: [{ role: 'user', content: 'hi' }], max_tokens: 100 } });
    await h.settle();
    expect((await h.bucket.stats())[0]?.availableTokens).toBe(144);
    h.dispatcher.succeed(
      h.dispatcher.last().id,
      {},
      { usage: { prompt_tokens: 6, completion_tokens: 4, total_tokens: 10 } },
    );
    await h.settle();
    expect(call.state).toBe('fulfilled');
    expect((await h.bucket.stats())[0]?.availableTokens).toBe(240);
  });
});
