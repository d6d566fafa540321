/**
 * How `mode: 'auto'` chooses where a request runs. Worker threads pay for themselves only when a
 * response takes real CPU to handle; for small ones the thread hop costs more than it saves (at
 * C=256 on 2 cores one loop did 1.49x the requests of two threads: benchmarks/results/
 * baseline-throughput-2026-11-22.md). What takes CPU is decoding big embedding responses.
 */
import type { WorkRequest } from '@volley/core';
import type { Route } from '@volley/workers';

/**
 * Decoded embedding bytes per response from which threads take over (inputs × dimensions × 4).
 * Provisional: calibrated from benchmarks/embeddings (see its README for the crossover table).
 */
export const THREADS_FROM_EMBEDDING_BYTES = 256 * 1024;

/** Dimensions assumed when a request names none (OpenAI's text-embedding-3-small default). */
const DEFAULT_DIMENSIONS = 1536;

export function routeByWorkload(request: WorkRequest): Route {
  if (request.embeddings !== 'vectors') return 'async';
  const { input, dimensions } = request.body;
  const inputs = Array.isArray(input) ? input.length : 1;
  const width = typeof dimensions === 'number' ? dimensions : DEFAULT_DIMENSIONS;
  return inputs * width * 4 >= THREADS_FROM_EMBEDDING_BYTES ? 'threads' : 'async';
}
