/**
 * Embeddings decoded from the bytes of a response: the fast path must read exactly what
 * `JSON.parse` of the text reads, or step aside (undefined) so the full parse does; the executor
 * must decode every response right however its body is split into chunks, with several in flight.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WorkOutcome, WorkRequest } from '@volley/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodyText, decodeEmbeddings, parseEmbeddingsBody } from '../src/embeddings.js';
import { createExecutor } from '../src/executor.js';

function vector(seed: number, dimensions: number): Float32Array {
  return Float32Array.from({ length: dimensions }, (_, i) => Math.sin(seed * 1000 + i));
}

function base64(values: Float32Array): string {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');
}

interface Item {
  object?: string;
  index?: number;
  embedding?: unknown;
  [key: string]: unknown;
}

function listBody(items: Item[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    object: 'list',
    data: items,
    model: 'text-embedding-3-small',
    usage: { prompt_tokens: 8, total_tokens: 8 },
    ...extra,
  };
}

function items(count: number, dimensions: number): Item[] {
  return Array.from({ length: count }, (_, index) => ({
    object: 'embedding',
    index,
    embedding: base64(vector(index, dimensions)),
  }));
}

const bytesOf = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'utf8'));

/** The fast path's result equals JSON.parse of the text. */
function expectSameAsJson(text: string): void {
  const parsed = parseEmbeddingsBody(bytesOf(text));
  expect(parsed).toBeDefined();
  expect(parsed).toEqual(JSON.parse(text.replace(/^\uFEFF/, '')));
}

