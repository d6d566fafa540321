/**
 * undici-raw: one undici `Pool` with C connections and C lanes on one event loop, `body.json()`.
 * float cells: the vectors are the parsed `number[]`s. base64 cells: each vector is decoded with
 * `Buffer.from(b64, 'base64')` and viewed as a Float32Array (little-endian, as the wire format is).
 */
import { Pool } from 'undici';
import { parseEmbedArgs, runEmbedContender } from '../harness.js';
import type { Vector } from '../workload.js';
import { checkShape, embeddingsUrl, JSON_HEADERS, MODEL } from '../workload.js';

const args = parseEmbedArgs();
const { dimensions, inputsPerRequest, encoding } = args;
const target = embeddingsUrl(args.url);
const pool = new Pool(target.origin, { connections: args.concurrency });

interface EmbeddingsBody {
  data?: Array<{ embedding?: unknown }>;
}

function toFloat32(base64: unknown): Float32Array {
  if (typeof base64 !== 'string') throw new Error('embedding is not a base64 string');
  const bytes = Buffer.from(base64, 'base64');
  // Small buffers come from Node's shared pool; a view needs a 4-byte aligned offset.
  return bytes.byteOffset % 4 === 0
    ? new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2)
    : new Float32Array(new Uint8Array(bytes).buffer);
}

function toNumbers(value: unknown): number[] {
  if (!Array.isArray(value)) throw new Error('embedding is not a float array');
  return value as number[];
}

await runEmbedContender(
  'undici-raw',
  args,
  async (inputs) => {
    const response = await pool.request({
      path: target.pathname,
      method: 'POST',
      headers: JSON_HEADERS,
      // Serialised per request, as every real client must: the body is part of the per-call cost.
      body: JSON.stringify({ model: MODEL, input: inputs, dimensions, encoding_format: encoding }),
    });
    if (response.statusCode !== 200) {
      await response.body.dump();
      throw new Error(`HTTP ${response.statusCode}`);
    }
    const body = (await response.body.json()) as EmbeddingsBody;
    const data = body.data ?? [];
    const vectors: Vector[] =
      encoding === 'base64'
        ? data.map((item) => toFloat32(item.embedding))
        : data.map((item) => toNumbers(item.embedding));
    checkShape(vectors, inputsPerRequest, dimensions);
    return { inputs, first: vectors[0] as Vector, last: vectors[inputsPerRequest - 1] as Vector };
  },
  { close: () => pool.close() },
);
