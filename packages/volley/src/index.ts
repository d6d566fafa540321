/**
 * Volley: run very large numbers of LLM calls in parallel, inside rate limits, losing and
 * duplicating nothing. This package is the public face; it re-exports what users need.
 */

export type {
  CallResult,
  ChatCompletion,
  ChatCompletionChunk,
  ChatMessage,
  Completion,
  EmbeddingMatrix,
  ErrorCodeValue,
  LaneStats,
  RuntimeStats,
  SerializedError,
  Usage,
  VolleyEvents,
  WorkerStats,
} from '@volley/core';
export { ErrorCode, isVolleyError, VolleyError } from '@volley/core';
export type { Simulator, SimulatorOptions } from '@volley/sim';
export { createSimulator } from '@volley/sim';
export type {
  CallOptions,
  ChatInput,
  ChatOptions,
  CompletionInput,
  EmbedOptions,
  EmbedResult,
  MapOptions,
  RequestOptions,
  Settled,
  Volley,
} from './create-volley.js';
export { createVolley } from './create-volley.js';
export type { EndpointOptions, VolleyMode, VolleyOptions } from './options.js';
