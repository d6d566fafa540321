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
 * The numbers live in a store (limit-store.ts): in memory for one process, or shared by every
 * process of an application (`@volley/cluster`). This file is the policy over either.
 *
 * An actor without a mailbox: it owns its lanes, only its own methods touch them, and each method
 * runs to completion on the one thread that owns the bucket. It never calls back into its caller
 * synchronously (grants to waiters settle promises, which run later), so no message can arrive
 * while another is being handled, and a queue would only add a microtask per request.
 */
import { watchAbort } from './abort-watch.js';
import type { Clock, TimerHandle } from './clock.js';
import { MAX_TIMER_DELAY_MS, systemClock } from './clock.js';
import { ErrorCode, VolleyError } from './errors.js';
import { FixedQueue } from './fixed-queue.js';
import type { LaneLimits, LimitStore, LimitStoreSetup } from './limit-store.js';
import { createMemoryLimitStore } from './limit-store.js';
import type { RateLimitSnapshot } from './rate-limit-headers.js';

export type { LaneLimits } from './limit-store.js';

export interface TokenBucketOptions {
  lanes: LaneLimits[];
  /**
   * How much may go at once after a quiet spell, as a duration of the refill rate. Small on
   * purpose: a full minute's burst would let a run exceed its limit by up to 2x at the start.
   */
  burstMs?: number;
  clock?: Clock;
  /**
   * Where the capacity lives: the in-memory store of one process by default, or a shared one
   * (`@volley/cluster`) built from the same lanes. The bucket closes it on `stop()`.
   */
  store?: (setup: LimitStoreSetup) => LimitStore;
  /** A lane adopted the limits a server announced in its `x-ratelimit-limit-*` headers. */
  onLimitLearned?: (lane: number, limits: LearnedLimits) => void;
}

/** Limits a server announced, per minute; undefined where it announced none. */
export interface LearnedLimits {
  rpm: number | undefined;
  tpm: number | undefined;
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
  /** Of the grants, those that had to wait in the lane's queue (the rest went at once). */
  waitedGrants: number;
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
  /** Stops watching the caller's signal (abort-watch.ts). */
  unwatchAbort: (() => void) | undefined;
  settled: boolean;
}

const DEFAULT_BURST_MS = 250;

/** The policy side of one lane: its FIFO waiters, its one timer, its counters. */
class Lane {
  readonly #index: number;
  readonly #clock: Clock;
  readonly #store: LimitStore;
  totalWaitMs = 0;
  grants = 0;
  waitedGrants = 0;
  /** Live waiters; aborted ones may still sit in the queue until they reach its head. */
  waiting = 0;
  readonly waiters = new FixedQueue<Waiter>();
  #timer: TimerHandle | undefined;

  constructor(index: number, store: LimitStore, clock: Clock) {
    this.#index = index;
    this.#store = store;
    this.#clock = clock;
  }

  /** Grants waiters in FIFO order while the head fits; arms one timer for the head otherwise. */
  pump(): void {
    const now = this.#clock.now();
    for (let head = this.waiters.peek(); head !== undefined; head = this.waiters.peek()) {
      if (head.settled) {
        this.waiters.shift();
        continue;
      }
      const delay = this.#store.reserve(this.#index, head.tokens, now, this.waiting);
      if (delay > 0) {
        this.#arm(delay);
        return;
      }
      this.waiters.shift();
      this.grants++;
      this.waitedGrants++;
      const waitedMs = now - head.enqueuedAt;
      this.totalWaitMs += waitedMs;
      head.settled = true;
      this.waiting--;
      head.unwatchAbort?.();
      head.resolve({ waitedMs });
    }
  }

  #arm(delayMs: number): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (delayMs === Infinity) return;
    // A longer wait is served by several timers: each firing judges the head again.
    this.#timer = this.#clock.setTimeout(
      () => {
        this.#timer = undefined;
        this.pump();
      },
      Math.min(Math.ceil(delayMs), MAX_TIMER_DELAY_MS),
    );
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
  readonly #store: LimitStore;
  readonly #lanes: Lane[];
  readonly #onLimitLearned: TokenBucketOptions['onLimitLearned'];
  #stopped: Promise<void> | undefined;

  constructor(options: TokenBucketOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#onLimitLearned = options.onLimitLearned;
    const setup = {
      lanes: options.lanes,
      burstMs: options.burstMs ?? DEFAULT_BURST_MS,
      clock: this.#clock,
    };
    this.#store = (options.store ?? createMemoryLimitStore)(setup);
    this.#lanes = options.lanes.map((_, index) => new Lane(index, this.#store, this.#clock));
    this.#store.attach((lane) => {
      if (this.#stopped === undefined) this.#lanes[lane]?.pump();
    });
  }

  tryAcquire(lane: number, tokens: number): Grant | undefined {
    if (this.#stopped !== undefined) return undefined;
    const target = this.#lane(lane);
    if (target.waiting > 0) return undefined;
    if (this.#store.reserve(lane, tokens, this.#clock.now(), 0) > 0) return undefined;
    target.grants++;
    return { waitedMs: 0 };
  }

  acquire(lane: number, tokens: number, signal?: AbortSignal): Promise<Grant> {
    if (this.#stopped !== undefined) return Promise.reject(stoppedError());
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
        unwatchAbort: undefined,
        settled: false,
      };
      if (signal !== undefined) {
        waiter.unwatchAbort = watchAbort(signal, () => {
          if (waiter.settled) return;
          waiter.settled = true;
          target.waiting--;
          reject(abortedWhileWaiting());
          // The lane's timer may be armed for this waiter: judge the next one now.
          target.pump();
        });
      }
      target.waiters.push(waiter);
      target.waiting++;
      target.pump();
    });
  }

  settle(lane: number, reserved: number, actual: number): void {
    if (this.#stopped !== undefined) return;
    const target = this.#lane(lane);
    this.#store.settle(lane, reserved, actual, this.#clock.now());
    target.pump();
  }

  cooldown(lane: number, durationMs: number): void {
    if (this.#stopped !== undefined) return;
    const target = this.#lane(lane);
    this.#store.cooldown(lane, durationMs, this.#clock.now());
    target.pump();
  }

  observe(lane: number, snapshot: RateLimitSnapshot): void {
    if (this.#stopped !== undefined) return;
    const target = this.#lane(lane);
    if (this.#store.observe(lane, snapshot, this.#clock.now()) === true) {
      this.#onLimitLearned?.(lane, { rpm: snapshot.limitRequests, tpm: snapshot.limitTokens });
    }
    target.pump();
  }

  stats(): Promise<LaneStats[]> {
    const now = this.#clock.now();
    return Promise.resolve(
      this.#lanes.map(
        (lane, index): LaneStats => ({
          ...this.#store.levels(index, now),
          waiting: lane.waiting,
          totalWaitMs: lane.totalWaitMs,
          grants: lane.grants,
          waitedGrants: lane.waitedGrants,
        }),
      ),
    );
  }

  stop(): Promise<void> {
    if (this.#stopped === undefined) {
      const error = stoppedError();
      for (const lane of this.#lanes) lane.close(error);
      // The store gives back what it holds (a shared store's leases) once nobody can ask.
      this.#stopped = this.#store.close();
    }
    return this.#stopped;
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
