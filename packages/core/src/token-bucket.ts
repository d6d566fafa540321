/**
 * The token-bucket actor: the one place that decides when an endpoint may take another request.
 *
 * Per endpoint (a "lane") it keeps two continuously refilling buckets, requests per minute and
 * tokens per minute, plus an optional in-flight cap for local servers that have a fixed number of
 * slots. A request reserves one request and its estimated tokens at admission; when the response
 * arrives the reservation is settled against the real `usage` (refund or charge; a charge can
 * take the token bucket below zero, which delays later admissions instead of overshooting).
 * A 429 cools down only the lane that sent it.
 *
 * Waiters are served FIFO per lane, so a large request is never starved by a stream of small
 * ones; each lane has at most one timer, armed for the moment its head waiter can go.
 *
 * An actor without a mailbox: it owns its lanes, only its own methods touch them, and each method
 * runs to completion on the one thread that owns the bucket. It never calls back into its caller
 * synchronously (grants to waiters settle promises, which run later), so no message can arrive
 * while another is being handled, and a queue would only add a microtask per request.
 */
import type { Clock, TimerHandle } from './clock.js';
import { systemClock } from './clock.js';
import { ErrorCode, VolleyError } from './errors.js';
import { FixedQueue } from './fixed-queue.js';
import type { RateLimitSnapshot } from './rate-limit-headers.js';

export interface LaneLimits {
  /** Requests per minute; undefined means unlimited. */
  rpm?: number;
  /** Tokens per minute (prompt plus completion); undefined means unlimited. */
  tpm?: number;
  /** Requests in flight at once (local servers with a fixed number of slots). */
  maxInFlight?: number;
}

export interface TokenBucketOptions {
  lanes: LaneLimits[];
  /**
   * How much may go at once after a quiet spell, as a duration of the refill rate. Small on
   * purpose: a full minute's burst would let a run exceed its limit by up to 2x at the start.
   */
  burstMs?: number;
  clock?: Clock;
}

export interface Grant {
  /** How long the request waited in the bucket. */
  waitedMs: number;
}

export interface LaneStats {
  availableRequests: number;
  availableTokens: number;
  inFlight: number;
  waiting: number;
  cooldownRemainingMs: number;
  /** Sum of time requests spent waiting for admission. */
  totalWaitMs: number;
  grants: number;
}

export interface TokenBucketRef {
  /**
   * Takes one request of `tokens` estimated tokens on `lane` if it can go now (capacity there,
   * nobody waiting ahead): the common case, answered in the caller's turn with no promise.
   * `undefined` means the caller must `acquire` and wait.
   */
  tryAcquire(lane: number, tokens: number): Grant | undefined;
  /** Waits until `lane` can take one request of `tokens` estimated tokens (FIFO per lane). */
  acquire(lane: number, tokens: number, signal?: AbortSignal): Promise<Grant>;
  /** Settles a reservation: `actualTokens` replaces the estimate; frees the in-flight slot. */
  settle(lane: number, reservedTokens: number, actualTokens: number): void;
  /** Nothing is admitted to `lane` for `durationMs` (a 429, or `retry-after`). */
  cooldown(lane: number, durationMs: number): void;
  /**
   * Live correction from `x-ratelimit-*` headers: adopts announced limits where none was
   * configured, never raises what we think is left, cools down on `remaining: 0`.
   */
  observe(lane: number, snapshot: RateLimitSnapshot): void;
  stats(): Promise<LaneStats[]>;
  stop(): Promise<void>;
}

interface Waiter {
  tokens: number;
  enqueuedAt: number;
  resolve: (grant: Grant) => void;
  reject: (error: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  settled: boolean;
}

const DEFAULT_BURST_MS = 250;

class Lane {
  readonly #clock: Clock;
  readonly #burstMs: number;
  /** Limits the user configured; limits learned from headers never override these. */
  readonly #configured: LaneLimits;
  requestsPerMs = Infinity;
  tokensPerMs = Infinity;
  requestCapacity = Infinity;
  tokenCapacity = Infinity;
  readonly maxInFlight: number;
  requests = Infinity;
  tokens = Infinity;
  inFlight = 0;
  cooldownUntil = 0;
  totalWaitMs = 0;
  grants = 0;
  /** Live waiters; aborted ones may still sit in the queue until they reach its head. */
  waiting = 0;
  readonly waiters = new FixedQueue<Waiter>();
  #lastRefill: number;
  #timer: TimerHandle | undefined;
  /** Token cost of the waiter at the head of the queue (0 when nobody waits). */
  #headNeed = 0;

  constructor(limits: LaneLimits, burstMs: number, clock: Clock) {
    this.#clock = clock;
    this.#burstMs = burstMs;
    this.#configured = limits;
    this.maxInFlight = limits.maxInFlight ?? Infinity;
    this.#lastRefill = clock.now();
    this.setRates(limits.rpm, limits.tpm);
  }

