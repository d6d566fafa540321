/**
 * The supervisor actor: the only place that decides what is sent when.
 *
 *   call() --> [CallQueue] --admit--> token bucket --grant--> [ready] --flush (once per turn)-->
 *   dispatcher.dispatch(WorkRequest[]) ... sink.outcomes() --> success | afterFailure() --> resolve / retry / fail
 *
 * A call lives through these states; every transition happens in a handler of this actor:
 *
 *   queued --admit--> admitting --grant--> ready --flush--> inflight --success--> done
 *     ^                  |  (waits on the bucket)                |
 *     |                  '--deadline, abort, denied--> done      '--failure--> afterFailure():
 *     '------ requeue (backpressure, endpoint stopped) <------------------------'  retry: backoff --due--> queued
 *                                                                                  fail:  done
 *
 * Each decision lives in one part, which this file only wires together:
 * - `EndpointHealth` (endpoint-health.ts): which endpoint takes an attempt; the circuit breaker;
 *   endpoints stopped for good (auth, quota).
 * - `afterFailure` (after-failure.ts): what a failed attempt leads to, returned as data.
 * - `CallQueue` (call-queue.ts): calls waiting for a slot, retries first.
 * - `RestartIntensity` (restart-intensity.ts): the worker crash budget; past it the supervisor
 *   escalates by failing every pending call with `VOLLEY_ERR_WORKER_CRASHED`: it never hangs.
 * - `OutputTokenLearner` (token-estimate.ts): TPM reservations for requests without `max_tokens`.
 * - `Hedger` (hedge.ts, opt-in): when a silent attempt gets a copy on another endpoint. The race
 *   itself lives here: the copy is a second `Job` object (`isCopy`) linked to the call by `twin`;
 *   the first attempt to deliver a byte (a delta, or its answer) wins, its twin is cancelled, and
 *   the call's own `Job` always ends up holding the winning attempt (`swapAttempt`).
 * What stays here: the concurrency bound, deadlines (one sweep timer, not one per call), the
 * attempt ids, and the books behind `stats()`.
 *
 * Messages (calls, outcomes from the dispatcher, timers, aborts) go through a same-turn `Mailbox`:
 * one at a time, in order, without a microtask per hop. The token bucket is asked synchronously
 * (`tryAcquire`) and waited on only when it has no capacity now.
 */
import type { Span } from '@opentelemetry/api';
import type { EventEmitter } from 'eventemitter3';
import { watchAbort } from './abort-watch.js';
import { Mailbox } from './actor.js';
import type { RetryPolicy } from './after-failure.js';
import { afterFailure, timeoutError } from './after-failure.js';
import { AttemptTable } from './attempt-table.js';
import type { BackoffPolicy } from './backoff.js';
import { CallQueue } from './call-queue.js';
import type { Clock, TimerHandle } from './clock.js';
import { systemClock } from './clock.js';
import type { CircuitBreakerPolicy } from './endpoint-health.js';
import { defaultCircuitBreaker, EndpointHealth, WAIT_FOR_CIRCUIT } from './endpoint-health.js';
import type { ConcurrencyLimits } from './endpoint-limits.js';
import type { SerializedError } from './errors.js';
import { deserializeError, ErrorCode, VolleyError } from './errors.js';
import type { RuntimeStats, VolleyEvents } from './events.js';
import type { HedgePolicy } from './hedge.js';
import { Hedger } from './hedge.js';
import { isTransient } from './outcome.js';
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
import { capResets } from './rate-limit-headers.js';
import type { RestartBudget } from './restart-intensity.js';
import { RestartIntensity } from './restart-intensity.js';
import type { TokenBucketRef } from './token-bucket.js';
import type { CountTokens } from './token-estimate.js';
import { estimateRequestTokens, OutputTokenLearner, trustedUsage } from './token-estimate.js';
import { CallTracing } from './tracing.js';

export type { CircuitBreakerPolicy } from './endpoint-health.js';
export { defaultCircuitBreaker } from './endpoint-health.js';
export type { RestartBudget } from './restart-intensity.js';

