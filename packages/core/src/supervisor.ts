/**
 * The supervisor actor: the only place that decides what is sent when.
 *
 *   call() --> [queue] --admit--> token bucket --grant--> [ready] --flush (once per loop turn)-->
 *   dispatcher.dispatch(WorkRequest[]) ... sink.outcomes() --> classify --> resolve / retry / fail
 *
 * It owns concurrency (attempts in flight), endpoint choice (least outstanding among the live
 * ones), retries with full-jitter backoff that honours `retry-after`, per-attempt and per-call
 * deadlines, and worker crashes: attempts a dead worker held are re-dispatched (counted as
 * possibly billed twice), and past the restart budget the supervisor escalates by failing every
 * pending call with `VOLLEY_ERR_WORKER_CRASHED` — it never hangs.
 */
import type { EventEmitter } from 'eventemitter3';
import { createActor } from './actor.js';
import type { BackoffPolicy } from './backoff.js';
import { retryDelayMs } from './backoff.js';
import type { Clock, TimerHandle } from './clock.js';
import { systemClock } from './clock.js';
import type { SerializedError } from './errors.js';
import { deserializeError, ErrorCode, VolleyError } from './errors.js';
import type { RuntimeStats, VolleyEvents } from './events.js';
import { FixedQueue } from './fixed-queue.js';
import { classifyFailure, isEndpointFault, isTransient, mayHaveBeenBilled } from './outcome.js';
import type { Usage } from './protocol/openai.js';
import type {
  Dispatcher,
  DispatchSink,
  EmbeddingDecode,
  EmbeddingMatrix,
  StreamDelta,
  WorkFailure,
  WorkOutcome,
  WorkRequest,
  WorkSuccess,
} from './protocol/work.js';
import type { TokenBucketRef } from './token-bucket.js';
import type { CountTokens } from './token-estimate.js';
import { DEFAULT_OUTPUT_TOKEN_ESTIMATE, estimateRequestTokens } from './token-estimate.js';

/** One logical call. Retries are attempts of the same call. */
export interface CallSpec {
  /** Relative to the endpoint's base URL, e.g. `/chat/completions`. */
  path: string;
  body: Record<string, unknown>;
  stream?: boolean;
  onDelta?: (delta: { choice: number; content: string }) => void;
  /** Return the body as JSON text (batch writers) instead of parsed. */
  raw?: boolean;
  embeddings?: EmbeddingDecode;
  signal?: AbortSignal;
  /** Total budget across all attempts; defaults to the runtime's `timeoutMs`. */
  timeoutMs?: number;
}

export interface CallResult {
  status: number;
  requestId: string;
  body?: unknown;
  bodyText?: string;
  usage?: Usage;
  embeddings?: EmbeddingMatrix;
  attempts: number;
  endpoint: number;
  latencyMs: number;
  ttftMs?: number;
  /** Time spent waiting for rate-limit capacity, summed over attempts. */
  waitedMs: number;
}

export interface RestartBudget {
  /** Worker crashes tolerated within `windowMs` before escalating. */
  maxRestarts: number;
  windowMs: number;
}

/** What the supervisor needs to know about one endpoint. */
export interface EndpointPolicy {
  /** Token-bucket lane of the endpoint's own limits. */
  lane: number;
  /** Lanes of models whose limits differ from the endpoint's, by model name. */
  modelLanes?: ReadonlyMap<string, number>;
  /**
   * A local server with a fixed number of slots (vLLM, llama.cpp, Ollama): its 503 means "queue
   * full", which is backpressure to wait out, not a failure to count.
   */
  slots?: boolean;
}

/**
 * An endpoint that fails `failureThreshold` times in a row is taken out of rotation for `openMs`,
 * then tried with one probe; each failed probe doubles the pause, up to `maxOpenMs`.
 */
export interface CircuitBreakerPolicy {
  failureThreshold: number;
  openMs: number;
  maxOpenMs: number;
}

export const defaultCircuitBreaker: CircuitBreakerPolicy = {
  failureThreshold: 5,
  openMs: 2_000,
  maxOpenMs: 60_000,
};

