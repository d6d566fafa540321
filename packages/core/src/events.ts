/**
 * Typed events (eventemitter3 tuple maps). Emitting is guarded by `listenerCount` on the hot path,
 * so a runtime nobody listens to pays nothing for them.
 */
import type { LimitDecision, ServerHint } from './adaptive-limit.js';
import type { VolleyError } from './errors.js';
import type { Usage } from './protocol/openai.js';

export interface AttemptEvent {
  /** The call's id (stable across its attempts). */
  callId: number;
  attempt: number;
  endpoint: number;
  /** The request body's `model`, when it names one (what metrics and traces label calls by). */
  model: string | undefined;
}

export interface RetryEvent extends AttemptEvent {
  delayMs: number;
  error: VolleyError;
  ambiguous: boolean;
}

export interface CompleteEvent extends AttemptEvent {
  latencyMs: number;
  ttftMs: number | undefined;
  usage: Usage | undefined;
  waitedMs: number;
}

export interface FailEvent extends AttemptEvent {
  error: VolleyError;
}

export interface RuntimeStats {
  /** Calls accepted so far. */
  submitted: number;
  succeeded: number;
  failed: number;
  queued: number;
  /** Attempts on the wire now. */
  inFlight: number;
  /** Calls waiting for rate-limit capacity now. */
  waitingOnRateLimit: number;
  /** Calls waiting out a retry delay now. */
  backingOff: number;
  retries: number;
  /** 503s from slot-limited local servers, waited out without counting as failures. */
  backpressure: number;
  /** Time calls spent waiting for rate-limit capacity, summed over calls. */
  rateLimitWaitMs: number;
  /**
   * Attempts that may have been processed and billed but whose result was not used (ambiguous,
   * truncated, lost, or answered after being written off): the honest count of extra billing.
   */
  extraBilledCalls: number;
  /**
   * Hedging: copies sent to another endpoint because an attempt stayed silent (each is also in
   * `extraBilledCalls`: whichever answered first, both may be billed).
   */
  hedgedCalls: number;
  rateLimited: number;
  promptTokens: number;
  completionTokens: number;
  workerRestarts: number;
  byEndpoint: Array<{
    succeeded: number;
    /** Calls that failed here; aborted calls (a signal, `destroy()`) are not counted. */
    failed: number;
    inFlight: number;
    stopped: boolean;
    /** Unreachable, or not an OpenAI-compatible API, attempt after attempt (`endpointDown`). */
    down: boolean;
    /** Circuit breaker: `open` means out of rotation after repeated failures. */
    circuit: 'closed' | 'open' | 'half-open';
    /** With `concurrency: 'auto'`: the attempts this endpoint may hold now (its adaptive limit). */
    concurrencyLimit?: number;
    /** With `concurrency: 'auto'`: the server's last load hint, when it publishes one. */
    server?: ServerHint;
  }>;
}

export interface VolleyEvents {
  /** An attempt was handed to a worker. */
  request: [event: AttemptEvent];
  retry: [event: RetryEvent];
  /** A 429 arrived; the endpoint cools down for `retryAfterMs`. */
  rateLimited: [event: AttemptEvent & { retryAfterMs: number | undefined }];
  complete: [event: CompleteEvent];
  fail: [event: FailEvent];
  /** An endpoint was taken out of rotation (auth, quota). */
  endpointStopped: [event: { endpoint: number; error: VolleyError }];
  /**
   * Nothing answers at the endpoint's address (refused, DNS, TLS), or not an OpenAI-compatible
   * API, round after round: calls no other endpoint can take fail with `error` (ENDPOINT_DOWN)
   * until a probe gets through (`endpointHealthy`).
   */
  endpointDown: [event: { endpoint: number; error: VolleyError }];
  /** An endpoint failed repeatedly and is out of rotation for `openMs` (circuit open). */
  endpointUnhealthy: [event: { endpoint: number; openMs: number; failures: number }];
  /** A probe of an unhealthy or down endpoint succeeded: it is back in rotation. */
  endpointHealthy: [event: { endpoint: number }];
  /** An adaptive limit (`concurrency: 'auto'`) moved, and why (the decision log, at debug). */
  concurrencyLimit: [event: LimitDecision & { endpoint: number }];
  /**
   * Hedging: the attempt on `endpoint` heard nothing for `afterMs`, so a copy went to `to`; the
   * first to answer wins and the other is cancelled (at debug in the log).
   */
  hedge: [event: AttemptEvent & { to: number; afterMs: number }];
  workerCrash: [event: { error: Error; restarts: number }];
  /** Emitted on an interval while listeners exist. */
  progress: [stats: RuntimeStats];
  /** The queue fell below its bound after being full. */
  drain: [];
  /**
   * Shared limits (`cluster`): Redis is out of reach. Admission spends the leases already held,
   * then pauses (or admits this process's share with `onRedisLoss: 'split'`). Once per outage.
   */
  clusterLost: [event: { url: string; cause: string }];
  /** Shared limits: Redis answers again; admission is shared again. */
  clusterRestored: [event: { url: string; downMs: number }];
  /** An unrecoverable runtime error (restart budget exhausted): every pending call has been failed. */
  error: [error: VolleyError];
}