/** One logical call. Retries are attempts of the same call. */
export interface CallSpec {
  /** Relative to the endpoint's base URL, e.g. `/chat/completions`. */
  path: string;
  body: Record<string, unknown>;
  stream?: boolean;
  /** `delta.id` is the attempt's: a new id means the call was retried and its answer starts over. */
  onDelta?: (delta: StreamDelta) => void;
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

/** What the supervisor needs to know about one endpoint. */
export interface EndpointPolicy {
  /** How the endpoint is named in messages: its base URL (which never carries credentials). */
  label: string;
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

export interface SupervisorOptions extends RetryPolicy {
  createDispatcher: (sink: DispatchSink) => Dispatcher;
  bucket: TokenBucketRef;
  endpoints: readonly EndpointPolicy[];
  circuitBreaker?: CircuitBreakerPolicy;
  /** Lanes with a TPM limit need token estimates; the counter is loaded only then. */
  tokenCounter: CountTokens | undefined;
  concurrency: number;
  /** Per-endpoint concurrency limits (`concurrency: 'auto'`), below `concurrency`. */
  limits?: ConcurrencyLimits;
  maxQueue: number;
  backoff: BackoffPolicy;
  timeoutMs: number;
  attemptTimeoutMs: number;
  restartBudget: RestartBudget;
  events: EventEmitter<VolleyEvents>;
  clock?: Clock;
  random?: () => number;
  /** The runtime's mode, shown on call spans (`volley.mode`). */
  mode?: string;
  /** Hedging for tail latency (hedge.ts); off when undefined. */
  hedge?: HedgePolicy;
}

export interface SupervisorRef {
  call(spec: CallSpec): Promise<CallResult>;
  /** A snapshot: later changes do not show in it, and changing it changes nothing. */
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
  /** The attempt's place in its endpoint's order of admission (see EndpointHealth). */
  ticket: number;
  attemptId: number;
  dispatchedAt: number;
  attemptTimeoutMs: number;
  reservedTokens: number;
  waitedMs: number;
  admitAbort: AbortController | undefined;
  retryTimer: TimerHandle | undefined;
  /** Stops watching the caller's signal (abort-watch.ts). */
  unwatchAbort: (() => void) | undefined;
  /** The call's OpenTelemetry span; undefined when nothing records (no SDK registered). */
  span: Span | undefined;
  /** Hedging: this object is a copy's attempt, never the call's own `Job`. */
  isCopy: boolean;
  /** Hedging: the other attempt of this call while both are on the wire. */
  twin: Job | undefined;
  /** The current attempt delivered its first byte (a delta, or its whole answer). */
  received: boolean;
  hedgeTimer: TimerHandle | undefined;
}

/** What belongs to one attempt rather than to the call: swapped when a hedged copy wins. */
const ATTEMPT_FIELDS = [
  'attemptId',
  'endpoint',
  'lane',
  'isProbe',
  'ticket',
  'dispatchedAt',
  'attemptTimeoutMs',
  'reservedTokens',
  'received',
] as const;

function swapAttempt(a: Job, b: Job): void {
  for (const field of ATTEMPT_FIELDS) {
    const kept = a[field];
    (a as unknown as Record<string, unknown>)[field] = b[field];
    (b as unknown as Record<string, unknown>)[field] = kept;
  }
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
  | { type: 'hedgeDue'; job: Job; attemptId: number }
  | { type: 'wake' }
  | { type: 'sweep' };

/** Counters behind `stats()`; the gauges (queued, in flight...) are read off the live structures. */
interface Counters {
  submitted: number;
  succeeded: number;
  failed: number;
  retries: number;
  backpressure: number;
  rateLimitWaitMs: number;
  extraBilledCalls: number;
  hedgedCalls: number;
  rateLimited: number;
  promptTokens: number;
  completionTokens: number;
  workerRestarts: number;
}

/** How often deadlines of queued, waiting and in-flight calls are checked. One timer, not one per call. */
const SWEEP_INTERVAL_MS = 250;
/** A worker gets this long past an attempt's deadline to report before the attempt is written off. */
const LOST_ATTEMPT_GRACE_MS = 5_000;

class Supervisor implements SupervisorRef {
  readonly #options: SupervisorOptions;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #events: EventEmitter<VolleyEvents>;
  readonly #bucket: TokenBucketRef;
  readonly #mailbox = new Mailbox<Message>((message) => this.#receive(message));
  readonly #health: EndpointHealth;
  readonly #crashes: RestartIntensity;
  readonly #outputTokens = new OutputTokenLearner();
  readonly #tracing: CallTracing;
  readonly #hedger: Hedger | undefined;
  readonly #queue = new CallQueue<Job>();
  readonly #ready: Job[] = [];
  readonly #admitting = new Set<Job>();
  readonly #inflight = new AttemptTable<Job>();
  readonly #backingOff = new Set<Job>();
  readonly #counters: Counters = {
    submitted: 0,
    succeeded: 0,
    failed: 0,
    retries: 0,
    backpressure: 0,
    rateLimitWaitMs: 0,
    extraBilledCalls: 0,
    hedgedCalls: 0,
    rateLimited: 0,
    promptTokens: 0,
    completionTokens: 0,
    workerRestarts: 0,
  };
  readonly #byEndpoint: Array<{ succeeded: number; failed: number; inFlight: number }>;
  readonly #dispatcher: Dispatcher;
  readonly #sweepTimer: TimerHandle;
  #nextCallId = 0;
  #flushScheduled = false;
  #saturated = false;
  #wasIdle = true;
  #closing: Promise<void> | undefined;
  #fatal: VolleyError | undefined;
  readonly #idleWaiters: Array<() => void> = [];

  constructor(options: SupervisorOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#events = options.events;
    this.#bucket = options.bucket;
    const endpointCount = options.endpoints.length;
    this.#byEndpoint = Array.from({ length: endpointCount }, () => ({
      succeeded: 0,
      failed: 0,
      inFlight: 0,
    }));
    this.#health = new EndpointHealth(
      options.endpoints.map((endpoint) => endpoint.label),
      options.circuitBreaker ?? defaultCircuitBreaker,
      this.#clock,
      this.#events,
      () => this.#post({ type: 'wake' }),
    );
    this.#crashes = new RestartIntensity(options.restartBudget);
    this.#hedger =
      options.hedge === undefined ? undefined : new Hedger(options.hedge, endpointCount);
    this.#tracing = new CallTracing(
      options.endpoints.map((endpoint) => endpoint.label),
      options.mode,
    );
    this.#dispatcher = options.createDispatcher({
      outcomes: (outcomes) => this.#post({ type: 'outcomes', outcomes }),
      deltas: (deltas) => this.#post({ type: 'deltas', deltas }),
      lost: (ids, error) => this.#post({ type: 'lost', ids, error }),
      workerCrashed: (error) => this.#post({ type: 'workerCrashed', error }),
    });
    this.#sweepTimer = this.#clock.setInterval(
      () => this.#post({ type: 'sweep' }),
      SWEEP_INTERVAL_MS,
    );
    this.#sweepTimer.unref?.();
  }

  // --- the public face ---------------------------------------------------------------------

  call(spec: CallSpec): Promise<CallResult> {
    if (this.#fatal !== undefined) return Promise.reject(this.#fatal);
    if (this.#closing !== undefined)
      return Promise.reject(new VolleyError(ErrorCode.STOPPED, 'runtime is closing'));
    if (spec.signal?.aborted) return Promise.reject(abortedError(spec.signal));
    return new Promise<CallResult>((resolve, reject) => {
      const callId = ++this.#nextCallId;
      const job: Job = {
        callId,
        spec,
        resolve,
        reject,
        state: 'queued',
        attempts: 0,
        failures: 0,
        ambiguousAttempts: 0,
        deadlineAt: this.#clock.now() + (spec.timeoutMs ?? this.#options.timeoutMs),
        endpoint: 0,
        lane: 0,
        isProbe: false,
        ticket: 0,
        attemptId: 0,
        dispatchedAt: 0,
        attemptTimeoutMs: 0,
        reservedTokens: 0,
        waitedMs: 0,
        admitAbort: undefined,
        retryTimer: undefined,
        unwatchAbort: undefined,
        isCopy: false,
        twin: undefined,
        received: false,
        hedgeTimer: undefined,
        // Started here, in the caller's context, so the caller's active span is its parent.
        span: this.#tracing.start(callId, spec.path, spec.body),
      };
      if (spec.signal !== undefined) {
        job.unwatchAbort = watchAbort(spec.signal, () => this.#post({ type: 'abort', job }));
      }
      // Handled at once: the call is admitted (and its capacity taken) before call() returns. A
      // call that cannot be admitted at all (every endpoint stopped) is failed here; its promise
      // still rejects later, as promises do.
      this.#post({ type: 'call', job });
    });
  }

  stats(): RuntimeStats {
    return {
      ...this.#counters,
      queued: this.#queue.length,
      inFlight: this.#inflight.size,
      waitingOnRateLimit: this.#admitting.size,
      backingOff: this.#backingOff.size,
      byEndpoint: this.#byEndpoint.map((counts, endpoint) => ({
        ...counts,
        stopped: this.#health.isStopped(endpoint),
        down: this.#health.isDown(endpoint),
        circuit: this.#health.circuit(endpoint),
      })),
    };
  }

  get isSaturated(): boolean {
    return this.#saturated;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (!this.#isIdle()) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
      this.#clock.clearInterval(this.#sweepTimer);
      this.#health.close();
      await this.#dispatcher.close();
      await this.#bucket.stop();
    })();
    return this.#closing;
  }

  async destroy(error?: Error): Promise<void> {
    const reason = new VolleyError(
      ErrorCode.ABORTED,
      'runtime destroyed',
      error ? { cause: error } : {},
    );
    const wasClosing = this.#closing;
    this.#closing ??= Promise.resolve();
    this.#abandonAll(reason);
    this.#clock.clearInterval(this.#sweepTimer);
    await this.#dispatcher.destroy();
    await this.#bucket.stop();
    await wasClosing;
  }

  // --- messages ----------------------------------------------------------------------------

  #post(message: Message): void {
    this.#mailbox.send(message);
  }

  #receive(message: Message): void {
    switch (message.type) {
      case 'call':
        this.#counters.submitted++;
        this.#queue.push(message.job);
        if (this.#queue.length >= this.#options.maxQueue) this.#saturated = true;
        break;
      case 'granted':
        this.#onGranted(message.job, message.waitedMs);
        break;
      case 'denied':
        this.#admitting.delete(message.job);
        this.#health.release(message.job.endpoint, message.job.isProbe);
        this.#finish(message.job, message.error);
        break;
      case 'flush':
        this.#flush();
        break;
      case 'outcomes':
        for (const outcome of message.outcomes) this.#onOutcome(outcome);
        break;
      case 'deltas':
        for (const delta of message.deltas) this.#onDelta(delta);
        return;
      case 'lost':
        for (const id of message.ids) {
          this.#onOutcome({
            id,
            ok: false,
            error: { ...message.error, code: ErrorCode.WORKER_CRASHED },
          });
        }
        break;
      case 'workerCrashed':
        this.#onWorkerCrashed(message.error);
        return;
      case 'retryDue':
        this.#backingOff.delete(message.job);
        if (message.job.state !== 'backoff') return;
        message.job.state = 'queued';
        this.#queue.pushRetry(message.job);
        break;
      case 'abort':
        this.#onAbort(message.job);
        break;
      case 'hedgeDue':
        this.#onHedgeDue(message.job, message.attemptId);
        return;
      case 'wake':
        break;
      case 'sweep':
        this.#sweep();
        break;
    }
    this.#pump();
  }

  // --- admission ---------------------------------------------------------------------------

  /** Admits queued calls while attempts are below the concurrency bound. */
  #pump(): void {
    while (
      this.#inflight.size + this.#admitting.size + this.#ready.length < this.#options.concurrency &&
      this.#queue.length > 0
    ) {
      const endpoint = this.#health.choose(this.#options.limits);
      if (endpoint === WAIT_FOR_CIRCUIT) break;
      this.#admit(this.#queue.shift() as Job, endpoint);
    }
    if (this.#saturated && this.#queue.length < this.#options.maxQueue / 2) {
      this.#saturated = false;
      this.#events.emit('drain');
    }
    const idle = this.#isIdle();
    if (idle !== this.#wasIdle) {
      this.#wasIdle = idle;
      // While calls are pending the sweep keeps the process alive, so a call whose worker was
      // lost still ends (by its deadline) instead of the process exiting under the caller.
      if (idle) this.#sweepTimer.unref?.();
      else this.#sweepTimer.ref?.();
    }
    if (this.#closing !== undefined && idle) for (const wake of this.#idleWaiters.splice(0)) wake();
  }

  #admit(job: Job, endpoint: number | undefined): void {
    // Out of its queue now: finishing it from here must not count it as dead in a queue.
    job.state = 'admitting';
    if (this.#clock.now() >= job.deadlineAt) {
      this.#finish(job, this.#timeoutError(job));
      return;
    }
    if (endpoint === undefined) {
      this.#finish(job, this.#noEndpointError());
      return;
    }
    const admission = this.#health.admit(endpoint);
    job.isProbe = admission.isProbe;
    job.ticket = admission.ticket;
    job.endpoint = endpoint;
    job.lane = this.#laneFor(endpoint, job.spec.body.model);
    const counter = this.#options.tokenCounter;
    job.reservedTokens =
      counter === undefined
        ? 0
        : estimateRequestTokens(job.spec.body, counter, this.#outputTokens.estimate(job.lane));
    const grant = this.#bucket.tryAcquire(job.lane, job.reservedTokens);
    if (grant !== undefined) {
      this.#makeReady(job, grant.waitedMs);
      return;
    }
    this.#admitting.add(job);
    job.admitAbort = new AbortController();
    this.#bucket.acquire(job.lane, job.reservedTokens, job.admitAbort.signal).then(
      (granted) => this.#post({ type: 'granted', job, waitedMs: granted.waitedMs }),
      (error: unknown) => this.#post({ type: 'denied', job, error: toError(error) }),
    );
  }

  #laneFor(endpoint: number, model: unknown): number {
    const policy = this.#options.endpoints[endpoint]!;
    return (typeof model === 'string' ? policy.modelLanes?.get(model) : undefined) ?? policy.lane;
  }

  #onGranted(job: Job, waitedMs: number): void {
    this.#admitting.delete(job);
    job.admitAbort = undefined;
    if (job.state !== 'admitting') {
      // Ended while waiting: hand the capacity back untouched.
      this.#bucket.settle(job.lane, job.reservedTokens, 0);
      this.#health.release(job.endpoint, job.isProbe);
      return;
    }
    this.#makeReady(job, waitedMs);
  }

  #makeReady(job: Job, waitedMs: number): void {
    this.#tracing.waited(job.span, waitedMs);
    job.waitedMs += waitedMs;
    this.#counters.rateLimitWaitMs += waitedMs;
    job.state = 'ready';
    this.#ready.push(job);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // One dispatch per loop turn: grants that land together go to the workers as one batch,
      // which is what makes the per-message cost of the thread hop affordable.
      this.#clock.defer(() => this.#post({ type: 'flush' }));
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#ready.length === 0) return;
    const now = this.#clock.now();
    const requests: WorkRequest[] = [];
    const emitRequest = this.#events.listenerCount('request') > 0;
    for (const job of this.#ready.splice(0)) {
      if (job.state !== 'ready' || this.#health.isStopped(job.endpoint)) {
        // Ended after its grant, or its endpoint stopped meanwhile: hand the capacity back.
        this.#bucket.settle(job.lane, job.reservedTokens, 0);
        this.#health.release(job.endpoint, job.isProbe);
        if (job.state === 'ready') {
          job.state = 'queued';
          this.#queue.pushRetry(job);
        }
        continue;
      }
      const attemptTimeoutMs = Math.max(
        1,
        Math.min(this.#options.attemptTimeoutMs, job.deadlineAt - now),
      );
      job.attemptId = this.#inflight.add(job);
      job.attempts++;
      job.state = 'inflight';
      job.dispatchedAt = now;
      job.attemptTimeoutMs = attemptTimeoutMs;
      job.received = false;
      this.#byEndpoint[job.endpoint]!.inFlight++;
      requests.push(this.#workRequest(job));
      if (this.#hedger !== undefined) {
        this.#hedger.started();
        this.#armHedge(job);
      }
      this.#tracing.dispatched(job.span, job.endpoint, job.attempts);
      if (emitRequest) {
        this.#events.emit('request', {
          callId: job.callId,
          attempt: job.attempts,
          endpoint: job.endpoint,
          model: modelOf(job),
        });
      }
    }
    if (requests.length > 0) this.#dispatcher.dispatch(requests);
  }

  #workRequest(job: Job): WorkRequest {
    const stream = job.spec.stream === true;
    return {
      id: job.attemptId,
      endpoint: job.endpoint,
      path: job.spec.path,
      body: job.spec.body,
      stream,
      // Hedging needs to hear a stream's first delta: before it, the attempt is silent.
      deltas: job.spec.onDelta !== undefined || (stream && this.#hedger !== undefined),
      raw: job.spec.raw === true,
      embeddings: job.spec.embeddings ?? 'none',
      timeoutMs: job.attemptTimeoutMs,
    };
  }

  // --- hedging -----------------------------------------------------------------------------

  /** Looks at the attempt again once it has been silent for its endpoint's hedge delay. */
  #armHedge(job: Job): void {
    const delayMs = this.#hedger?.delayMs(job.endpoint);
    if (delayMs === undefined) return;
    const attemptId = job.attemptId;
    job.hedgeTimer = this.#clock.setTimeout(
      () => this.#post({ type: 'hedgeDue', job, attemptId }),
      delayMs,
    );
  }

  #onHedgeDue(job: Job, attemptId: number): void {
    if (job.attemptId !== attemptId) return;
    job.hedgeTimer = undefined;
    const silent = job.state === 'inflight' && !job.received && job.twin === undefined;
    // No other endpoint free, no rate-limit capacity now, or no budget: look again a delay later
    // (a stalled attempt is still silent then; a merely slow one has answered).
    if (silent && !this.#sendCopy(job)) this.#armHedge(job);
  }

  /**
   * Sends a copy of `job`'s attempt to another endpoint. It goes past the runtime's concurrency
   * bound (a closed batch holds every slot, so a copy would never go otherwise): the budget bounds
   * how far. It needs its endpoint's limit and rate-limit capacity now; a copy that had to wait
   * for either would come too late.
   */
  #sendCopy(job: Job): boolean {
    const endpoint = this.#health.choose(this.#options.limits, job.endpoint);
    if (typeof endpoint !== 'number') return false;
    const lane = this.#laneFor(endpoint, job.spec.body.model);
    if (this.#bucket.tryAcquire(lane, job.reservedTokens) === undefined) return false;
    if (!this.#hedger!.tryTake()) {
      this.#bucket.settle(lane, job.reservedTokens, 0);
      return false;
    }
    const admission = this.#health.admit(endpoint);
    const now = this.#clock.now();
    const copy: Job = {
      ...job,
      isCopy: true,
      twin: job,
      attemptId: 0,
      endpoint,
      lane,
      isProbe: admission.isProbe,
      ticket: admission.ticket,
      dispatchedAt: now,
      attemptTimeoutMs: Math.max(1, Math.min(this.#options.attemptTimeoutMs, job.deadlineAt - now)),
      received: false,
      hedgeTimer: undefined,
      retryTimer: undefined,
      admitAbort: undefined,
      unwatchAbort: undefined,
    };
    job.twin = copy;
    copy.attemptId = this.#inflight.add(copy);
    this.#byEndpoint[endpoint]!.inFlight++;
    // Whichever answers first, the provider may bill both.
    this.#counters.hedgedCalls++;
    this.#counters.extraBilledCalls++;
    this.#dispatcher.dispatch([this.#workRequest(copy)]);
    if (this.#events.listenerCount('hedge') > 0) {
      this.#events.emit('hedge', {
        callId: job.callId,
        attempt: job.attempts,
        endpoint: job.endpoint,
        model: modelOf(job),
        to: endpoint,
        afterMs: now - job.dispatchedAt,
      });
    }
    return true;
  }

  /**
   * Ends the race of a hedged call. `attempt` delivered first (`won`), or failed while its twin is
   * still out (then the twin carries the call on). Afterwards the call's own `Job` holds the
   * attempt that carries on, and the copy object the other one, done: its outcome only settles
   * the books. A loser still on the wire is cancelled through the dispatcher (in threads mode, by
   * the thread holding it).
   */
  #endRace(attempt: Job, won: boolean): void {
    const twin = attempt.twin!;
    attempt.twin = undefined;
    twin.twin = undefined;
    const call = attempt.isCopy ? twin : attempt;
    const copy = attempt.isCopy ? attempt : twin;
    const copyCarriesOn = won === attempt.isCopy;
    if (copyCarriesOn) {
      swapAttempt(call, copy);
      this.#inflight.replace(call.attemptId, call);
      this.#inflight.replace(copy.attemptId, copy);
    }
    copy.state = 'done';
    if (won) this.#dispatcher.cancel([copy.attemptId]);
  }

  /** The attempt delivered its first byte: a time-to-first-byte sample, and no copy from now on. */
  #heard(job: Job): void {
    job.received = true;
    this.#hedger?.sample(job.endpoint, this.#clock.now() - job.dispatchedAt);
    if (job.hedgeTimer !== undefined) this.#clock.clearTimeout(job.hedgeTimer);
    job.hedgeTimer = undefined;
  }

  #onDelta(delta: StreamDelta): void {
    let job = this.#inflight.get(delta.id);
    if (job === undefined) return;
    if (job.twin !== undefined) {
      this.#endRace(job, true);
      job = this.#inflight.get(delta.id)!;
    }
    // A cancelled copy's deltas: the caller hears only the attempt that won.
    if (job.isCopy) return;
    if (!job.received && job.state === 'inflight') this.#heard(job);
    job.spec.onDelta?.(delta);
  }

  // --- outcomes ----------------------------------------------------------------------------

  #onOutcome(outcome: WorkOutcome): void {
    let job = this.#inflight.get(outcome.id);
    if (job === undefined) {
      // An attempt already written off (its worker was declared dead, or it was swept): if it
      // succeeded after all, the server did the work twice.
      if (outcome.ok) this.#counters.extraBilledCalls++;
      return;
    }
    if (job.twin !== undefined) {
      this.#endRace(job, outcome.ok);
      job = this.#inflight.get(outcome.id)!;
    }
    if (job.hedgeTimer !== undefined) this.#clock.clearTimeout(job.hedgeTimer);
    job.hedgeTimer = undefined;
    if (outcome.ok && !job.received && job.state === 'inflight') this.#heard(job);
    this.#inflight.delete(outcome.id);
    const onWire = this.#byEndpoint[job.endpoint]!.inFlight--;
    this.#options.limits?.record(job.endpoint, outcome, onWire, job.spec.stream === true);
    this.#health.release(job.endpoint, job.isProbe);
    job.isProbe = false;
    if (outcome.rateLimit !== undefined)
      this.#bucket.observe(job.lane, capResets(outcome.rateLimit, this.#options.retryAfterCapMs));
    this.#tracing.attemptEnded(
      job.span,
      job.attempts,
      outcome.ok,
      outcome.ok ? outcome.timing.latencyMs : undefined,
    );
    if (outcome.ok) this.#onSuccess(job, outcome);
    else this.#onFailure(job, outcome);
  }

  #onSuccess(job: Job, outcome: WorkSuccess): void {
    // Impossible usage is unknown usage: the reservation stands, and no counter, result or event
    // carries it (the body still holds what the server said).
    const usage = trustedUsage(outcome.usage);
    this.#bucket.settle(job.lane, job.reservedTokens, usage?.total_tokens ?? job.reservedTokens);
    this.#health.onSuccess(job.endpoint);
    if (usage?.completion_tokens !== undefined)
      this.#outputTokens.learn(job.lane, job.spec.body, usage.completion_tokens);
    if (job.state !== 'inflight') return;
    if (usage !== undefined) {
      this.#counters.promptTokens += usage.prompt_tokens;
      this.#counters.completionTokens += usage.completion_tokens ?? 0;
    }
    this.#counters.succeeded++;
    this.#byEndpoint[job.endpoint]!.succeeded++;
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
    if (this.#events.listenerCount('complete') > 0) {
      this.#events.emit('complete', {
        callId: job.callId,
        attempt: job.attempts,
        endpoint: job.endpoint,
        model: modelOf(job),
        latencyMs: outcome.timing.latencyMs,
        ttftMs: outcome.timing.ttftMs,
        usage,
        waitedMs: job.waitedMs,
      });
    }
    this.#tracing.succeeded(job.span, outcome.status, outcome.body, usage);
    this.#settle(job);
    job.resolve(result);
  }

  #onFailure(job: Job, outcome: WorkFailure): void {
    const decision = afterFailure({
      failure: outcome.error,
      endpoint: job.endpoint,
      slotLimited: this.#options.endpoints[job.endpoint]!.slots === true,
      call: {
        attempts: job.attempts,
        failures: job.failures,
        ambiguousAttempts: job.ambiguousAttempts,
        deadlineAt: job.deadlineAt,
        timeoutMs: job.spec.timeoutMs ?? this.#options.timeoutMs,
      },
      policy: this.#options,
      now: this.#clock.now(),
      random: this.#random(),
    });
    this.#bucket.settle(
      job.lane,
      job.reservedTokens,
      decision.refundTokens ? 0 : job.reservedTokens,
    );
    if (decision.endpoint === 'fault') this.#health.onFault(job.endpoint);
    if (decision.reached === 'api') this.#health.onAnswered(job.endpoint);
    if (
      decision.reached === 'not-api' &&
      this.#health.onUnreachable(job.endpoint, job.ticket, decision.error) &&
      !this.#health.anyUsable()
    ) {
      // Nothing left to retry on: calls waiting out a backoff fail now, with the cause.
      for (const waiting of [...this.#backingOff]) this.#finish(waiting, this.#noEndpointError());
    }
    // Ended while in flight (aborted, timed out): the attempt's outcome only settles the books.
    if (job.state !== 'inflight') return;

    if (decision.pacing === 'rate-limited') this.#counters.rateLimited++;
    if (decision.pacing === 'backpressure') this.#counters.backpressure++;
    if (decision.cooldownMs !== undefined) this.#bucket.cooldown(job.lane, decision.cooldownMs);
    if (decision.pacing === 'rate-limited')
      this.#tracing.rateLimited(job.span, outcome.error.retryAfterMs);
    if (decision.pacing === 'rate-limited' && this.#events.listenerCount('rateLimited') > 0) {
      this.#events.emit('rateLimited', {
        callId: job.callId,
        attempt: job.attempts,
        endpoint: job.endpoint,
        model: modelOf(job),
        retryAfterMs: outcome.error.retryAfterMs,
      });
    }
    if (decision.endpoint === 'stop') this.#health.stop(job.endpoint, decision.error);
    if (decision.billed) this.#counters.extraBilledCalls++;
    if (decision.countsAsFailure) job.failures++;
    if (decision.countsAsAmbiguous) job.ambiguousAttempts++;

    const next = decision.next;
    switch (next.do) {
      case 'fail':
        this.#finish(job, next.error);
        return;
      case 'requeue':
        this.#requeue(job);
        return;
      case 'retry':
        this.#counters.retries++;
        this.#tracing.retry(job.span, job.attempts, next.delayMs, decision.error);
        if (this.#events.listenerCount('retry') > 0) {
          this.#events.emit('retry', {
            callId: job.callId,
            attempt: job.attempts,
            endpoint: job.endpoint,
            model: modelOf(job),
            delayMs: next.delayMs,
            error: decision.error,
            ambiguous: next.ambiguous,
          });
        }
        job.state = 'backoff';
        this.#backingOff.add(job);
        job.retryTimer = this.#clock.setTimeout(
          () => this.#post({ type: 'retryDue', job }),
          next.delayMs,
        );
        return;
    }
  }

  /** Back to the head of the line without using up an attempt. */
  #requeue(job: Job): void {
    job.attempts--;
    job.state = 'queued';
    this.#queue.pushRetry(job);
  }

  #onWorkerCrashed(failure: SerializedError): void {
    this.#counters.workerRestarts++;
    const error = deserializeError(failure);
    this.#events.emit('workerCrash', { error, restarts: this.#counters.workerRestarts });
    if (this.#crashes.crashed(this.#clock.now())) {
      this.#escalate(
        new VolleyError(
          ErrorCode.WORKER_CRASHED,
          `worker threads crashed ${this.#crashes.recent} times within ${this.#crashes.windowMs} ms; giving up`,
          { cause: error },
        ),
      );
    }
  }

  /** Past the restart budget: fail everything pending, loudly, and take no more work. */
  #escalate(error: VolleyError): void {
    if (this.#fatal !== undefined) return;
    this.#fatal = error;
    this.#abandonAll(error);
    this.#events.emit('error', error);
    void this.#dispatcher.destroy();
  }

  #onAbort(job: Job): void {
    const error = abortedError(job.spec.signal);
    switch (job.state) {
      case 'inflight':
        // The worker aborts the HTTP request; its outcome (aborted) settles the bucket.
        this.#dispatcher.cancel([job.attemptId]);
        break;
      case 'admitting':
        job.admitAbort?.abort();
        break;
      default:
        break;
    }
    this.#finish(job, error);
  }

  // --- deadlines and endings ---------------------------------------------------------------

  #sweep(): void {
    const now = this.#clock.now();
    for (const [attemptId, job] of this.#inflight.entries()) {
      if (now > job.dispatchedAt + job.attemptTimeoutMs + LOST_ATTEMPT_GRACE_MS) {
        // The worker never reported: treat the attempt as lost in flight.
        this.#dispatcher.cancel([attemptId]);
        this.#onOutcome({
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
    for (const job of this.#admitting) {
      if (now >= job.deadlineAt) {
        job.admitAbort?.abort();
        this.#finish(job, this.#timeoutError(job));
      }
    }
    // Queued calls can outlive their deadline while every slot is busy.
    for (const job of [...this.#queue.expired(now)]) this.#finish(job, this.#timeoutError(job));
  }

  /** Fails every pending call and forgets attempts on the wire: their workers are being torn down. */
  #abandonAll(error: Error): void {
    const pending = [
      ...this.#queue.live(),
      ...this.#ready.splice(0),
      ...this.#admitting,
      ...this.#backingOff,
      // A copy's call is there too, and ending it ends the copy.
      ...[...this.#inflight.values()].filter((job) => !job.isCopy),
    ];
    for (const job of pending) this.#finish(job, error);
    this.#queue.clear();
    this.#inflight.clear();
    this.#health.reset();
    for (const endpoint of this.#byEndpoint) endpoint.inFlight = 0;
    for (const wake of this.#idleWaiters.splice(0)) wake();
  }

  #settle(job: Job): void {
    // A call that ends while its copy is out keeps its own attempt; the copy is cancelled.
    if (job.twin !== undefined) this.#endRace(job, true);
    job.state = 'done';
    if (job.retryTimer !== undefined) this.#clock.clearTimeout(job.retryTimer);
    if (job.hedgeTimer !== undefined) this.#clock.clearTimeout(job.hedgeTimer);
    job.unwatchAbort?.();
  }

  #finish(job: Job, error: Error): void {
    if (job.state === 'done') return;
    // An attempt still on the wire stays in `inflight` until its outcome arrives: it holds a
    // connection and a concurrency slot, and its outcome settles the bucket. A queued call stays
    // in its queue, counted as dead until the queue meets it.
    if (job.state === 'queued') this.#queue.markDead();
    if (job.state === 'backoff') this.#backingOff.delete(job);
    if (job.state === 'admitting') this.#admitting.delete(job);
    this.#counters.failed++;
    // An abort (the caller's signal, destroy()) says nothing about the endpoint's health.
    const aborted = error instanceof VolleyError && error.code === ErrorCode.ABORTED;
    if (job.attempts > 0 && !aborted) this.#byEndpoint[job.endpoint]!.failed++;
    const final = finalError(job, error);
    if (this.#events.listenerCount('fail') > 0 && final instanceof VolleyError) {
      this.#events.emit('fail', {
        callId: job.callId,
        attempt: job.attempts,
        endpoint: job.endpoint,
        model: modelOf(job),
        error: final,
      });
    }
    this.#tracing.failed(job.span, final);
    this.#settle(job);
    job.reject(final);
  }

  #timeoutError(job: Job): VolleyError {
    return timeoutError(job.spec.timeoutMs ?? this.#options.timeoutMs);
  }

  #noEndpointError(): VolleyError {
    const cause = this.#health.unusableCause();
    // Each call gets its own copy of a down endpoint's error: callers may annotate what they get.
    if (cause?.code === ErrorCode.ENDPOINT_DOWN) return cause.withDetails({});
    return new VolleyError(
      ErrorCode.NO_ENDPOINT,
      `no endpoint can take the call: ${cause?.message ?? 'all endpoints stopped'}`,
      cause ? { cause } : {},
    );
  }

  #isIdle(): boolean {
    return (
      this.#queue.length +
        this.#ready.length +
        this.#admitting.size +
        this.#backingOff.size +
        this.#inflight.size ===
      0
    );
  }
}

/** Creates the supervisor actor, which creates its dispatcher. */
export function createSupervisor(options: SupervisorOptions): SupervisorRef {
  return new Supervisor(options);
}

/**
 * The error a call rejects with says how many attempts it made and whether sending it again
 * later could succeed, so no caller re-derives either. Each call gets its own copy: one error
 * (a destroy, an escalation) may end many calls with different attempt counts.
 */
function finalError(job: Job, error: Error): Error {
  if (!(error instanceof VolleyError)) return error;
  return error.withDetails({ attempts: job.attempts, transient: isTransient(error) });
}

/** The model a call names, for event consumers (metrics, traces). */
function modelOf(job: Job): string | undefined {
  const model = job.spec.body.model;
  return typeof model === 'string' ? model : undefined;
}

function abortedError(signal: AbortSignal | undefined): VolleyError {
  return new VolleyError(ErrorCode.ABORTED, 'call aborted by the caller', {
    cause: signal?.reason,
  });
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