  /** (Re)sets the refill rates; a bucket starts full at its new capacity. */
  setRates(rpm: number | undefined, tpm: number | undefined): void {
    this.requestsPerMs = rpm === undefined ? Infinity : rpm / 60_000;
    this.tokensPerMs = tpm === undefined ? Infinity : tpm / 60_000;
    this.requestCapacity = Math.max(1, this.requestsPerMs * this.#burstMs);
    this.tokenCapacity = Math.max(1, this.tokensPerMs * this.#burstMs);
    this.requests = Math.min(this.requests, this.requestCapacity);
    this.tokens = Math.min(this.tokens, this.tokenCapacity);
  }

  /**
   * Live correction from `x-ratelimit-*` headers. A lane with no configured limit adopts the one
   * the server announces (so a run with no `--rpm` still paces itself after the first response);
   * `remaining` only ever lowers what we think is left.
   */
  observe(snapshot: RateLimitSnapshot, now: number): void {
    this.refill(now);
    const learnRequests =
      this.#configured.rpm === undefined && snapshot.limitRequests !== undefined;
    const learnTokens = this.#configured.tpm === undefined && snapshot.limitTokens !== undefined;
    if (
      (learnRequests && snapshot.limitRequests !== this.requestsPerMs * 60_000) ||
      (learnTokens && snapshot.limitTokens !== this.tokensPerMs * 60_000)
    ) {
      this.setRates(
        learnRequests ? snapshot.limitRequests : this.#configured.rpm,
        learnTokens ? snapshot.limitTokens : this.#configured.tpm,
      );
    }
    const { remainingRequests, remainingTokens } = snapshot;
    if (remainingRequests !== undefined && this.requestsPerMs !== Infinity) {
      this.requests = Math.min(this.requests, remainingRequests);
    }
    if (remainingTokens !== undefined && this.tokensPerMs !== Infinity) {
      this.tokens = Math.min(this.tokens, remainingTokens);
    }
    // `reset` is the time until the server's bucket is full again, far longer than the wait for
    // one more request: it is only worth honouring when the refill rate is unknown.
    if (
      remainingRequests === 0 &&
      snapshot.resetRequestsMs !== undefined &&
      this.requestsPerMs === Infinity
    ) {
      this.cooldownUntil = Math.max(this.cooldownUntil, now + snapshot.resetRequestsMs);
    }
    if (
      remainingTokens === 0 &&
      snapshot.resetTokensMs !== undefined &&
      this.tokensPerMs === Infinity
    ) {
      this.cooldownUntil = Math.max(this.cooldownUntil, now + snapshot.resetTokensMs);
    }
  }

  refill(now: number): void {
    const elapsed = now - this.#lastRefill;
    this.#lastRefill = now;
    if (elapsed <= 0) return;
    this.requests = Math.min(this.requestCapacity, this.requests + elapsed * this.requestsPerMs);
    // While a request bigger than the burst waits at the head, tokens accumulate up to its need.
    this.tokens = Math.min(this.tokenCeiling, this.tokens + elapsed * this.tokensPerMs);
  }

  /** Most tokens the bucket holds: the burst, or the head waiter's need when that is larger. */
  get tokenCeiling(): number {
    return Math.max(this.tokenCapacity, this.#headNeed);
  }

  /**
   * 0 when `tokens` can go now; Infinity when only a settle can unblock it; else ms to wait.
   *
   * A request bigger than the burst waits until its whole cost has accrued. Sending it when the
   * (small) burst is full would be early for any server whose own bucket is larger, which is all
   * of them (OpenAI's holds a minute); the server then answers 429 and the request waits anyway.
   */
  delayFor(tokens: number, now: number): number {
    if (this.inFlight >= this.maxInFlight) return Infinity;
    return Math.max(
      this.cooldownUntil - now,
      this.requests >= 1 ? 0 : (1 - this.requests) / this.requestsPerMs,
      this.tokens >= tokens ? 0 : (tokens - this.tokens) / this.tokensPerMs,
      0,
    );
  }

  take(tokens: number): void {
    this.requests -= 1;
    if (this.tokensPerMs !== Infinity) this.tokens -= tokens;
    this.inFlight++;
    this.grants++;
  }

  /** Grants waiters in FIFO order while the head fits; arms one timer for the head otherwise. */
  pump(): void {
    const now = this.#clock.now();
    this.refill(now);
    for (let head = this.waiters.peek(); head !== undefined; head = this.waiters.peek()) {
      if (head.settled) {
        this.waiters.shift();
        continue;
      }
      this.#headNeed = head.tokens;
      const delay = this.delayFor(head.tokens, now);
      if (delay > 0) {
        this.#arm(delay);
        return;
      }
      this.#headNeed = 0;
      this.waiters.shift();
      this.take(head.tokens);
      const waitedMs = now - head.enqueuedAt;
      this.totalWaitMs += waitedMs;
      head.settled = true;
      this.waiting--;
      if (head.onAbort) head.signal?.removeEventListener('abort', head.onAbort);
      head.resolve({ waitedMs });
    }
  }

  #arm(delayMs: number): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (delayMs === Infinity) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.pump();
    }, Math.ceil(delayMs));
  }

