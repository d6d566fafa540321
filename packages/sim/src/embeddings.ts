/**
 * Deterministic embeddings and their wire encodings. Encoded vectors are cached because under
 * benchmark load the same few inputs repeat and formatting 1536 floats costs far more than the
 * socket write that sends them.
 */

import { createRandom, HASH_SEED, hashString, normalSample } from './random.js';

/**
 * The unit-length vector the simulator returns for `input` under `model`: Gaussian components
 * seeded by (model, input), normalized, rounded to float32. Every component is exactly a float32,
 * so a client decoding either wire format gets a Float32Array equal to this one.
 *
 * @example
 * const res = await client.embeddings.create({ model: 'volley-sim-embed-1', input: 'hello' });
 * expect(Float32Array.from(res.data[0].embedding)).toEqual(simulatedEmbedding('hello', 'volley-sim-embed-1', 1536));
 */
export function simulatedEmbedding(input: string, model: string, dimensions: number): Float32Array {
  const random = createRandom(hashString(hashString(HASH_SEED, model), input));
  const values = new Float64Array(dimensions);
  let sumOfSquares = 0;
  for (let i = 0; i < dimensions; i++) {
    const value = normalSample(random);
    values[i] = value;
    sumOfSquares += value * value;
  }
  const scale = sumOfSquares > 0 ? 1 / Math.sqrt(sumOfSquares) : 0;
  const vector = new Float32Array(dimensions);
  for (let i = 0; i < dimensions; i++) vector[i] = values[i]! * scale;
  return vector;
}

/**
 * The shortest decimal that reads back as the same float32. OpenAI prints about 9 significant
 * digits; fewer usually suffice, and 9 always do for a float32.
 */
export function formatFloat32(value: number): string {
  for (let precision = 6; precision < 9; precision++) {
    const candidate = Number(value.toPrecision(precision));
    if (Math.fround(candidate) === value) return String(candidate);
  }
  return String(Number(value.toPrecision(9)));
}

/**
 * A JSON array of the vector's components, as `encoding_format: 'float'` sends it. Built with
 * `join`, which makes one flat string: built with `+=` it was a rope of ~2 pieces per dimension,
 * cached as such, and walked again by every response holding it: a 256 × 3072 response cost
 * ~200 ms against ~60 ms flat (server and a fetch client in one process).
 */
function encodeFloat(vector: Float32Array): string {
  return `[${Array.from(vector, formatFloat32).join(',')}]`;
}

/** A JSON string of little-endian float32 bytes in base64, as `encoding_format: 'base64'` sends it. */
function encodeBase64(vector: Float32Array): string {
  const bytes = Buffer.allocUnsafe(vector.length * 4);
  for (let i = 0; i < vector.length; i++) bytes.writeFloatLE(vector[i]!, i * 4);
  return `"${bytes.toString('base64')}"`;
}

/** Wire encodings the embeddings endpoint can answer with. */
export type EmbeddingEncoding = 'float' | 'base64' | 'zero-base64';

/**
 * An LRU of encoded vectors bounded by total characters (keys included), since one float vector is
 * ~17 kB of text and a count bound alone would let memory swing by the dimension count.
 */
export class EmbeddingCache {
  readonly #entries = new Map<string, string>();
  readonly #maxChars: number;
  #chars = 0;

  constructor(maxChars: number) {
    this.#maxChars = maxChars;
  }

  /** The JSON value (array or string literal) for one `embedding` field. */
  encoded(input: string, model: string, dimensions: number, encoding: EmbeddingEncoding): string {
    const key = `${encoding}\u0000${dimensions}\u0000${model}\u0000${input}`;
    const hit = this.#entries.get(key);
    if (hit !== undefined) {
      // Map keeps insertion order: re-inserting marks the entry most recently used.
      this.#entries.delete(key);
      this.#entries.set(key, hit);
      return hit;
    }
    const value =
      encoding === 'zero-base64'
        ? encodeBase64(new Float32Array(dimensions))
        : encoding === 'base64'
          ? encodeBase64(simulatedEmbedding(input, model, dimensions))
          : encodeFloat(simulatedEmbedding(input, model, dimensions));
    this.#entries.set(key, value);
    this.#chars += key.length + value.length;
    for (const [oldKey, oldValue] of this.#entries) {
      if (this.#chars <= this.#maxChars) break;
      this.#entries.delete(oldKey);
      this.#chars -= oldKey.length + oldValue.length;
    }
    return value;
  }
}
