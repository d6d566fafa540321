/**
 * Embeddings at volume: packing into requests, input order, exact vectors (every element), per-
 * input errors, the zero-vector fallback, and the streaming form. Both modes.
 */

import { Writable } from 'node:stream';
import { createLogger } from '@volley/core';
import { createSimulator, simulatedEmbedding } from '@volley/sim';
import { describe, expect, it } from 'vitest';
import { createVolley, ErrorCode } from 'volley';

const MODEL = 'volley-sim-embed-1';

function texts(count: number, prefix = 'passage'): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix} ${i}: rivers carry silt to the sea`);
}

/** Every element of every vector equals what the server sent for that input. */
function expectExact(vectors: Float32Array[], inputs: string[], dimensions: number): void {
  expect(vectors).toHaveLength(inputs.length);
  inputs.forEach((input, i) => {
    const expected = simulatedEmbedding(input, MODEL, dimensions);
    const actual = vectors[i] as Float32Array;
    expect(actual.length).toBe(dimensions);
    for (let d = 0; d < dimensions; d++)
      if (actual[d] !== expected[d]) expect([i, d, actual[d]]).toEqual([i, d, expected[d]]);
  });
}

describe.each(['async', 'threads'] as const)('%s mode', (mode) => {
  it('packs 1,000 inputs into requests of batchSize and returns every vector exactly, in order', async () => {
    const sim = await createSimulator({ logBodies: false });
    const volley = await createVolley({
      mode,
      endpoints: [{ baseUrl: sim.url }],
      concurrency: 8,
      logger: false,
    });
    try {
      const inputs = texts(1_000);
      const result = await volley.embed(inputs, { model: MODEL, dimensions: 384, batchSize: 64 });
      expect(result.errors).toEqual([]);
      expect(result.requests).toBe(16);
      expect(sim.stats().requests).toBe(16);
      expect(result.matrix).toMatchObject({
        count: 1_000,
        dimensions: 384,
        serverSentFloats: false,
      });
      expectExact(result.vectors, inputs, 384);
      expect(result.usage.prompt_tokens).toBeGreaterThan(0);
    } finally {
      await volley.close();
      await sim.close();
    }
  });

  it('splits requests by the token cap as well as the count', async () => {
    const sim = await createSimulator({ logBodies: false });
    const volley = await createVolley({ mode, endpoints: [{ baseUrl: sim.url }], logger: false });
    try {
      const inputs = texts(40, 'x'.repeat(400)); // ~110 tokens each
      const result = await volley.embed(inputs, {
        model: MODEL,
        dimensions: 16,
        batchSize: 1_000,
        maxTokensPerRequest: 1_000,
      });
      expect(result.requests).toBeGreaterThanOrEqual(5);
      expectExact(result.vectors, inputs, 16);
    } finally {
      await volley.close();
      await sim.close();
    }
  });

  it('reports per-input errors for a failed request and keeps the rest', async () => {
    const sim = await createSimulator({
      faultFor: ({ body }) =>
        JSON.stringify(body).includes('poison') ? 'status-400-context-length' : undefined,
    });
    const volley = await createVolley({ mode, endpoints: [{ baseUrl: sim.url }], logger: false });
    try {
      const inputs = texts(30);
      inputs[12] = 'poison';
      const result = await volley.embed(inputs, { model: MODEL, dimensions: 8, batchSize: 10 });
      expect(result.errors.map((error) => error.index)).toEqual([
        10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
      ]);
      expect(result.errors[0]?.error).toMatchObject({ code: ErrorCode.HTTP, status: 400 });
      expect(Array.from(result.vectors[12] ?? [])).toEqual(new Array(8).fill(0));
      const healthy = [...inputs.keys()].filter((i) => i < 10 || i >= 20);
      expectExact(
        healthy.map((i) => result.vectors[i] as Float32Array),
        healthy.map((i) => inputs[i] as string),
        8,
      );
    } finally {
      await volley.close();
      await sim.close();
    }
  });

  it('falls back to float JSON, once, when a server answers base64 with zero vectors', async () => {
    const sim = await createSimulator({ zeroBase64Embeddings: true });
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logger = createLogger({ level: 'warn', destination });
    const volley = await createVolley({ mode, endpoints: [{ baseUrl: sim.url }], logger });
    try {
      const inputs = texts(20);
      const first = await volley.embed(inputs, { model: MODEL, dimensions: 32, batchSize: 5 });
      const second = await volley.embed(inputs, { model: MODEL, dimensions: 32, batchSize: 5 });
      expectExact(first.vectors, inputs, 32);
      expectExact(second.vectors, inputs, 32);
      expect(second.matrix.serverSentFloats).toBe(true);
      expect(lines.filter((line) => line.includes('zero vectors'))).toHaveLength(1);
    } finally {
      await volley.close();
      await sim.close();
    }
  });

  it('streams any number of inputs in order with bounded requests in flight', async () => {
    const sim = await createSimulator({ latency: { headersMs: 5 }, logBodies: false });
    const volley = await createVolley({
      mode,
      endpoints: [{ baseUrl: sim.url }],
      concurrency: 4,
      logger: false,
    });
    try {
      const inputs = texts(2_000);
      async function* source(): AsyncGenerator<string> {
        yield* inputs;
      }
      let maxInFlight = 0;
      const sampler = setInterval(() => {
        maxInFlight = Math.max(maxInFlight, sim.stats().inFlight);
      }, 1);
      const vectors: Float32Array[] = [];
      let expectedIndex = 0;
      for await (const item of volley.embedStream(source(), {
        model: MODEL,
        dimensions: 16,
        batchSize: 50,
      })) {
        expect(item.index).toBe(expectedIndex++);
        if ('error' in item) throw item.error;
        vectors.push(item.vector);
      }
      clearInterval(sampler);
      expectExact(vectors, inputs, 16);
      expect(maxInFlight).toBeLessThanOrEqual(4);
    } finally {
      await volley.close();
      await sim.close();
    }
  });
});

describe('auto mode', () => {
  it('decodes large float JSON embeddings on worker threads and everything else on the main loop', async () => {
    const base64 = await createSimulator({ logBodies: false });
    const floats = await createSimulator({ logBodies: false, ignoreEncodingFormat: true });
    const completedOn = async (volley: Awaited<ReturnType<typeof createVolley>>) => {
      const stats = await volley.workerStats();
      const loop = stats
        .filter((worker) => worker.threadId === 0)
        .reduce((n, w) => n + w.completed, 0);
      const threads = stats
        .filter((worker) => worker.threadId !== 0)
        .reduce((n, w) => n + w.completed, 0);
      return { loop, threads };
    };
    const inputs = texts(64);
    const onBase64 = await createVolley({
      mode: 'auto',
      endpoints: [{ baseUrl: base64.url }],
      model: 'volley-sim-1',
      logger: false,
    });
    const onFloats = await createVolley({
      mode: 'auto',
      endpoints: [{ baseUrl: floats.url }],
      model: 'volley-sim-1',
      logger: false,
    });
    try {
      await onBase64.chat({ messages: [{ role: 'user', content: 'small' }] });
      expectExact(
        (await onBase64.embed(inputs, { model: MODEL, dimensions: 1536 })).vectors,
        inputs,
        1536,
      );
      expect(await completedOn(onBase64)).toEqual({ loop: 2, threads: 0 });
      // The first answer shows the server ignores encoding_format; from then on floats go to threads.
      expectExact(
        (await onFloats.embed(inputs, { model: MODEL, dimensions: 256 })).vectors,
        inputs,
        256,
      );
      expectExact(
        (await onFloats.embed(inputs, { model: MODEL, dimensions: 256 })).vectors,
        inputs,
        256,
      );
      expect(await completedOn(onFloats)).toEqual({ loop: 1, threads: 1 });
      // Small float responses (here 4 × 16 × 4 bytes) are not worth the hop: they stay on the loop.
      const few = inputs.slice(0, 4);
      expectExact((await onFloats.embed(few, { model: MODEL, dimensions: 16 })).vectors, few, 16);
      expect(await completedOn(onFloats)).toEqual({ loop: 2, threads: 1 });
    } finally {
      await onBase64.close();
      await onFloats.close();
      await base64.close();
      await floats.close();
    }
  });
});