  close(error: VolleyError): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    for (const waiter of this.waiters.drain()) {
      if (waiter.settled) continue;
      waiter.settled = true;
      waiter.reject(error);
    }
    this.waiting = 0;
  }
}

function abortedWhileWaiting(): VolleyError {
  return new VolleyError(ErrorCode.ABORTED, 'aborted while waiting for rate-limit capacity');
}

/** The token-bucket actor. Lanes are indexed like the endpoints they guard. */
class TokenBucket implements TokenBucketRef {
  readonly #clock: Clock;
  readonly #lanes: Lane[];
  #stopped = false;

  constructor(options: TokenBucketOptions) {
    this.#clock = options.clock ?? systemClock;
    const burstMs = options.burstMs ?? DEFAULT_BURST_MS;
    this.#lanes = options.lanes.map((limits) => new Lane(limits, burstMs, this.#clock));
  }

  tryAcquire(lane: number, tokens: number): Grant | undefined {
    if (this.#stopped) return undefined;
    const target = this.#lane(lane);
    const now = this.#clock.now();
    target.refill(now);
    if (target.waiting > 0 || target.delayFor(tokens, now) > 0) return undefined;
    target.take(tokens);
    return { waitedMs: 0 };
  }

  acquire(lane: number, tokens: number, signal?: AbortSignal): Promise<Grant> {
    if (this.#stopped) return Promise.reject(stoppedError());
    const target = this.#lanes[lane];
    if (target === undefined) return Promise.reject(noLaneError(lane));
    if (signal?.aborted) return Promise.reject(abortedWhileWaiting());
    const granted = this.tryAcquire(lane, tokens);
    if (granted !== undefined) return Promise.resolve(granted);
    return new Promise<Grant>((resolve, reject) => {
      const waiter: Waiter = {
        tokens,
        enqueuedAt: this.#clock.now(),
        resolve,
        reject,
        signal,
        onAbort: undefined,
        settled: false,
      };
      if (signal !== undefined) {
        waiter.onAbort = () => {
          if (waiter.settled) return;
          waiter.settled = true;
          target.waiting--;
          reject(abortedWhileWaiting());
          // The lane's timer may be armed for this waiter: judge the next one now.
          target.pump();
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      target.waiters.push(waiter);
      target.waiting++;
      target.pump();
    });
  }

  settle(lane: number, reserved: number, actual: number): void {
    if (this.#stopped) return;
    const target = this.#lane(lane);
    target.inFlight = Math.max(0, target.inFlight - 1);
    if (target.tokensPerMs !== Infinity) {
      target.refill(this.#clock.now());
      target.tokens = Math.min(target.tokenCeiling, target.tokens + reserved - actual);
    }
    target.pump();
  }

  cooldown(lane: number, durationMs: number): void {
    if (this.#stopped) return;
    const target = this.#lane(lane);
    target.cooldownUntil = Math.max(target.cooldownUntil, this.#clock.now() + durationMs);
    target.pump();
  }

  observe(lane: number, snapshot: RateLimitSnapshot): void {
    if (this.#stopped) return;
    const target = this.#lane(lane);
    target.observe(snapshot, this.#clock.now());
    target.pump();
  }

  stats(): Promise<LaneStats[]> {
    const now = this.#clock.now();
    return Promise.resolve(
      this.#lanes.map((lane): LaneStats => {
        lane.refill(now);
        return {
          availableRequests: lane.requests,
          availableTokens: lane.tokens,
          inFlight: lane.inFlight,
          waiting: lane.waiting,
          cooldownRemainingMs: Math.max(0, lane.cooldownUntil - now),
          totalWaitMs: lane.totalWaitMs,
          grants: lane.grants,
        };
      }),
    );
  }

  stop(): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      const error = stoppedError();
      for (const lane of this.#lanes) lane.close(error);
    }
    return Promise.resolve();
  }

  #lane(index: number): Lane {
    const lane = this.#lanes[index];
    if (lane === undefined) throw noLaneError(index);
    return lane;
  }
}

function noLaneError(index: number): VolleyError {
  return new VolleyError(ErrorCode.INVALID_OPTIONS, `no rate-limit lane ${index}`);
}

function stoppedError(): VolleyError {
  return new VolleyError(ErrorCode.STOPPED, 'token bucket stopped');
}

/** Creates the token-bucket actor. Lanes are indexed like the endpoints they guard. */
export function createTokenBucket(options: TokenBucketOptions): TokenBucketRef {
  return new TokenBucket(options);
}
