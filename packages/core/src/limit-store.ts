/**
 * Where a token bucket's capacity lives. The bucket (token-bucket.ts) keeps the policy: FIFO
 * waiters per lane, one timer per lane, aborts. The store keeps the numbers: how many requests
 * and tokens are left, requests in flight, cool-downs, and limits learned from headers.
 *
 * The in-memory store below serves one process. A shared store (`@volley/cluster`, on Redis)
 * serves every process of an application from one set of buckets, handing out small leases of
 * them so that the synchronous fast path still answers most requests without a round trip.
 *
 * Every method runs to completion on the bucket's thread and answers synchronously: a store that
 * must fetch capacity from elsewhere answers "wait" and calls `wake(lane)` once it has some.
 */
import type { Clock } from './clock.js';
import type { RateLimitSnapshot } from './rate-limit-headers.js';

export interface LaneLimits {
  /** Requests per minute; undefined means unlimited. */
  rpm?: number;
  /** Tokens per minute (prompt plus completion); undefined means unlimited. */
  tpm?: number;
  /** Requests in flight at once (local servers with a fixed number of slots). */
  maxInFlight?: number;
}

/** What a store reports of one lane, as `LaneStats` shows it. */
export interface LaneLevels {
  availableRequests: number;
  availableTokens: number;
  inFlight: number;
  cooldownRemainingMs: number;
}

/** What a store is built from: the lanes of the bucket that owns it. */
export interface LimitStoreSetup {
  lanes: readonly LaneLimits[];
  /** How much may go at once after a quiet spell, as a duration of the refill rate. */
  burstMs: number;
  clock: Clock;
}

export interface LimitStore {
  /**
   * Called once by the bucket that owns the store: `wake(lane)` asks it to judge the lane's
   * waiters again, for capacity that arrived from outside (a lease, a cool-down lifted elsewhere).
   */
  attach(wake: (lane: number) => void): void;
  /**
   * Reserves one request of `tokens` estimated tokens on `lane` and returns 0, or takes nothing
   * and returns how long to wait: milliseconds, or Infinity when only a settle or a wake can
   * free capacity. `queued` is 0 for a request that would go ahead of nobody (the fast path),
   * else the number of live waiters of the lane, this one at their head.
   */
  reserve(lane: number, tokens: number, now: number, queued: number): number;
  /** A reservation ended: `actualTokens` replaces the estimate (refund or charge); frees its slot. */
  settle(lane: number, reservedTokens: number, actualTokens: number, now: number): void;
  /** Nothing is admitted to `lane` for `durationMs` (a 429, or `retry-after`). */
  cooldown(lane: number, durationMs: number, now: number): void;
  /**
   * Live correction from `x-ratelimit-*` headers (see `MemoryLane.observe`); true when the lane
   * adopted a limit the server announced.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: the shared store (@volley/cluster) does not tell.
  observe(lane: number, snapshot: RateLimitSnapshot, now: number): boolean | void;
  levels(lane: number, now: number): LaneLevels;
  /** Gives back what the store holds (leases, slots) and lets go of its connections. */
  close(): Promise<void>;
}

/** One lane of the in-memory store: two continuously refilling buckets and an in-flight count. */
export class MemoryLane {
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
  #lastRefill: number;
  /** Token cost of the request at the head of the lane's queue (0 when nobody waits). */
  #headNeed = 0;

  constructor(limits: LaneLimits, burstMs: number, now: number) {
    this.#burstMs = burstMs;
    this.#configured = limits;
    this.maxInFlight = limits.maxInFlight ?? Infinity;
    this.#lastRefill = now;
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
   * `remaining` only ever lowers what we think is left. True when it adopted a new limit.
   */
  observe(snapshot: RateLimitSnapshot, now: number): boolean {
    this.refill(now);
    const learnRequests =
      this.#configured.rpm === undefined && snapshot.limitRequests !== undefined;
    const learnTokens = this.#configured.tpm === undefined && snapshot.limitTokens !== undefined;
    const learned =
      (learnRequests && snapshot.limitRequests !== this.requestsPerMs * 60_000) ||
      (learnTokens && snapshot.limitTokens !== this.tokensPerMs * 60_000);
    if (learned) {
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
    return learned;
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

  /** See {@link LimitStore.reserve}. */
  reserve(tokens: number, now: number, queued: number): number {
    this.refill(now);
    if (queued > 0) this.#headNeed = tokens;
    const delay = this.delayFor(tokens, now);
    if (delay > 0) return delay;
    if (queued > 0) this.#headNeed = 0;
    this.requests -= 1;
    if (this.tokensPerMs !== Infinity) this.tokens -= tokens;
    this.inFlight++;
    return 0;
  }

  settle(reserved: number, actual: number, now: number): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (this.tokensPerMs !== Infinity) {
      this.refill(now);
      this.tokens = Math.min(this.tokenCeiling, this.tokens + reserved - actual);
    }
  }

  cooldown(durationMs: number, now: number): void {
    this.cooldownUntil = Math.max(this.cooldownUntil, now + durationMs);
  }

  levels(now: number): LaneLevels {
    this.refill(now);
    return {
      availableRequests: this.requests,
      availableTokens: this.tokens,
      inFlight: this.inFlight,
      cooldownRemainingMs: Math.max(0, this.cooldownUntil - now),
    };
  }
}

/** The store of one process: today's buckets, in memory. */
class MemoryLimitStore implements LimitStore {
  readonly #lanes: MemoryLane[];

  constructor(setup: LimitStoreSetup) {
    const now = setup.clock.now();
    this.#lanes = setup.lanes.map((limits) => new MemoryLane(limits, setup.burstMs, now));
  }

  attach(): void {
    // Capacity only changes through this store's own methods, whose callers pump afterwards.
  }

  reserve(lane: number, tokens: number, now: number, queued: number): number {
    return this.#lane(lane).reserve(tokens, now, queued);
  }

  settle(lane: number, reserved: number, actual: number, now: number): void {
    this.#lane(lane).settle(reserved, actual, now);
  }

  cooldown(lane: number, durationMs: number, now: number): void {
    this.#lane(lane).cooldown(durationMs, now);
  }

  observe(lane: number, snapshot: RateLimitSnapshot, now: number): boolean {
    return this.#lane(lane).observe(snapshot, now);
  }

  levels(lane: number, now: number): LaneLevels {
    return this.#lane(lane).levels(now);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  #lane(index: number): MemoryLane {
    // The bucket checks lane indexes before it asks.
    return this.#lanes[index] as MemoryLane;
  }
}

/** The in-memory store: capacity of this process only. */
export function createMemoryLimitStore(setup: LimitStoreSetup): LimitStore {
  return new MemoryLimitStore(setup);
}
