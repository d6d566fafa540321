/**
 * Volley: run very large numbers of LLM calls in parallel, inside rate limits, losing and
 * duplicating nothing. This package is the public face; it re-exports what users need.
 */

export type { ClusterOptions, RedisLossPolicy } from '@volley/cluster';
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
  ToolCall,
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
  Volley,
} from './create-volley.js';
export { createVolley, SIMULATOR_EMBEDDING_MODEL } from './create-volley.js';
export type { DeltaStream, StreamDelta } from './delta-stream.js';
export type { MetricsOption } from './metrics.js';
export type { EndpointOptions, VolleyMode, VolleyOptions } from './options.js';
export {
  DEFAULT_TIMEOUT_MS,
  defaultThreads,
  MAX_THREADS_HARD_LIMIT,
  maxThreads,
} from './options.js';
export type {
  BestOfNCandidate,
  BestOfNJudge,
  BestOfNOptions,
  BestOfNResult,
  BestOfNSuccess,
  BestOfNVerdict,
} from './patterns/best-of-n.js';
export { bestOfN, parseJudgeChoice } from './patterns/best-of-n.js';
export type {
  FanOutOptions,
  FanOutOutcome,
  FanOutResult,
  FanOutValue,
} from './patterns/fan-out.js';
export { fanOut, sections } from './patterns/fan-out.js';
export type {
  GuardrailCheck,
  GuardrailCheckReport,
  GuardrailOptions,
  GuardrailResult,
} from './patterns/guardrail.js';
export { guardrail, isFlaggedAnswer } from './patterns/guardrail.js';
export type {
  CodeAggregator,
  MapReduceBranch,
  MapReduceOptions,
  MapReduceResult,
  PromptAggregator,
  SplitOptions,
} from './patterns/map-reduce.js';
export {
  concatOutputs,
  mapReduce,
  mergeJsonOutputs,
  splitByTokens,
  voteOutputs,
} from './patterns/map-reduce.js';
export type {
  ChatClient,
  ChatDefaults,
  IndexedError,
  PatternErrorCodeValue,
  PatternErrorDetails,
  TokenCost,
} from './patterns/shared.js';
export { PatternError, PatternErrorCode } from './patterns/shared.js';
export type {
  RunToolCallsOptions,
  RunToolCallsResult,
  ToolCallOutcome,
  ToolCallSource,
  ToolContext,
  ToolErrorType,
  ToolHandler,
} from './patterns/tool-calls.js';
export { runToolCalls } from './patterns/tool-calls.js';
export type { VoteOptions, VoteRecord, VoteResult, VoteThreshold } from './patterns/vote.js';
export { normaliseAnswer, vote } from './patterns/vote.js';
export type {
  DeadlineOutcome,
  DeadlineTask,
  WithDeadlineOptions,
  WithDeadlineResult,
} from './patterns/with-deadline.js';
export { withDeadline } from './patterns/with-deadline.js';
export type { Settled } from './settled.js';