export interface SupervisorOptions {
  createDispatcher: (sink: DispatchSink) => Dispatcher;
  bucket: TokenBucketRef;
  endpoints: readonly EndpointPolicy[];
  circuitBreaker?: CircuitBreakerPolicy;
  /** Lanes with a TPM limit need token estimates; the counter is loaded only then. */
  tokenCounter: CountTokens | undefined;
  concurrency: number;
  maxQueue: number;
  /** Retries after failures; 429s and backpressure do not count (the deadline bounds them). */
  maxRetries: number;
  /** Separate, small budget for attempts that may have been processed (sent, then lost). */
  maxAmbiguousRetries: number;
  backoff: BackoffPolicy;
  retryAfterCapMs: number;
  timeoutMs: number;
  attemptTimeoutMs: number;
  restartBudget: RestartBudget;
  events: EventEmitter<VolleyEvents>;
  clock?: Clock;
  random?: () => number;
}

export interface SupervisorRef {
  call(spec: CallSpec): Promise<CallResult>;
  stats(): RuntimeStats;
  /** True while the queue is at its bound; wait for the `drain` event before calling more. */
  readonly isSaturated: boolean;
  close(): Promise<void>;
  destroy(error?: Error): Promise<void>;
}

type JobState = 'queued' | 'admitting' | 'ready' | 'inflight' | 'backoff' | 'done';

interface Job {
  callId: number;
  spec: CallSpec;
  resolve: (result: CallResult) => void;
  reject: (error: Error) => void;
  state: JobState;
  attempts: number;
  /** Failed attempts that count against `maxRetries` (429s and backpressure do not). */
  failures: number;
  ambiguousAttempts: number;
  deadlineAt: number;
  endpoint: number;
  lane: number;
  /** This attempt is the single probe of a half-open endpoint. */
  isProbe: boolean;
  attemptId: number;
  dispatchedAt: number;
  attemptTimeoutMs: number;
  reservedTokens: number;
  waitedMs: number;
  admitAbort: AbortController | undefined;
  retryTimer: TimerHandle | undefined;
  onAbort: (() => void) | undefined;
}

type Message =
  | { type: 'call'; job: Job }
  | { type: 'granted'; job: Job; waitedMs: number }
  | { type: 'denied'; job: Job; error: Error }
  | { type: 'flush' }
  | { type: 'outcomes'; outcomes: WorkOutcome[] }
  | { type: 'deltas'; deltas: StreamDelta[] }
  | { type: 'lost'; ids: number[]; error: SerializedError }
  | { type: 'workerCrashed'; error: SerializedError }
  | { type: 'retryDue'; job: Job }
  | { type: 'abort'; job: Job }
  | { type: 'circuitDue' }
  | { type: 'sweep' };

/** `chooseEndpoint`: every endpoint in rotation has an open circuit; try again when one reopens. */
const WAIT_FOR_CIRCUIT = Symbol('wait-for-circuit');

interface EndpointHealth {
  state: 'closed' | 'open' | 'half-open';
  consecutiveFailures: number;
  openUntil: number;
  openMs: number;
  /** A half-open endpoint takes one probe at a time. */
  probing: boolean;
}

/** How often deadlines of queued, waiting and in-flight calls are checked. One timer, not one per call. */
const SWEEP_INTERVAL_MS = 250;
/** A worker gets this long past an attempt's deadline to report before the attempt is written off. */
const LOST_ATTEMPT_GRACE_MS = 5_000;

