/**
 * The library API against a real simulator, in both modes: every output is checked against what
 * the simulator deterministically produces, and the two modes must agree exactly.
 */
import type { Simulator } from '@volley/sim';
import {
  createSimulator,
  simulatedChatContent,
  simulatedCompletionText,
  simulatedEmbedding,
} from '@volley/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatInput, Volley } from 'volley';
import { createVolley, ErrorCode } from 'volley';
import { chatBody } from './helpers.js';

const MODES = ['async', 'threads', 'auto'] as const;

describe.each(MODES)('%s mode', (mode) => {
  let sim: Simulator;
  let volley: Volley;

  beforeAll(async () => {
    sim = await createSimulator({
      // Requests whose prompt asks for it get a non-retryable 400, so per-item errors can be checked.
      faultFor: ({ body }) =>
        JSON.stringify(body).includes('please fail') ? 'status-400-context-length' : undefined,
    });
    volley = await createVolley({
      mode,
      endpoints: [{ baseUrl: sim.url }],
      model: 'volley-sim-1',
      concurrency: 16,
    });
  });

  afterAll(async () => {
    await volley.close();
    await sim.close();
  });

  it('chat returns the completion the server produced', async () => {
    const body = chatBody(1);
    const reply = await volley.chat(body as never);
    expect(reply.choices[0]?.message.content).toBe(simulatedChatContent(body).content);
    expect(reply.usage?.completion_tokens).toBe(simulatedChatContent(body).completionTokens);
  });

  it('streams deltas that add up to the same completion, and measures time to first token', async () => {
    const body = chatBody(2);
    const deltas: string[] = [];
    const reply = await volley.chat(body as never, {
      onDelta: (delta) => deltas.push(delta.content),
    });
    const expected = simulatedChatContent(body).content;
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join('')).toBe(expected);
    expect(reply.choices[0]?.message.content).toBe(expected);
    expect(reply.choices[0]?.finish_reason).not.toBeNull();
    expect(reply.usage?.completion_tokens).toBe(simulatedChatContent(body).completionTokens);
  });

  it('assembles n choices from a stream', async () => {
    const body = chatBody(3, { n: 3 });
    const reply = await volley.chat(body as never, { stream: true });
    expect(reply.choices.map((choice) => choice.message.content)).toEqual(
      [0, 1, 2].map((i) => simulatedChatContent(body, i).content),
    );
  });

  it('completes text prompts, JSON and streamed', async () => {
    const body = { prompt: 'Once upon a time', max_tokens: 20 };
    const expected = simulatedCompletionText({ model: 'volley-sim-1', ...body }).content;
    expect((await volley.complete(body)).choices[0]?.text).toBe(expected);
    expect((await volley.complete(body, { stream: true })).choices[0]?.text).toBe(expected);
  });

  it('embeds into Float32Arrays equal to the server vectors, in input order', async () => {
    const inputs = Array.from({ length: 40 }, (_, i) => `document ${i} about rivers`);
    const result = await volley.embed(inputs, { model: 'volley-sim-embed-1', dimensions: 64 });
    expect(result.vectors).toHaveLength(inputs.length);
    inputs.forEach((input, i) => {
      // Element by element: the vectors are views into one matrix, so compare values, not buffers.
      expect(Array.from(result.vectors[i] ?? [])).toEqual(
        Array.from(simulatedEmbedding(input, 'volley-sim-embed-1', 64)),
      );
    });
    expect(result.matrix.serverSentFloats).toBe(false);
  });

  it('map keeps input order and reports per-item errors without rejecting the whole', async () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const results = await volley.map(items, (i) =>
      volley.chat({
        messages: [{ role: 'user', content: i % 10 === 7 ? `please fail ${i}` : `item ${i}` }],
      }),
    );
    expect(results.map((r) => r.index)).toEqual(items);
    for (const result of results) {
      if (result.index % 10 === 7) {
        expect(result.ok).toBe(false);
        if (!result.ok) expect((result.error as { code?: string }).code).toBe(ErrorCode.HTTP);
      } else {
        expect(result.ok).toBe(true);
        if (result.ok) {
          const body = {
            model: 'volley-sim-1',
            messages: [{ role: 'user', content: `item ${result.index}` }],
          };
          expect(result.value.choices[0]?.message.content).toBe(simulatedChatContent(body).content);
        }
      }
    }
  });

  it('settles every rate-limit reservation once calls are done', async () => {
    await Promise.all([0, 1, 2].map((i) => volley.chat(chatBody(100 + i) as never)));
    const [lane] = await volley.limiterStats();
    expect(lane?.inFlight).toBe(0);
    expect(lane?.waiting).toBe(0);
    expect(lane?.grants).toBeGreaterThanOrEqual(3);
  });

  it('a caller abort rejects with VOLLEY_ERR_ABORTED', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(
      volley.chat(chatBody(4) as never, { signal: controller.signal }),
    ).rejects.toMatchObject({
      code: ErrorCode.ABORTED,
    });
  });
});

// Compile-time checks (pnpm typecheck): request inputs are typed field by field.
// @ts-expect-error `messages` must be an array of messages
export const badMessages: ChatInput = { messages: 42 };
// @ts-expect-error `max_tokens` must be a number
export const badMaxTokens: ChatInput = { messages: [], max_tokens: 'lots' };
