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
 */
import { createActor } from './actor.js';
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
  /** Waits until `lane` can take one request of `tokens` estimated tokens. */
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

type Message =
  | { type: 'acquire'; lane: number; tokens: number; signal: AbortSignal | undefined }
  | { type: 'settle'; lane: number; reserved: number; actual: number }
  | { type: 'cooldown'; lane: number; durationMs: number }
  | { type: 'observe'; lane: number; snapshot: RateLimitSnapshot }
  | { type: 'waiterAborted'; lane: number }
  | { type: 'stats' };

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

/** Creates the token-bucket actor. Lanes are indexed like the endpoints they guard. */
export function createTokenBucket(options: TokenBucketOptions): TokenBucketRef {
  const clock = options.clock ?? systemClock;
  const lanes = options.lanes.map(
    (limits) => new Lane(limits, options.burstMs ?? DEFAULT_BURST_MS, clock),
  );
  const laneAt = (index: number): Lane => {
    const lane = lanes[index];
    if (lane === undefined)
      throw new VolleyError(ErrorCode.INVALID_OPTIONS, `no rate-limit lane ${index}`);
    return lane;
  };

  const actor = createActor<Message, unknown>(
    {
      receive(message) {
        switch (message.type) {
          case 'acquire': {
            const lane = laneAt(message.lane);
            // The caller may have given up before this message was handled.
            if (message.signal?.aborted) return Promise.reject(abortedWhileWaiting());
            const now = clock.now();
            lane.refill(now);
            // Fast path: nobody waiting ahead and capacity is there.
            if (lane.waiting === 0 && lane.delayFor(message.tokens, now) === 0) {
              lane.take(message.tokens);
              return { waitedMs: 0 } satisfies Grant;
            }
            return new Promise<Grant>((resolve, reject) => {
              const waiter: Waiter = {
                tokens: message.tokens,
                enqueuedAt: now,
                resolve,
                reject,
                signal: message.signal,
                onAbort: undefined,
                settled: false,
              };
              if (message.signal !== undefined) {
                waiter.onAbort = () => {
                  if (waiter.settled) return;
                  waiter.settled = true;
                  lane.waiting--;
                  reject(abortedWhileWaiting());
                  // The lane's timer may be armed for this waiter: judge the next one now.
                  post({ type: 'waiterAborted', lane: message.lane });
                };
                message.signal.addEventListener('abort', waiter.onAbort, { once: true });
              }
              lane.waiters.push(waiter);
              lane.waiting++;
              lane.pump();
            });
          }
          case 'settle': {
            const lane = laneAt(message.lane);
            lane.inFlight = Math.max(0, lane.inFlight - 1);
            if (lane.tokensPerMs !== Infinity) {
              lane.refill(clock.now());
              lane.tokens = Math.min(
                lane.tokenCeiling,
                lane.tokens + message.reserved - message.actual,
              );
            }
            lane.pump();
            return undefined;
          }
          case 'cooldown': {
            const lane = laneAt(message.lane);
            lane.cooldownUntil = Math.max(lane.cooldownUntil, clock.now() + message.durationMs);
            lane.pump();
            return undefined;
          }
          case 'observe': {
            const lane = laneAt(message.lane);
            lane.observe(message.snapshot, clock.now());
            lane.pump();
            return undefined;
          }
          case 'waiterAborted':
            laneAt(message.lane).pump();
            return undefined;
          case 'stats': {
            const now = clock.now();
            return lanes.map((lane): LaneStats => {
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
            });
          }
        }
      },
      onStop() {
        const error = new VolleyError(ErrorCode.STOPPED, 'token bucket stopped');
        for (const lane of lanes) lane.close(error);
      },
    },
    { name: 'token-bucket' },
  );

  const post = (message: Message): void => {
    // The mailbox is sized far above the in-flight bound; a refusal here means the actor stopped,
    // and a settle or cooldown after stop has nothing left to protect.
    actor.send(message);
  };

  return {
    acquire: (lane, tokens, signal) =>
      actor.ask({ type: 'acquire', lane, tokens, signal }) as Promise<Grant>,
    settle: (lane, reserved, actual) => post({ type: 'settle', lane, reserved, actual }),
    cooldown: (lane, durationMs) => post({ type: 'cooldown', lane, durationMs }),
    observe: (lane, snapshot) => post({ type: 'observe', lane, snapshot }),
    stats: () => actor.ask({ type: 'stats' }) as Promise<LaneStats[]>,
    stop: () => actor.stop(),
  };
}