export function createSupervisor(options: SupervisorOptions): SupervisorRef {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const { events, bucket } = options;

  const queue = new FixedQueue<Job>();
  /** Retries go ahead of new work: they are older, and their callers have waited longest. */
  const retryQueue = new FixedQueue<Job>();
  const ready: Job[] = [];
  const inflight = new Map<number, Job>();
  const admitting = new Set<Job>();
  const backingOff = new Set<Job>();
  const endpointCount = options.endpoints.length;
  const breaker = options.circuitBreaker ?? defaultCircuitBreaker;
  const endpointOutstanding = new Array<number>(endpointCount).fill(0);
  const health: EndpointHealth[] = options.endpoints.map(() => ({
    state: 'closed',
    consecutiveFailures: 0,
    openUntil: 0,
    openMs: breaker.openMs,
    probing: false,
  }));
  /** Typical completion tokens per lane, learned from `usage`, for requests without `max_tokens`. */
  const learnedOutputTokens = new Map<number, number>();
  let circuitTimer: TimerHandle | undefined;
  let lastChosen = -1;
  const endpointStopped: Array<VolleyError | undefined> = new Array(endpointCount).fill(undefined);
  const crashTimes: number[] = [];
  const stats: RuntimeStats = {
    submitted: 0,
    succeeded: 0,
    failed: 0,
    queued: 0,
    inFlight: 0,
    waitingOnRateLimit: 0,
    backingOff: 0,
    retries: 0,
    backpressure: 0,
    rateLimitWaitMs: 0,
    extraBilledCalls: 0,
    rateLimited: 0,
    promptTokens: 0,
    completionTokens: 0,
    workerRestarts: 0,
    byEndpoint: Array.from({ length: endpointCount }, () => ({
      succeeded: 0,
      failed: 0,
      inFlight: 0,
      stopped: false,
      circuit: 'closed',
    })),
  };

  let nextCallId = 0;
  let nextAttemptId = 0;
  let flushScheduled = false;
  let saturated = false;
  let wasIdle = true;
  /** Finished calls (aborted, timed out) still sitting in a queue; skipped when reached. */
  let deadQueued = 0;
  let closing: Promise<void> | undefined;
  let fatal: VolleyError | undefined;
  const idleWaiters: Array<() => void> = [];

  const self = createActor<Message, unknown>(
    { receive: (message) => receive(message) },
    { name: 'supervisor', mailboxCapacity: Number.MAX_SAFE_INTEGER },
  );
  const post = (message: Message): void => {
    self.send(message);
  };

  const dispatcher = options.createDispatcher({
    outcomes: (outcomes) => post({ type: 'outcomes', outcomes }),
    deltas: (deltas) => post({ type: 'deltas', deltas }),
    lost: (ids, error) => post({ type: 'lost', ids, error }),
    workerCrashed: (error) => post({ type: 'workerCrashed', error }),
  });

  const sweepTimer = setInterval(() => post({ type: 'sweep' }), SWEEP_INTERVAL_MS);
  sweepTimer.unref();

  function receive(message: Message): unknown {
    switch (message.type) {
      case 'call':
        return accept(message.job);
      case 'granted':
        return onGranted(message.job, message.waitedMs);
      case 'denied':
        admitting.delete(message.job);
        stats.waitingOnRateLimit = admitting.size;
        releaseEndpoint(message.job);
        finish(message.job, message.error);
        return pump();
      case 'flush':
        return flush();
      case 'outcomes':
        for (const outcome of message.outcomes) onOutcome(outcome);
        return pump();
      case 'deltas':
        for (const delta of message.deltas) inflight.get(delta.id)?.spec.onDelta?.(delta);
        return undefined;
      case 'lost':
        for (const id of message.ids) {
          onOutcome({ id, ok: false, error: { ...message.error, code: ErrorCode.WORKER_CRASHED } });
        }
        return pump();
      case 'workerCrashed':
        return onWorkerCrashed(message.error);
      case 'retryDue':
        backingOff.delete(message.job);
        stats.backingOff = backingOff.size;
        if (message.job.state !== 'backoff') return undefined;
        message.job.state = 'queued';
        retryQueue.push(message.job);
        return pump();
      case 'abort':
        return onAbort(message.job);
      case 'circuitDue':
        circuitTimer = undefined;
        return pump();
      case 'sweep':
        return sweep();
    }
  }

  function accept(job: Job): Promise<CallResult> | undefined {
    stats.submitted++;
    queue.push(job);
    stats.queued = queuedCount();
    if (stats.queued >= options.maxQueue) saturated = true;
    pump();
    return undefined;
  }

  /** Admits queued calls while attempts are below the concurrency bound. */
  function pump(): undefined {
    while (
      inflight.size + admitting.size + ready.length < options.concurrency &&
      queuedCount() > 0
    ) {
      const endpoint = chooseEndpoint(clock.now());
      if (endpoint === WAIT_FOR_CIRCUIT) {
        armCircuitTimer();
        break;
      }
      const job = (retryQueue.shift() ?? queue.shift()) as Job;
      if (job.state === 'done') {
        deadQueued--;
        continue;
      }
      admit(job, endpoint);
    }
    stats.queued = queuedCount();
    if (saturated && stats.queued < options.maxQueue / 2) {
      saturated = false;
      events.emit('drain');
    }
    const idle = isIdle();
    if (idle !== wasIdle) {
      wasIdle = idle;
      // While calls are pending the sweep keeps the process alive, so a call whose worker was
      // lost still ends (by its deadline) instead of the process exiting under the caller.
      if (idle) sweepTimer.unref();
      else sweepTimer.ref();
    }
    if (closing !== undefined && idle) for (const wake of idleWaiters.splice(0)) wake();
    return undefined;
  }

  function admit(job: Job, endpoint: number | undefined): void {
    // Out of its queue now: finishing it from here must not count it as dead in a queue.
    job.state = 'admitting';
    const now = clock.now();
    if (now >= job.deadlineAt) {
      finish(job, timeoutError(job));
      return;
    }
    if (endpoint === undefined) {
      finish(job, noEndpointError());
      return;
    }
    lastChosen = endpoint;
    const endpointHealth = health[endpoint]!;
    job.isProbe = endpointHealth.state === 'half-open';
    if (job.isProbe) endpointHealth.probing = true;
    job.endpoint = endpoint;
    job.lane = laneFor(endpoint, job.spec.body.model);
    job.reservedTokens =
      options.tokenCounter === undefined
        ? 0
        : estimateRequestTokens(
            job.spec.body,
            options.tokenCounter,
            learnedOutputTokens.get(job.lane) ?? DEFAULT_OUTPUT_TOKEN_ESTIMATE,
          );
    admitting.add(job);
    stats.waitingOnRateLimit = admitting.size;
    endpointOutstanding[endpoint]!++;
    job.admitAbort = new AbortController();
    bucket.acquire(job.lane, job.reservedTokens, job.admitAbort.signal).then(
      (grant) => post({ type: 'granted', job, waitedMs: grant.waitedMs }),
      (error: unknown) => post({ type: 'denied', job, error: toError(error) }),
    );
  }

  function laneFor(endpoint: number, model: unknown): number {
    const policy = options.endpoints[endpoint]!;
    return (typeof model === 'string' ? policy.modelLanes?.get(model) : undefined) ?? policy.lane;
  }

  /**
   * Least outstanding requests among endpoints in rotation: not stopped, circuit not open (a
   * half-open one takes a single probe). `undefined` when every endpoint is stopped;
   * WAIT_FOR_CIRCUIT when some will come back.
   */
  function chooseEndpoint(now: number): number | undefined | typeof WAIT_FOR_CIRCUIT {
    let best: number | undefined;
    let waiting = false;
    // Start after the last choice so ties rotate instead of always landing on endpoint 0.
    for (let k = 1; k <= endpointCount; k++) {
      const i = (lastChosen + k) % endpointCount;
      if (endpointStopped[i] !== undefined) continue;
      const h = health[i]!;
      if (h.state === 'open' && now >= h.openUntil) {
        h.state = 'half-open';
        h.probing = false;
        stats.byEndpoint[i]!.circuit = 'half-open';
      }
      if (h.state === 'open' || (h.state === 'half-open' && h.probing)) {
        waiting = true;
        continue;
      }
      if (best === undefined || endpointOutstanding[i]! < endpointOutstanding[best]!) best = i;
    }
    return best ?? (waiting ? WAIT_FOR_CIRCUIT : undefined);
  }

  /** Wakes the pump when the first open circuit may take a probe again. */
  function armCircuitTimer(): void {
    if (circuitTimer !== undefined) return;
    const now = clock.now();
    let wakeAt = Infinity;
    for (const h of health) if (h.state === 'open') wakeAt = Math.min(wakeAt, h.openUntil);
    // A half-open probe in flight wakes the pump through its outcome.
    if (wakeAt === Infinity) return;
    circuitTimer = clock.setTimeout(() => post({ type: 'circuitDue' }), Math.max(0, wakeAt - now));
  }

  /** A job that never reached the wire gives back its endpoint slot (and its probe, if it was one). */
  function releaseEndpoint(job: Job): void {
    endpointOutstanding[job.endpoint]!--;
    if (job.isProbe) {
      job.isProbe = false;
      health[job.endpoint]!.probing = false;
    }
  }

  /** Failures that say the endpoint itself is unwell (not the request, not the rate limit). */
  function onEndpointFailure(endpoint: number): void {
    const h = health[endpoint]!;
    h.probing = false;
    if (h.state === 'half-open') {
      h.openMs = Math.min(h.openMs * 2, breaker.maxOpenMs);
      openCircuit(endpoint);
      return;
    }
    if (h.state === 'closed' && ++h.consecutiveFailures >= breaker.failureThreshold)
      openCircuit(endpoint);
  }

  function openCircuit(endpoint: number): void {
    const h = health[endpoint]!;
    h.state = 'open';
    h.openUntil = clock.now() + h.openMs;
    stats.byEndpoint[endpoint]!.circuit = 'open';
    events.emit('endpointUnhealthy', {
      endpoint,
      openMs: h.openMs,
      failures: h.consecutiveFailures,
    });
  }

  function onEndpointSuccess(endpoint: number): void {
    const h = health[endpoint]!;
    const wasDown = h.state !== 'closed';
    h.state = 'closed';
    h.consecutiveFailures = 0;
    h.openMs = breaker.openMs;
    h.probing = false;
    stats.byEndpoint[endpoint]!.circuit = 'closed';
    if (wasDown) events.emit('endpointHealthy', { endpoint });
  }

  function onGranted(job: Job, waitedMs: number): undefined {
    admitting.delete(job);
    stats.waitingOnRateLimit = admitting.size;
    job.admitAbort = undefined;
    if (job.state !== 'admitting') {
      // Aborted while waiting: hand the capacity back untouched.
      bucket.settle(job.lane, job.reservedTokens, 0);
      releaseEndpoint(job);
      return pump();
    }
    job.waitedMs += waitedMs;
    stats.rateLimitWaitMs += waitedMs;
    job.state = 'ready';
    ready.push(job);
    if (!flushScheduled) {
      flushScheduled = true;
      // One dispatch per loop turn: grants that land together go to the workers as one batch,
      // which is what makes the per-message cost of the thread hop affordable.
      setImmediate(() => post({ type: 'flush' }));
    }
    return undefined;
  }

  function flush(): undefined {
    flushScheduled = false;
    if (ready.length === 0) return undefined;
    const now = clock.now();
    const requests: WorkRequest[] = [];
    for (const job of ready.splice(0)) {
      if (job.state !== 'ready' || endpointStopped[job.endpoint] !== undefined) {
        // Aborted after its grant, or its endpoint stopped meanwhile: hand the capacity back.
        bucket.settle(job.lane, job.reservedTokens, 0);
        releaseEndpoint(job);
        if (job.state === 'ready') {
          job.state = 'queued';
          retryQueue.push(job);
        }
        continue;
      }
      const attemptTimeoutMs = Math.max(
        1,
        Math.min(options.attemptTimeoutMs, job.deadlineAt - now),
      );
      job.attemptId = ++nextAttemptId;
      job.attempts++;
      job.state = 'inflight';
      job.dispatchedAt = now;
      job.attemptTimeoutMs = attemptTimeoutMs;
      inflight.set(job.attemptId, job);
      stats.byEndpoint[job.endpoint]!.inFlight++;
      requests.push({
        id: job.attemptId,
        endpoint: job.endpoint,
        path: job.spec.path,
        body: job.spec.body,
        stream: job.spec.stream === true,
        deltas: job.spec.onDelta !== undefined,
        raw: job.spec.raw === true,
        embeddings: job.spec.embeddings ?? 'none',
        timeoutMs: attemptTimeoutMs,
      });
      if (events.listenerCount('request') > 0) {
        events.emit('request', {
          callId: job.callId,
          attempt: job.attempts,
          endpoint: job.endpoint,
        });
      }
    }
    stats.inFlight = inflight.size;
    if (requests.length > 0) dispatcher.dispatch(requests);
    return pump();
  }

  function onOutcome(outcome: WorkOutcome): void {
    const job = inflight.get(outcome.id);
    if (job === undefined) {
      // An attempt we already wrote off (its worker was declared dead, or it was swept): if it
      // succeeded after all, the server did the work twice.
      if (outcome.ok) stats.extraBilledCalls++;
      return;
    }
    inflight.delete(outcome.id);
    stats.inFlight = inflight.size;
    endpointOutstanding[job.endpoint]!--;
    stats.byEndpoint[job.endpoint]!.inFlight--;
    if (outcome.rateLimit !== undefined) bucket.observe(job.lane, outcome.rateLimit);
    if (outcome.ok) onSuccess(job, outcome);
    else onFailure(job, outcome);
  }

  function onSuccess(job: Job, outcome: WorkSuccess): void {
    const usage = outcome.usage;
    bucket.settle(job.lane, job.reservedTokens, usage?.total_tokens ?? job.reservedTokens);
    onEndpointSuccess(job.endpoint);
    job.isProbe = false;
    if (usage !== undefined) learnOutputTokens(job, usage);
    if (job.state !== 'inflight') return;
    if (usage !== undefined) {
      stats.promptTokens += usage.prompt_tokens ?? 0;
      stats.completionTokens += usage.completion_tokens ?? 0;
    }
    stats.succeeded++;
    stats.byEndpoint[job.endpoint]!.succeeded++;
    const result: CallResult = {
      status: outcome.status,
      requestId: outcome.requestId,
      attempts: job.attempts,
      endpoint: job.endpoint,
      latencyMs: outcome.timing.latencyMs,
      waitedMs: job.waitedMs,
    };
    if (outcome.body !== undefined) result.body = outcome.body;
    if (outcome.bodyText !== undefined) result.bodyText = outcome.bodyText;
    if (usage !== undefined) result.usage = usage;
    if (outcome.embeddings !== undefined) result.embeddings = outcome.embeddings;
    if (outcome.timing.ttftMs !== undefined) result.ttftMs = outcome.timing.ttftMs;
    if (events.listenerCount('complete') > 0) {
      events.emit('complete', {
        callId: job.callId,
        attempt: job.attempts,
        endpoint: job.endpoint,
        latencyMs: outcome.timing.latencyMs,
        ttftMs: outcome.timing.ttftMs,
        usage,
        waitedMs: job.waitedMs,
      });
    }
    settle(job);
    job.resolve(result);
  }

  function onFailure(job: Job, outcome: WorkFailure): void {
    const failure = outcome.error;
    // Unsent and refused (429) attempts cost the server nothing and hand their reservation back;
    // other sent ones may have been counted, so they keep it.
    const charged = failure.sent !== false && failure.code !== ErrorCode.RATE_LIMITED;
    bucket.settle(job.lane, job.reservedTokens, charged ? job.reservedTokens : 0);
    const verdict = classifyFailure(failure);
    const backpressure = failure.status === 503 && options.endpoints[job.endpoint]!.slots === true;
    if (isEndpointFault(failure) && !backpressure) onEndpointFailure(job.endpoint);
    else if (job.isProbe) health[job.endpoint]!.probing = false;
    job.isProbe = false;
    if (job.state !== 'inflight') return;
    const error = deserializeError({ ...failure, endpoint: job.endpoint }) as VolleyError;

    if (failure.code === ErrorCode.RATE_LIMITED || backpressure) {
      if (failure.code === ErrorCode.RATE_LIMITED) stats.rateLimited++;
      else stats.backpressure++;
      // Only the lane that answered cools down; every call waiting on it waits with this one.
      const cooldownMs = Math.min(
        failure.retryAfterMs ?? options.backoff.baseDelayMs,
        options.retryAfterCapMs,
      );
      bucket.cooldown(job.lane, cooldownMs);
      if (failure.code === ErrorCode.RATE_LIMITED && events.listenerCount('rateLimited') > 0) {
        events.emit('rateLimited', {
          callId: job.callId,
          attempt: job.attempts,
          endpoint: job.endpoint,
          retryAfterMs: failure.retryAfterMs,
        });
      }
      if (backpressure) {
        // Not a failure of the call: it waits its turn again, bounded only by its deadline.
        requeue(job);
        return;
      }
    }

    switch (verdict) {
      case 'fatal':
        finish(job, error);
        return;
      case 'stop-endpoint':
        stopEndpoint(job.endpoint, error);
        // The call itself is not at fault: it goes back to wait for another endpoint.
        requeue(job);
        return;
      case 'retry':
      case 'ambiguous': {
        const ambiguous = verdict === 'ambiguous';
        if (mayHaveBeenBilled(failure)) stats.extraBilledCalls++;
        if (ambiguous && ++job.ambiguousAttempts > options.maxAmbiguousRetries) {
          finish(job, exhausted(job, error));
          return;
        }
        // A 429 is the server pacing us, not the request failing: only the deadline bounds it.
        if (failure.code !== ErrorCode.RATE_LIMITED && ++job.failures > options.maxRetries) {
          finish(job, exhausted(job, error));
          return;
        }
        const delayMs = retryDelayMs(
          job.attempts - 1,
          options.backoff,
          random(),
          failure.retryAfterMs,
          options.retryAfterCapMs,
        );
        if (clock.now() + delayMs >= job.deadlineAt) {
          finish(job, timeoutError(job, error));
          return;
        }
        stats.retries++;
        if (events.listenerCount('retry') > 0) {
          events.emit('retry', {
            callId: job.callId,
            attempt: job.attempts,
            endpoint: job.endpoint,
            delayMs,
            error,
            ambiguous,
          });
        }
        job.state = 'backoff';
        backingOff.add(job);
        stats.backingOff = backingOff.size;
        job.retryTimer = clock.setTimeout(() => post({ type: 'retryDue', job }), delayMs);
        return;
      }
    }
  }

  /** Back to the head of the line without using up an attempt. */
  function requeue(job: Job): void {
    job.attempts--;
    job.state = 'queued';
    retryQueue.push(job);
  }

  /** An exponentially weighted mean of completion tokens per choice, per lane. */
  function learnOutputTokens(job: Job, usage: Usage): void {
    const n = typeof job.spec.body.n === 'number' && job.spec.body.n > 0 ? job.spec.body.n : 1;
    const perChoice = usage.completion_tokens / n;
    if (!(perChoice > 0)) return;
    const previous = learnedOutputTokens.get(job.lane);
    learnedOutputTokens.set(
      job.lane,
      previous === undefined ? perChoice : previous * 0.9 + perChoice * 0.1,
    );
  }

  function stopEndpoint(endpoint: number, error: VolleyError): void {
    if (endpointStopped[endpoint] !== undefined) return;
    endpointStopped[endpoint] = error;
    stats.byEndpoint[endpoint]!.stopped = true;
    events.emit('endpointStopped', { endpoint, error });
  }

  function onWorkerCrashed(failure: SerializedError): undefined {
    const now = clock.now();
    crashTimes.push(now);
    while (crashTimes.length > 0 && crashTimes[0]! < now - options.restartBudget.windowMs)
      crashTimes.shift();
    stats.workerRestarts++;
    const error = deserializeError(failure);
    events.emit('workerCrash', { error, restarts: stats.workerRestarts });
    if (crashTimes.length > options.restartBudget.maxRestarts) {
      escalate(
        new VolleyError(
          ErrorCode.WORKER_CRASHED,
          `worker threads crashed ${crashTimes.length} times within ${options.restartBudget.windowMs} ms; giving up`,
          { cause: error },
        ),
      );
    }
    return undefined;
  }

  /** Past the restart budget: fail everything pending, loudly, and take no more work. */
  function escalate(error: VolleyError): void {
    if (fatal !== undefined) return;
    fatal = error;
    abandonAll(error);
    events.emit('error', error);
    void dispatcher.destroy();
  }

  function onAbort(job: Job): undefined {
    const error = new VolleyError(ErrorCode.ABORTED, 'call aborted by the caller', {
      cause: job.spec.signal?.reason,
    });
    switch (job.state) {
      case 'inflight':
        // The worker aborts the HTTP request; its outcome (aborted) settles the bucket.
        dispatcher.cancel([job.attemptId]);
        finish(job, error);
        return undefined;
      case 'admitting':
        job.admitAbort?.abort();
        finish(job, error);
        return undefined;
      case 'queued':
      case 'ready':
      case 'backoff':
        finish(job, error);
        return pump();
      case 'done':
        return undefined;
    }
  }

  function sweep(): undefined {
    const now = clock.now();
    for (const [attemptId, job] of inflight) {
      if (now > job.dispatchedAt + job.attemptTimeoutMs + LOST_ATTEMPT_GRACE_MS) {
        // The worker never reported: treat the attempt as lost in flight.
        dispatcher.cancel([attemptId]);
        onOutcome({
          id: attemptId,
          ok: false,
          error: {
            name: 'VolleyError',
            code: ErrorCode.TIMEOUT,
            message: 'worker did not report the attempt',
            sent: true,
          },
        });
      }
    }
    for (const job of admitting) {
      if (now >= job.deadlineAt) {
        job.admitAbort?.abort();
        finish(job, timeoutError(job));
      }
    }
    // Queued calls can outlive their deadline while every slot is busy.
    for (const pending of [retryQueue, queue]) {
      for (const job of pending)
        if (job.state === 'queued' && now >= job.deadlineAt) finish(job, timeoutError(job));
    }
    return pump();
  }

  function* allPendingJobs(): Iterable<Job> {
    yield* queue.drain();
    yield* retryQueue.drain();
    yield* ready.splice(0);
    yield* admitting;
    yield* backingOff;
    yield* inflight.values();
  }

  /** Fails every pending call and forgets attempts on the wire: their workers are being torn down. */
  function abandonAll(error: Error): void {
    for (const job of allPendingJobs()) finish(job, error);
    inflight.clear();
    stats.inFlight = 0;
    stats.queued = 0;
    deadQueued = 0;
    endpointOutstanding.fill(0);
    for (const endpoint of stats.byEndpoint) endpoint.inFlight = 0;
    for (const wake of idleWaiters.splice(0)) wake();
  }

  function settle(job: Job): void {
    job.state = 'done';
    if (job.retryTimer !== undefined) clock.clearTimeout(job.retryTimer);
    if (job.onAbort !== undefined) job.spec.signal?.removeEventListener('abort', job.onAbort);
  }

  function finish(job: Job, error: Error): void {
    if (job.state === 'done') return;
    // An attempt still on the wire stays in `inflight` until its outcome arrives: it holds a
    // connection and a concurrency slot, and its outcome settles the bucket. A queued call stays
    // in its queue, counted as dead until `pump` meets it.
    if (job.state === 'queued') deadQueued++;
    if (job.state === 'backoff') backingOff.delete(job);
    if (job.state === 'admitting') admitting.delete(job);
    stats.backingOff = backingOff.size;
    stats.waitingOnRateLimit = admitting.size;
    stats.failed++;
    // An abort (the caller's signal, destroy()) says nothing about the endpoint's health.
    const aborted = error instanceof VolleyError && error.code === ErrorCode.ABORTED;
    if (job.attempts > 0 && !aborted) stats.byEndpoint[job.endpoint]!.failed++;
    const final = finalError(job, error);
    if (events.listenerCount('fail') > 0 && final instanceof VolleyError) {
      events.emit('fail', {
        callId: job.callId,
        attempt: job.attempts,
        endpoint: job.endpoint,
        error: final,
      });
    }
    settle(job);
    job.reject(final);
  }

  /**
   * The error a call rejects with says how many attempts it made and whether sending it again
   * later could succeed, so no caller re-derives either. Each call gets its own copy: one error
   * (a destroy, an escalation) may end many calls with different attempt counts.
   */
  function finalError(job: Job, error: Error): Error {
    if (!(error instanceof VolleyError)) return error;
    return error.withDetails({
      attempts: job.attempts,
      transient: isTransient(error),
    });
  }

  function exhausted(job: Job, cause: VolleyError): VolleyError {
    return new VolleyError(
      ErrorCode.RETRIES_EXHAUSTED,
      `gave up after ${job.attempts} attempts: ${cause.message}`,
      {
        cause,
        ...(cause.status === undefined ? {} : { status: cause.status }),
      },
    );
  }

  function timeoutError(job: Job, cause?: Error): VolleyError {
    const budget = job.spec.timeoutMs ?? options.timeoutMs;
    return new VolleyError(
      ErrorCode.TIMEOUT,
      `call did not complete within ${budget} ms`,
      cause ? { cause } : {},
    );
  }

  function noEndpointError(): VolleyError {
    const cause = endpointStopped.find((error) => error !== undefined);
    return new VolleyError(
      ErrorCode.NO_ENDPOINT,
      `no endpoint can take the call: ${cause?.message ?? 'all endpoints stopped'}`,
      cause ? { cause } : {},
    );
  }

  /** Calls waiting for a slot, not counting those already finished while they waited. */
  function queuedCount(): number {
    return queue.length + retryQueue.length - deadQueued;
  }

  function isIdle(): boolean {
    return queuedCount() + ready.length + admitting.size + backingOff.size + inflight.size === 0;
  }

  return {
    call(spec) {
      if (fatal !== undefined) return Promise.reject(fatal);
      if (closing !== undefined)
        return Promise.reject(new VolleyError(ErrorCode.STOPPED, 'runtime is closing'));
      if (spec.signal?.aborted) {
        return Promise.reject(
          new VolleyError(ErrorCode.ABORTED, 'call aborted by the caller', {
            cause: spec.signal.reason,
          }),
        );
      }
      return new Promise<CallResult>((resolve, reject) => {
        const job: Job = {
          callId: ++nextCallId,
          spec,
          resolve,
          reject,
          state: 'queued',
          attempts: 0,
          failures: 0,
          ambiguousAttempts: 0,
          deadlineAt: clock.now() + (spec.timeoutMs ?? options.timeoutMs),
          endpoint: 0,
          lane: 0,
          isProbe: false,
          attemptId: 0,
          dispatchedAt: 0,
          attemptTimeoutMs: 0,
          reservedTokens: 0,
          waitedMs: 0,
          admitAbort: undefined,
          retryTimer: undefined,
          onAbort: undefined,
        };
        if (spec.signal !== undefined) {
          job.onAbort = () => post({ type: 'abort', job });
          spec.signal.addEventListener('abort', job.onAbort, { once: true });
        }
        post({ type: 'call', job });
      });
    },
    stats: () => stats,
    get isSaturated() {
      return saturated;
    },
    close() {
      closing ??= (async () => {
        if (!isIdle()) await new Promise<void>((resolve) => idleWaiters.push(resolve));
        clearInterval(sweepTimer);
        await dispatcher.close();
        await bucket.stop();
        await self.stop();
      })();
      return closing;
    },
    async destroy(error) {
      const reason = new VolleyError(
        ErrorCode.ABORTED,
        'runtime destroyed',
        error ? { cause: error } : {},
      );
      const wasClosing = closing;
      closing ??= Promise.resolve();
      abandonAll(reason);
      clearInterval(sweepTimer);
      await dispatcher.destroy();
      await bucket.stop();
      await self.stop();
      await wasClosing;
    },
  };
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
