/**
 * The embeddings workload every contender sends: `POST /v1/embeddings` with `inputsPerRequest`
 * short texts from a fixed pool, the scenario's `dimensions`, and (peers) the scenario's
 * `encoding_format`. Request k carries pool texts k·n, k·n+1, ... (mod the pool), so every
 * contender sends the same requests in the same order, and the checks can recompute what any
 * response must hold.
 */
import { simulatedEmbedding } from '@volley/sim';
import { INPUT_POOL_SIZE } from './scenarios.js';

export const MODEL = 'volley-sim-embed-1';

/**
 * The simulator formats a vector once per (text, dimensions, encoding) and caches it (32 MiB of
 * text, LRU): a pool of 512 texts fits even at 3072 float dimensions (~35 kB each), so after the
 * warm-up the server only concatenates cached strings and the client's decoding is what is
 * measured. Unique texts would make the server format every vector and measure the server.
 */
export const INPUT_POOL: readonly string[] = Array.from(
  { length: INPUT_POOL_SIZE },
  (_, i) =>
    `Passage ${i}: a short document to embed, about ${['rivers', 'compilers', 'bread', 'orbits'][i % 4]} and item number ${i * 7919}.`,
);

/** The inputs of request `k` (0-based, in issue order). */
export function inputsFor(k: number, inputsPerRequest: number): string[] {
  const inputs: string[] = new Array<string>(inputsPerRequest);
  const start = (k * inputsPerRequest) % INPUT_POOL_SIZE;
  for (let j = 0; j < inputsPerRequest; j++)
    inputs[j] = INPUT_POOL[(start + j) % INPUT_POOL_SIZE] as string;
  return inputs;
}

export const JSON_HEADERS = { 'content-type': 'application/json' };

/** `http://host:port/v1` -> the absolute embeddings URL, joined the way the OpenAI SDK joins it. */
export function embeddingsUrl(baseUrl: string): URL {
  return new URL(`${baseUrl.replace(/\/+$/, '')}/embeddings`);
}

/** A decoded vector in whatever form the client returns it. */
export type Vector = ArrayLike<number>;

/** Kept from the last response of the window for the end-of-run spot check. */
export interface Sample {
  inputs: string[];
  first: Vector;
  last: Vector;
}

/** Throws unless the response holds `inputs` vectors of `dimensions` each (checked on every response). */
export function checkShape(vectors: ArrayLike<Vector>, inputs: number, dimensions: number): void {
  if (vectors.length !== inputs)
    throw new Error(`response has ${vectors.length} vectors, expected ${inputs}`);
  for (let i = 0; i < vectors.length; i++) {
    const length = (vectors[i] as Vector).length;
    if (length !== dimensions)
      throw new Error(`vector ${i} has ${length} dimensions, expected ${dimensions}`);
  }
}

/**
 * The spot check, run after the window: the first and last vector of one response equal, element
 * by element as float32, what the simulator computes for those inputs (so content and order are
 * right, not only the shape). Returns a description of the first mismatch, or undefined.
 */
export function spotCheck(sample: Sample | undefined, dimensions: number): string | undefined {
  if (sample === undefined) return 'no response was kept for the spot check';
  const pairs: Array<[string, Vector]> = [
    [sample.inputs[0] as string, sample.first],
    [sample.inputs[sample.inputs.length - 1] as string, sample.last],
  ];
  for (const [input, vector] of pairs) {
    const expected = simulatedEmbedding(input, MODEL, dimensions);
    if (vector.length !== expected.length)
      return `spot check: ${vector.length} dimensions, expected ${expected.length}`;
    for (let i = 0; i < expected.length; i++) {
      // JSON floats parse to doubles: compare them as the float32 the server sent.
      if (Math.fround(vector[i] as number) !== expected[i])
        return `spot check: "${input}" element ${i} is ${vector[i]}, expected ${expected[i]}`;
    }
  }
  return undefined;
}
