/**
 * Embedding decode, done in the worker so no JSON array of floats ever crosses a thread: every
 * vector of a response lands in one row-major Float32Array whose buffer is transferred (about
 * 0.2 ms) rather than cloned (about 12 ms for 256×1536, measured in research/perf-lab.md).
 * base64 is decoded straight into that buffer with `Buffer#write`, with no intermediate copy.
 */
import type { EmbeddingMatrix } from '@volley/core';

interface EmbeddingItem {
  index?: unknown;
  embedding?: unknown;
}

/** Why a body could not be decoded; the executor turns this into `VOLLEY_ERR_BAD_RESPONSE`. */
export class EmbeddingShapeError extends Error {
  override name = 'EmbeddingShapeError';
}

const isLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function decodeEmbeddings(data: unknown): EmbeddingMatrix {
  if (!Array.isArray(data) || data.length === 0)
    throw new EmbeddingShapeError('"data" is not a non-empty array');
  const items = data as EmbeddingItem[];
  const first = items[0]?.embedding;
  const dimensions =
    typeof first === 'string'
      ? Buffer.byteLength(first, 'base64') >> 2
      : Array.isArray(first)
        ? first.length
        : 0;
  if (dimensions === 0) throw new EmbeddingShapeError('first embedding is empty or missing');
  const count = items.length;
  const matrix = new Float32Array(count * dimensions);
  const bytes = Buffer.from(matrix.buffer, matrix.byteOffset, matrix.byteLength);
  let serverSentFloats = false;
  for (let i = 0; i < count; i++) {
    const item = items[i] as EmbeddingItem;
    // Servers may return items out of order; `index` says where each one belongs.
    const row = typeof item.index === 'number' && Number.isInteger(item.index) ? item.index : i;
    if (row < 0 || row >= count)
      throw new EmbeddingShapeError(`embedding index ${row} out of range`);
    const vector = item.embedding;
    if (typeof vector === 'string') {
      const written = bytes.write(vector, row * dimensions * 4, dimensions * 4, 'base64');
      if (written !== dimensions * 4 || Buffer.byteLength(vector, 'base64') !== dimensions * 4) {
        throw new EmbeddingShapeError(
          `embedding ${row} has ${Buffer.byteLength(vector, 'base64') / 4} dimensions, expected ${dimensions}`,
        );
      }
      // base64 embeddings are little-endian float32.
      if (!isLittleEndian)
        bytes.subarray(row * dimensions * 4, (row + 1) * dimensions * 4).swap32();
    } else if (Array.isArray(vector)) {
      if (vector.length !== dimensions) {
        throw new EmbeddingShapeError(
          `embedding ${row} has ${vector.length} dimensions, expected ${dimensions}`,
        );
      }
      serverSentFloats = true;
      matrix.set(vector as number[], row * dimensions);
    } else {
      throw new EmbeddingShapeError(`embedding ${row} is neither base64 nor a float array`);
    }
  }
  return { data: matrix, dimensions, count, serverSentFloats };
}
