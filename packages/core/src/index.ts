export type { ActorBehavior, ActorOptions, ActorRef, AskOptions } from './actor.js';
export { createActor } from './actor.js';
export type {
  AdaptiveLimitPolicy,
  LimitDecision,
  LimitReason,
  ServerHint,
} from './adaptive-limit.js';
export { AdaptiveLimit, defaultAdaptiveLimitPolicy } from './adaptive-limit.js';
export type { BackoffPolicy } from './backoff.js';
export {
  capServerWaitMs,
  computeBackoffMs,
  defaultBackoffPolicy,
  retryDelayMs,
} from './backoff.js';
export type { Clock, TimerHandle } from './clock.js';
export { systemClock } from './clock.js';
export type {
  ConcurrencyLimits,
  EndpointLimits,
  EndpointLimitsOptions,
} from './endpoint-limits.js';
export { createEndpointLimits } from './endpoint-limits.js';
export type {
  ErrorCodeValue,
  ErrorDetailFields,
  SerializedError,
  VolleyErrorDetails,
} from './errors.js';
export {
  deserializeError,
  ErrorCode,
  isVolleyError,
  serializeError,
  VolleyError,
} from './errors.js';
export type {
  AttemptEvent,
  CompleteEvent,
  FailEvent,
  RetryEvent,
  RuntimeStats,
  VolleyEvents,
} from './events.js';
export { FixedQueue } from './fixed-queue.js';
export type { HedgePolicy } from './hedge.js';
export { defaultHedgePolicy, Hedger } from './hedge.js';
export type { LaneLevels, LimitStore, LimitStoreSetup } from './limit-store.js';
export { createMemoryLimitStore, MemoryLane } from './limit-store.js';
export type { CreateLoggerOptions, Logger } from './logger.js';
export { createLogger, registerHeaderSecrets, registerSecret, scrubSecrets } from './logger.js';
export type { FailureFacts, OutcomeClass } from './outcome.js';
export {
  classifyFailure,
  isEndpointFault,
  isRefusedContent,
  isTransient,
  isUnreachable,
  mayHaveBeenBilled,
} from './outcome.js';
export type { BatchRequestLine, BatchResponseLine, BatchUrl } from './protocol/batch.js';
export { BATCH_URLS } from './protocol/batch.js';
export * from './protocol/openai.js';
export type * from './protocol/work.js';
export type { HeaderMap, RateLimitSnapshot } from './rate-limit-headers.js';
export {
  capResets,
  headerValue,
  parseDurationMs,
  parseRateLimitHeaders,
  parseRetryAfterMs,
} from './rate-limit-headers.js';
export type { ServerHintsOptions, ServerHintsPoller } from './server-hints.js';
export { parseMetricsHint, parseSlotsHint, pollServerHints } from './server-hints.js';
export type {
  CallResult,
  CallSpec,
  CircuitBreakerPolicy,
  EndpointPolicy,
  RestartBudget,
  SupervisorOptions,
  SupervisorRef,
} from './supervisor.js';
export { createSupervisor, defaultCircuitBreaker } from './supervisor.js';
export type {
  Grant,
  LaneLimits,
  LaneStats,
  LearnedLimits,
  TokenBucketOptions,
  TokenBucketRef,
} from './token-bucket.js';
export { createTokenBucket } from './token-bucket.js';
export type { CountTokens } from './token-estimate.js';
export {
  approximateTokens,
  DEFAULT_OUTPUT_TOKEN_ESTIMATE,
  estimateRequestPromptTokens,
  estimateRequestTokens,
  loadTokenCounter,
  MAX_TOKENS_PER_CALL,
  trustedUsage,
} from './token-estimate.js';
export { withSpan } from './tracing.js';