describe('parseEmbeddingsBody', () => {
  it('reads a base64 response exactly as JSON.parse does, compact or pretty-printed', () => {
    const body = listBody(items(16, 64));
    expectSameAsJson(JSON.stringify(body));
    expectSameAsJson(JSON.stringify(body, null, 2));
    expectSameAsJson(JSON.stringify(body, null, '\t').replace(/\n/g, '\r\n'));
  });

  it('keeps items out of order, extra fields, and "embedding" keys outside data[*]', () => {
    const list = items(4, 8).reverse();
    (list[0] as Item).extra = { embedding: 'not a vector', nested: [{ embedding: 'nor this' }] };
    const body = listBody(list, {
      meta: { embedding: 'AAAA', data: [{ embedding: 'BBBB' }] },
      note: 'a "quoted" \\ string with "embedding":"x" in it',
    });
    expectSameAsJson(JSON.stringify(body));
  });

  it('handles non-ASCII text around the vectors and a byte order mark', () => {
    const body = listBody(items(3, 16), { model: 'modèle-嵌入', usage: { note: 'ünïcode' } });
    expectSameAsJson(JSON.stringify(body));
    expectSameAsJson(`\uFEFF${JSON.stringify(body)}`);
  });

  it('takes the last of duplicate keys, as JSON.parse does', () => {
    const [a, b] = [base64(vector(1, 8)), base64(vector(2, 8))];
    expectSameAsJson(
      `{"data":[{"index":0,"embedding":"${a}","embedding":"${b}"}],"data":[{"index":0,"embedding":"${b}"}]}`,
    );
  });

  it('steps aside for what only the full parse reads right', () => {
    const good = base64(vector(1, 8));
    const escaped = good.replace(/\//g, '\\/') + (good.includes('/') ? '' : '\\/');
    const cases = [
      // A vector written with escapes (some servers escape every slash).
      `{"data":[{"index":0,"embedding":"${escaped}"}]}`,
      // A key written with escapes.
      `{"data":[{"index":0,"embe\\u0064ding":"${good}"}]}`,
      `{"d\\u0061ta":[{"index":0,"embedding":"${good}"}]}`,
      // Float vectors, no vectors, an error, not JSON, cut short, not an object.
      JSON.stringify(listBody([{ index: 0, embedding: [0.5, 0.25] }])),
      JSON.stringify(listBody([])),
      '{"error":{"message":"rate limited"}}',
      '<html>Bad gateway</html>',
      `{"data":[{"index":0,"embedding":"${good}"`,
      `{"data":[{"index":0,"embedding":"${good}"}]} trailing`,
      `[{"data":[{"embedding":"${good}"}]}]`,
      `{"result":{"data":[{"embedding":"${good}"}]}}`,
      `{"data":[{"index":0,"embedding":"${good}\u00e9"}]}`,
    ];
    for (const text of cases)
      expect([text, parseEmbeddingsBody(bytesOf(text))]).toEqual([text, undefined]);
  });

  it('decodes to the vectors that were sent', () => {
    const parsed = parseEmbeddingsBody(bytesOf(JSON.stringify(listBody(items(5, 32)))));
    const matrix = decodeEmbeddings(parsed?.data);
    expect(matrix).toMatchObject({ count: 5, dimensions: 32, serverSentFloats: false });
    for (let i = 0; i < 5; i++)
      expect(matrix.data.subarray(i * 32, (i + 1) * 32)).toEqual(vector(i, 32));
  });
});

describe('decodeEmbeddings', () => {
  it('places items by index and zeroes a row no item wrote', () => {
    const data = [
      { index: 2, embedding: base64(vector(2, 4)) },
      { index: 0, embedding: base64(vector(0, 4)) },
      { index: 0, embedding: base64(vector(9, 4)) },
    ];
    const matrix = decodeEmbeddings(data);
    expect(matrix.data.subarray(0, 4)).toEqual(vector(9, 4));
    expect(matrix.data.subarray(4, 8)).toEqual(new Float32Array(4));
    expect(matrix.data.subarray(8, 12)).toEqual(vector(2, 4));
  });

  it('returns a matrix that owns its whole buffer (it is transferred between threads)', () => {
    const matrix = decodeEmbeddings(items(3, 4));
    expect(matrix.data.byteOffset).toBe(0);
    expect(matrix.data.buffer.byteLength).toBe(3 * 4 * 4);
  });
});

describe('bodyText', () => {
  it('decodes UTF-8 and drops a byte order mark', () => {
    expect(bodyText(bytesOf('\uFEFF{"a":"é"}'))).toBe('{"a":"é"}');
  });
});

describe('executor: embeddings bodies on the wire', () => {
  let server: Server;
  let baseUrl: string;
  /** Responses by the request's `model`: the body text and how many pieces to write it in. */
  const bodies = new Map<string, { text: string; pieces: number }>();

  beforeAll(async () => {
    server = createServer((req, res) => {
      let raw = '';
      req.on('data', (chunk: Buffer) => {
        raw += chunk.toString('utf8');
      });
      req.on('end', () => {
        const { model } = JSON.parse(raw) as { model: string };
        const answer = bodies.get(model);
        if (answer === undefined) {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        const buffer = Buffer.from(answer.text, 'utf8');
        const size = Math.ceil(buffer.length / answer.pieces);
        let offset = 0;
        // Pieces written a tick apart arrive as separate chunks, interleaved with other responses.
        const next = (): void => {
          if (offset >= buffer.length) {
            res.end();
            return;
          }
          res.write(buffer.subarray(offset, offset + size));
          offset += size;
          setImmediate(next);
        };
        next();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  afterAll(() => {
    server.close();
  });

  function request(id: number, model: string, raw = false): WorkRequest {
    return {
      id,
      endpoint: 0,
      path: '/embeddings',
      body: { model, input: ['x'] },
      stream: false,
      deltas: false,
      raw,
      embeddings: 'vectors',
      timeoutMs: 10_000,
    };
  }

  it('decodes several large responses in flight at once, each into its own matrix', async () => {
    const executor = createExecutor({
      endpoints: [
        {
          baseUrl,
          connections: 8,
          connectTimeoutMs: 5_000,
          headersTimeoutMs: 10_000,
          idleTimeoutMs: 10_000,
          maxResponseBytes: 64 * 1024 * 1024,
        },
      ],
    });
    try {
      const models = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'];
      models.forEach((model, m) => {
        const list = items(64, 256).map((item, i) => ({
          ...item,
          embedding: base64(vector(m * 100 + i, 256)),
        }));
        // m5 escapes its slashes: the full parse takes it, alongside the others.
        let text = JSON.stringify(listBody(list, { model }));
        if (model === 'm5') text = text.replace(/\//g, '\\/');
        bodies.set(model, { text, pieces: 3 + m * 5 });
      });
      const outcomes = await Promise.all(
        models.map((model, i) => executor.execute(request(i + 1, model))),
      );
      outcomes.forEach((outcome: WorkOutcome, m) => {
        expect(outcome.ok).toBe(true);
        if (!outcome.ok) return;
        const matrix = outcome.embeddings;
        expect(matrix).toMatchObject({ count: 64, dimensions: 256 });
        for (const i of [0, 31, 63])
          expect(matrix?.data.subarray(i * 256, (i + 1) * 256)).toEqual(vector(m * 100 + i, 256));
        expect(outcome.body).toMatchObject({ model: `m${m}`, usage: { prompt_tokens: 8 } });
        expect((outcome.body as Record<string, unknown>).data).toBeUndefined();
        expect(outcome.usage).toEqual({ prompt_tokens: 8, total_tokens: 8 });
      });
      // Raw bodies come back as the text, vectors decoded as well.
      const raw = await executor.execute(request(99, 'm1', true));
      expect(raw.ok && raw.bodyText).toBe(bodies.get('m1')?.text);
      expect(raw.ok && raw.embeddings?.count).toBe(64);
      // A body that is not an embeddings list is a bad response, as before.
      bodies.set('bad', { text: '{"error":{"message":"nope"}}', pieces: 2 });
      const bad = await executor.execute(request(100, 'bad'));
      expect(bad.ok).toBe(false);
      if (!bad.ok) expect(bad.error.message).toMatch(/carries an error/);
    } finally {
      await executor.close();
    }
  });
});
