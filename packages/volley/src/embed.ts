/**
 * Embedding many texts: packing inputs into requests, a sliding window of requests in flight
 * (the supervisor's concurrency, never waves), vectors back in input order.
 *
 *   inputs --pack (≤ batchSize inputs, ≤ maxTokensPerRequest)--> batch calls (concurrent)
 *          --> one row-major matrix, row i = input i; a failed batch leaves zero rows + errors
 *
 * The worker decodes each response to a Float32Array (base64 by default) and transfers it; here
 * rows are only copied into place, never parsed (and not even copied when one request carried
 * every input).
 */
import type { EmbeddingMatrix, Usage } from '@volley/core';
import { approximateTokens } from '@volley/core';

export interface EmbedPacking {
  /** Inputs per request. OpenAI accepts 2,048; many local servers far fewer. */
  batchSize?: number;
  /** Estimated tokens per request (OpenAI's cap is 300,000). */
  maxTokensPerRequest?: number;
}

export const DEFAULT_EMBED_BATCH_SIZE = 256;
export const DEFAULT_EMBED_MAX_TOKENS_PER_REQUEST = 100_000;

/** One packed request: inputs `[start, end)`. */
export interface EmbedBatch {
  start: number;
  end: number;
}

/**
 * Greedy packing in input order. A single input over the token cap travels alone (the server
 * decides; its error is that input's error). Token counts are estimated at four characters per
 * token: packing needs a bound, not an exact count, and tokenizing millions of texts on the main
 * thread would cost more than the requests.
 */
export function packEmbeddingBatches(
  inputs: readonly string[],
  packing: Required<EmbedPacking>,
): EmbedBatch[] {
  const batches: EmbedBatch[] = [];
  let start = 0;
  let tokens = 0;
  for (let i = 0; i < inputs.length; i++) {
    const cost = approximateTokens(inputs[i] as string);
    const full =
      i - start >= packing.batchSize || (i > start && tokens + cost > packing.maxTokensPerRequest);
    if (full) {
      batches.push({ start, end: i });
      start = i;
      tokens = 0;
    }
    tokens += cost;
  }
  if (inputs.length > start) batches.push({ start, end: inputs.length });
  return batches;
}

/** What one batch request returns to the packer. */
export interface EmbedBatchResult {
  matrix: EmbeddingMatrix;
  model: string;
  usage: Usage | undefined;
}

export interface EmbedManyResult {
  /** `count × dimensions`, row i = input i. Rows of failed inputs are zeros (see `errors`). */
  matrix: EmbeddingMatrix;
  /** Views into `matrix.data`, one per input, in input order. */
  vectors: Float32Array[];
  /** Inputs whose batch failed, with the reason. Empty when everything succeeded. */
  errors: Array<{ index: number; error: Error }>;
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
  /** Requests sent (after packing). */
  requests: number;
}

/** Runs every batch at once (the runtime bounds what is in flight) and assembles the matrix. */
export async function embedMany(
  inputs: readonly string[],
  packing: Required<EmbedPacking>,
  requestBatch: (inputs: string[]) => Promise<EmbedBatchResult>,
  fallbackModel: string,
): Promise<EmbedManyResult> {
  const batches = packEmbeddingBatches(inputs, packing);
  const settled = await Promise.allSettled(
    batches.map((batch) => requestBatch(inputs.slice(batch.start, batch.end))),
  );
  const first = settled.find((result) => result.status === 'fulfilled');
  const dimensions = first?.status === 'fulfilled' ? first.value.matrix.dimensions : 0;
  // One request for all the inputs: its matrix (decoded for this call alone, moved here from the
  // worker) is already the result, so it is used as it is instead of copied.
  const only =
    settled.length === 1 && first?.status === 'fulfilled' ? first.value.matrix : undefined;
  const data =
    only !== undefined &&
    only.count === inputs.length &&
    only.data.length === inputs.length * dimensions
      ? only.data
      : new Float32Array(inputs.length * dimensions);
  const errors: EmbedManyResult['errors'] = [];
  const usage = { prompt_tokens: 0, total_tokens: 0 };
  let serverSentFloats = false;
  let model = fallbackModel;
  settled.forEach((result, b) => {
    const batch = batches[b] as EmbedBatch;
    if (result.status === 'rejected') {
      const error =
        result.reason instanceof Error ? result.reason : new Error(String(result.reason));
      for (let index = batch.start; index < batch.end; index++) errors.push({ index, error });
      return;
    }
    const { matrix } = result.value;
    if (matrix.dimensions !== dimensions || matrix.count !== batch.end - batch.start) {
      const error = new Error(
        `batch ${batch.start}-${batch.end} returned ${matrix.count}×${matrix.dimensions}, expected ${batch.end - batch.start}×${dimensions}`,
      );
      for (let index = batch.start; index < batch.end; index++) errors.push({ index, error });
      return;
    }
    if (matrix.data !== data) data.set(matrix.data, batch.start * dimensions);
    serverSentFloats ||= matrix.serverSentFloats;
    model = result.value.model;
    usage.prompt_tokens += result.value.usage?.prompt_tokens ?? 0;
    usage.total_tokens += result.value.usage?.total_tokens ?? 0;
  });
  const vectors: Float32Array[] = [];
  for (let i = 0; i < inputs.length; i++)
    vectors.push(data.subarray(i * dimensions, (i + 1) * dimensions));
  return {
    matrix: { data, dimensions, count: inputs.length, serverSentFloats },
    vectors,
    errors,
    model,
    usage,
    requests: batches.length,
  };
}

/** One embedded input from {@link embedStream}, in input order. */
export type EmbeddedItem =
  | { index: number; vector: Float32Array }
  | { index: number; error: Error };

/**
 * Streams inputs through in packed batches, at most `window` batches in flight, yielding results
 * in input order. Memory stays bounded by the window however long the input is.
 */
export async function* embedStream(
  inputs: AsyncIterable<string> | Iterable<string>,
  packing: Required<EmbedPacking>,
  window: number,
  requestBatch: (inputs: string[]) => Promise<EmbedBatchResult>,
): AsyncGenerator<EmbeddedItem> {
  const pending: Array<{ start: number; texts: string[]; result: Promise<EmbedBatchResult> }> = [];
  let next = 0;
  let texts: string[] = [];
  let tokens = 0;
  const launch = (): void => {
    const batch = texts;
    const result = requestBatch(batch);
    // Consumed in order below; marked handled so a later batch's failure is not "unhandled" meanwhile.
    result.catch(() => undefined);
    pending.push({ start: next, texts: batch, result });
    next += batch.length;
    texts = [];
    tokens = 0;
  };
  async function* drainHead(): AsyncGenerator<EmbeddedItem> {
    const head = pending.shift();
    if (head === undefined) return;
    try {
      const { matrix } = await head.result;
      for (let i = 0; i < head.texts.length; i++) {
        yield {
          index: head.start + i,
          vector: matrix.data.slice(i * matrix.dimensions, (i + 1) * matrix.dimensions),
        };
      }
    } catch (cause) {
      const error = cause instanceof Error ? cause : new Error(String(cause));
      for (let i = 0; i < head.texts.length; i++) yield { index: head.start + i, error };
    }
  }
  for await (const text of inputs) {
    const cost = approximateTokens(text);
    if (
      texts.length >= packing.batchSize ||
      (texts.length > 0 && tokens + cost > packing.maxTokensPerRequest)
    ) {
      launch();
      if (pending.length >= window) yield* drainHead();
    }
    texts.push(text);
    tokens += cost;
  }
  if (texts.length > 0) launch();
  while (pending.length > 0) yield* drainHead();
}
