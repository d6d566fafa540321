/**
 * How `mode: 'auto'` chooses where a request runs, from the benchmarks on this kind of machine
 * (2 cores shared with a local server):
 *
 * - small chat responses: one loop did 1.49x the requests of two threads at C=256
 *   (benchmarks/results/baseline-throughput-2026-11-22.md);
 * - embeddings decoded from base64: one loop won or tied every cell, 384-3072 dims x 16-256
 *   inputs (threads/async 0.74-0.98): base64, parsed straight from the response bytes, decodes
 *   too cheaply to pay for the hop;
 * - embeddings as float JSON: threads won every cell of 96 KiB decoded or more (1.10-1.42x):
 *   parsing floats is the CPU work threads exist for, and it keeps the main loop responsive
 *   (loop p99 18-21 ms against up to 628 ms); at 24 KiB (384 dims x 16 inputs) the two tied
 *   (0.95-1.07 over three runs), threads spending 15% more CPU for it
 *   (benchmarks/results/baseline-embeddings-2026-11-22-after.md).
 *
 * So the encoding decides, and for floats the size: float JSON embeddings of at least
 * {@link FLOAT_THREADS_MIN_BYTES} decoded go to threads, the rest stays on the loop. A server that
 * ignores `encoding_format` is learned from its first answer, after which its requests ask for
 * floats explicitly (create-volley.ts) and route here accordingly.
 */
import type { WorkRequest } from '@volley/core';
import type { Route } from '@volley/workers';

/** Decoded size (inputs × dimensions × 4 bytes) from which float JSON is parsed on a thread. */
export const FLOAT_THREADS_MIN_BYTES = 48 * 1024;

/** A request that names no `dimensions` gets the model's: assume the common 1536. */
const ASSUMED_DIMENSIONS = 1536;

export function routeByWorkload(request: WorkRequest): Route {
  const { body } = request;
  if (request.embeddings !== 'vectors' || body.encoding_format !== 'float') return 'async';
  const inputs = Array.isArray(body.input) ? body.input.length : 1;
  const dimensions = typeof body.dimensions === 'number' ? body.dimensions : ASSUMED_DIMENSIONS;
  return inputs * dimensions * 4 >= FLOAT_THREADS_MIN_BYTES ? 'threads' : 'async';
}
