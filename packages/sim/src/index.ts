/**
 * @volley/sim: an OpenAI-compatible simulator server. Deterministic content (computable with the
 * exported `simulated*` functions), realistic latency or a model-server engine (slots, queue,
 * prefill, batched decode) with its per-request truth, rate limits with OpenAI's headers, and
 * seeded faults, for testing and benchmarking Volley without a real API.
 */

export {
  estimatePromptTokens,
  type SimulatedText,
  simulatedChatContent,
  simulatedCompletionText,
  simulatedResponseText,
} from './content.js';
export { simulatedEmbedding } from './embeddings.js';
export type { EngineState, SimEngineTiming } from './engine.js';
export { TIMING_HEADER } from './exchange.js';
export { FAULT_KINDS, type Fault, type FaultKind } from './faults.js';
export {
  type EngineOptions,
  type FaultOptions,
  type FaultRequest,
  type LatencyMs,
  type LatencyOptions,
  type LimitOptions,
  type ScriptRequest,
  SimulatorOptionError,
  type SimulatorOptions,
} from './options.js';
export { formatGoDuration } from './rate-limit.js';
export type { SimRequestLogEntry, SimStats } from './request-log.js';
export { createSimulator, type Simulator } from './server.js';
