import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimulator, type Simulator, simulatedEmbedding } from '../src/index.js';
import { send } from './helpers.js';

interface EmbeddingList {
  object: string;
  data: { object: string; index: number; embedding: number[] | string }[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

function decodeBase64(value: string): Float32Array {
  const bytes = Buffer.from(value, 'base64');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const vector = new Float32Array(bytes.byteLength / 4);
  for (let i = 0; i < vector.length; i++) vector[i] = view.getFloat32(i * 4, true);
  return vector;
}

async function embed(sim: Simulator, body: Record<string, unknown>): Promise<EmbeddingList> {
  const res = await send(sim.url, '/embeddings', { body });
  expect(res.status).toBe(200);
  return JSON.parse(res.body) as EmbeddingList;
}

describe('embeddings', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await createSimulator();
  });
  afterAll(() => sim.close());

  it('float and base64 answers decode to the same Float32Array as simulatedEmbedding', async () => {
    const input = ['first text', 'second, longer text with ünïcode'];
    const floats = await embed(sim, {
      model: 'volley-sim-embed-1',
      input,
      encoding_format: 'float',
    });
    const base64 = await embed(sim, {
      model: 'volley-sim-embed-1',
      input,
      encoding_format: 'base64',
    });
    for (const i of [0, 1]) {
      const expected = simulatedEmbedding(input[i]!, 'volley-sim-embed-1', 1536);
      const fromFloat = Float32Array.from(floats.data[i]!.embedding as number[]);
      const fromBase64 = decodeBase64(base64.data[i]!.embedding as string);
      expect(fromFloat).toEqual(expected);
      expect(fromBase64).toEqual(expected);
      // Printed like the real API: at most 9 significant digits, the shortest that reads back exactly.
      const printed = JSON.stringify(floats.data[i]!.embedding).slice(1, -1).split(',');
      expect(printed.every((x) => x.replace(/^-?0?\.?0*|\.|e.*$/g, '').length <= 9)).toBe(true);
    }
    expect(floats.data.map((d) => [d.object, d.index])).toEqual([
      ['embedding', 0],
      ['embedding', 1],
    ]);
    const tokens = Math.ceil(input[0]!.length / 4) + Math.ceil(input[1]!.length / 4);
    expect(floats.usage).toEqual({ prompt_tokens: tokens, total_tokens: tokens });
  });

  it('is unit-length, deterministic per (input, model) and honours dimensions', async () => {
    const vector = simulatedEmbedding('x', 'm', 256);
    const norm = Math.sqrt(vector.reduce((sum, v) => sum + v * v, 0));
    expect(norm).toBeCloseTo(1, 5);
    expect(simulatedEmbedding('x', 'm', 256)).toEqual(vector);
    expect(simulatedEmbedding('x', 'other', 256)).not.toEqual(vector);
    const json = await embed(sim, { model: 'm', input: 'x', dimensions: 256 });
    expect(Float32Array.from(json.data[0]!.embedding as number[])).toEqual(vector);
  });

  it('defaults to float arrays and 1536 dimensions', async () => {
    const json = await embed(sim, { model: 'volley-sim-embed-1', input: 'default' });
    expect(Array.isArray(json.data[0]!.embedding)).toBe(true);
    expect(json.data[0]!.embedding).toHaveLength(1536);
  });

  it('refuses token-array input and bad encoding_format with 400 naming the param', async () => {
    const tokens = await send(sim.url, '/embeddings', { body: { model: 'm', input: [[1, 2, 3]] } });
    expect(tokens.status).toBe(400);
    expect(JSON.parse(tokens.body).error).toMatchObject({
      type: 'invalid_request_error',
      param: 'input',
    });
    const format = await send(sim.url, '/embeddings', {
      body: { model: 'm', input: 'x', encoding_format: 'hex' },
    });
    expect(JSON.parse(format.body).error.param).toBe('encoding_format');
  });
});

describe('embeddings quirks of other servers', () => {
  it('ignoreEncodingFormat answers float arrays even when base64 was asked for', async () => {
    const sim = await createSimulator({ ignoreEncodingFormat: true });
    try {
      const json = await embed(sim, {
        model: 'm',
        input: 'q',
        encoding_format: 'base64',
        dimensions: 8,
      });
      expect(Float32Array.from(json.data[0]!.embedding as number[])).toEqual(
        simulatedEmbedding('q', 'm', 8),
      );
    } finally {
      await sim.close();
    }
  });

  it('zeroBase64Embeddings answers base64 requests with zero vectors and float requests normally', async () => {
    const sim = await createSimulator({ zeroBase64Embeddings: true });
    try {
      const zero = await embed(sim, {
        model: 'm',
        input: 'q',
        encoding_format: 'base64',
        dimensions: 8,
      });
      expect(decodeBase64(zero.data[0]!.embedding as string)).toEqual(new Float32Array(8));
      const floats = await embed(sim, { model: 'm', input: 'q', dimensions: 8 });
      expect(Float32Array.from(floats.data[0]!.embedding as number[])).toEqual(
        simulatedEmbedding('q', 'm', 8),
      );
    } finally {
      await sim.close();
    }
  });
});
