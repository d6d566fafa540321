/**
 * How `mode: 'auto'` chooses where a request runs, from the benchmarks on this kind of machine
 * (2 cores shared with a local server):
 *
 * - small chat responses: one loop did 1.49x the requests of two threads at C=256
 *   (benchmarks/results/baseline-throughput-2026-11-22.md);
 * - embeddings decoded from base64: one loop won every cell, 384-3072 dims x 16-256 inputs
 *   (threads/async 0.79-0.98): base64 decodes too cheaply to pay for the hop;
 * - embeddings as float JSON: threads won every cell (1.12-1.29x): parsing floats is the CPU
 *   work threads exist for, and it keeps the main loop responsive (loop p99 20-27 ms with
 *   threads against 244-300 ms without) (benchmarks/results/baseline-embeddings-2026-11-22.md).
 *
 * So the encoding decides, not the size: float JSON embeddings go to threads, the rest stay on
 * the loop. A server that ignores `encoding_format` is learned from its first answer, after
 * which its requests ask for floats explicitly (create-volley.ts) and route here accordingly.
 */
import type { WorkRequest } from '@volley/core';
import type { Route } from '@volley/workers';

export function routeByWorkload(request: WorkRequest): Route {
  return request.embeddings === 'vectors' && request.body.encoding_format === 'float'
    ? 'threads'
    : 'async';
}
