/**
 * An adaptive concurrency limit for one endpoint (`concurrency: 'auto'`): how many attempts it may
 * hold at once, found from what its answers say. Pure: time comes from an injected `Clock`, the
 * samples from the caller, and nothing here sends or waits.
 *
 * The model (Netflix concurrency-limits' Gradient2, research/wave2-anchors.md C1, with slow start
 * and a multiplicative cut on loss):
 *
 *   sample(latency, inFlight) ──► window (≥ max(minWindowSamples, limit/2) samples)
 *                                    │ closes
 *                                    ▼
 *   short = window median    long = slow-rising, fast-falling average of past shorts
 *   gradient = clamp(tolerance × long / short, 0.5, 1)
 *     gradient = 1, server not queueing:  grow (×2 in slow start, else +1)
 *                                         unless fewer than half the slots were used (app-limited)
 *     gradient < 1 (latency rose past the tolerance), unless the server reports its queue:
 *                                         limit × gradient, smoothed; slow start ends
 *     the server reports more waiting than queueAllowance × running:
 *                                         limit − the excess (at most halved); slow start ends
 *   drop(429 / 503 / timeout) ──► limit × backoffRatio at once, at most once per window
 *   after any move: the next `old limit` samples are skipped (sent under the old limit)
 *   server hints (server-hints.ts) count only when read after the last move; a slot count
 *   makes slow start jump to it, and caps growth at slots × (1 + queueAllowance)
 *
 * Why these signals on an LLM server: inside its slots, time to first token grows slowly with the
 * batch (one decode step gets a little longer per sequence); past its slots a request waits for a
 * whole answer to end before it gets one, so the first token comes several times later. The
 * tolerance (1.5, Netflix's rttTolerance) sits between the two. The long average rises slowly (so
 * queueing shows against it) and falls fast (so it recovers when the queue drains). Medians, not
 * minimums: a minimum biases the baseline low ("impractically low base RTT", Gradient2's comment).
 * A vLLM server queues without failing (its waiting queue is unbounded by default), so loss alone
 * would never see the knee; Ollama and llama.cpp shed load with 503, which the cut answers.
 *
 * @example
 * const limit = new AdaptiveLimit({ ...defaultAdaptiveLimitPolicy, max: 256 }, systemClock);
 * limit.sample(ttftMs, inFlight); // each success
 * limit.drop('rate-limited');     // each 429
 * if (outstanding < limit.limit) send();
 */
import type { Clock } from './clock.js';

/** Bounds and gains of an adaptive limit; every field is documented in the README ("concurrency auto"). */
export interface AdaptiveLimitPolicy {
  /** Where the limit starts: small, so a server is never flooded before anything is known. */
  initial: number;
  /** The limit never goes below this. */
  min: number;
  /** Nor above this (the endpoint's `maxInFlight` when given). */
  max: number;
  /** How much the window's median latency may exceed the long average before the limit shrinks. */
  tolerance: number;
  /** A 429, a 503 or a timeout multiplies the limit by this. */
  backoffRatio: number;
  /** The fraction of a latency-driven decrease taken per window (1: all at once). */
  smoothing: number;
  /** The fewest samples a window closes with (it also waits for limit / 2). */
  minWindowSamples: number;
  /** A server hint older than this is ignored. */
  hintMaxAgeMs: number;
  /**
   * Requests that may wait at a server reporting its queue, as a fraction of those it runs: a
   * few keep every slot busy across the client's round trip between one answer and the next
   * request (Ray Data's default keeps 1.1 × `max_num_seqs` pending). Measured on the simulator
   * with 48 slots: a fixed 48 reached 85% of the throughput of a fixed 64.
   */
  queueAllowance: number;
}

/**
 * Start at 4 (a handful of requests tells the latency at low load), double while latency holds,
 * stay within [1, 512]. 512 is above any single server's slot count we know of (vLLM's
 * `max_num_seqs` defaults to 256 or 1024 depending on the GPU), and the cut on 429s and the hold
 * while app-limited keep a cloud endpoint's limit where its rate limit puts it.
 */
export const defaultAdaptiveLimitPolicy: AdaptiveLimitPolicy = {
  initial: 4,
  min: 1,
  max: 512,
  tolerance: 1.5,
  backoffRatio: 0.7,
  smoothing: 0.5,
  minWindowSamples: 8,
  hintMaxAgeMs: 1_500,
  queueAllowance: 0.15,
};

/** Why a limit moved: the debug-level decision log carries it. */
export type LimitReason =
  | 'slow-start'
  | 'latency-flat'
  | 'latency-rose'
  | 'server-queue'
  | 'rate-limited'
  | 'load-shed'
  | 'timeout';

/** A change of the limit, and the figures that caused it. */
export interface LimitDecision {
  from: number;
  to: number;
  reason: LimitReason;
  /** Median latency of the window that closed, ms (latency decisions). */
  shortMs?: number;
  /** The long-run average it was compared with, ms. */
  longMs?: number;
  /** Requests waiting at the server, from its last hint (server-queue decisions). */
  waiting?: number;
}

/** What a server says about its load (see server-hints.ts); each field only when it says it. */
export interface ServerHint {
  /** Requests it is processing (vLLM `num_requests_running`, llama.cpp busy slots). */
  running?: number;
  /** Requests waiting for a slot (vLLM `num_requests_waiting`, llama.cpp `requests_deferred`). */
  waiting?: number;
  /** Slots it has (llama.cpp `total_slots`, the simulator's engine). */
  slots?: number;
}

/** How far the long average moves toward a window's median: slowly up, fast down (see above). */
const LONG_RISE = 0.05;
const LONG_FALL = 0.5;
/** The steepest latency-driven cut of one window (Gradient2's lower clamp). */
const MIN_GRADIENT = 0.5;

export class AdaptiveLimit {
  readonly #policy: AdaptiveLimitPolicy;
  readonly #clock: Clock;
  #limit: number;
  #slowStart = true;
  #long: number | undefined;
  #window: number[] = [];
  #windowMaxInFlight = 0;
  /** A drop already cut the limit in this window: a burst of 503s is one signal, not many. */
  #cutInWindow = false;
  /**
   * Samples still to ignore after the limit moved: answers to the attempts sent under the old
   * limit (one round of it) say nothing about the new one. Without this the limit overshot the
   * knee by 15 slots and cut twice for one queue.
   */
  #skip = 0;
  /** When the limit last moved (see `current` hints in #closeWindow). */
  #movedAt = Number.NEGATIVE_INFINITY;
  #hint: { at: number; hint: ServerHint } | undefined;

  constructor(policy: AdaptiveLimitPolicy, clock: Clock) {
    this.#policy = policy;
    this.#clock = clock;
    this.#limit = clamp(policy.initial, policy.min, policy.max);
  }

  /** Attempts the endpoint may hold now: a whole number within [min, max]. */
  get limit(): number {
    return Math.max(this.#policy.min, Math.floor(this.#limit));
  }

  /** The last server hint still fresh, if any. */
  get hint(): ServerHint | undefined {
    const hint = this.#hint;
    if (hint === undefined || this.#clock.now() - hint.at > this.#policy.hintMaxAgeMs)
      return undefined;
    return hint.hint;
  }

  /**
   * One answer's latency (time to first token, else to headers) and the attempts in flight when
   * it ended, itself included. Returns a decision when the window closed and the limit moved.
   */
  sample(latencyMs: number, inFlight: number): LimitDecision | undefined {
    if (!(latencyMs >= 0) || !Number.isFinite(latencyMs)) return undefined;
    if (this.#skip > 0) {
      this.#skip--;
      return undefined;
    }
    this.#window.push(latencyMs);
    if (inFlight > this.#windowMaxInFlight) this.#windowMaxInFlight = inFlight;
    if (this.#window.length < Math.max(this.#policy.minWindowSamples, Math.ceil(this.limit / 2)))
      return undefined;
    return this.#closeWindow();
  }

  /** A 429 (`rate-limited`), a 503 (`load-shed`) or a timeout: cut at once, once per window. */
  drop(reason: 'rate-limited' | 'load-shed' | 'timeout'): LimitDecision | undefined {
    if (this.#cutInWindow) return undefined;
    this.#cutInWindow = true;
    this.#slowStart = false;
    return this.#set(this.#limit * this.#policy.backoffRatio, { reason });
  }

  /**
   * The server's own view of its load, read on a timer; used by the next window that closes. In
   * slow start, a server that reports idle slots beyond the limit gets them at once: the first
   * window alone (two rounds at the initial limit) cost 5% of a 12 s batch on the simulator.
   */
  observe(hint: ServerHint): LimitDecision | undefined {
    this.#hint = { at: this.#clock.now(), hint };
    const { slots, running = 0, waiting = 0 } = hint;
    if (!this.#slowStart || slots === undefined || slots <= this.#limit) return undefined;
    if (waiting > this.#policy.queueAllowance * running) return undefined;
    return this.#set(slots, { reason: 'slow-start', waiting });
  }

  #closeWindow(): LimitDecision | undefined {
    const short = median(this.#window);
    const maxInFlight = this.#windowMaxInFlight;
    this.#window = [];
    this.#windowMaxInFlight = 0;
    this.#cutInWindow = false;
    const long = this.#long ?? short;
    this.#long = long + (short - long) * (short > long ? LONG_RISE : LONG_FALL);
    const figures = { shortMs: round(short), longMs: round(long) };

    // A hint read since the limit last moved describes the load under this limit; an older one
    // described another (and may already have been acted on).
    const hint = this.#hint;
    const current =
      hint !== undefined && hint.at > this.#movedAt && this.hint !== undefined
        ? hint.hint
        : undefined;
    const waiting = current?.waiting;
    const allowance = this.#policy.queueAllowance * (current?.running ?? 0);
    // The server says more requests wait for a slot than keep its slots busy: past the knee,
    // whatever latency says.
    if (waiting !== undefined && waiting > allowance) {
      this.#slowStart = false;
      const excess = Math.ceil(waiting - allowance);
      const to = Math.max(this.#limit * MIN_GRADIENT, this.#limit - excess);
      return this.#set(to, { reason: 'server-queue', waiting, ...figures });
    }
    const gradient = clamp((this.#policy.tolerance * long) / short, MIN_GRADIENT, 1);
    // A server that says (almost) nobody waits is not queueing: the latency rose with the batch
    // (or with longer answers, for JSON answers timed to their headers): no reason to cut.
    if (gradient < 1 && waiting === undefined) {
      this.#slowStart = false;
      const target = this.#limit * gradient;
      const to = this.#limit + (target - this.#limit) * this.#policy.smoothing;
      return this.#set(to, { reason: 'latency-rose', ...figures });
    }
    // Fewer than half the slots in use: latency says nothing about a higher load ("app limited").
    if (maxInFlight * 2 < this.#limit) return undefined;
    // A server that says how many slots it has is filled to them at once in slow start: doubling
    // from 4 took 2 s of a 12 s batch on the simulator. Past its slots (and the few allowed to
    // wait) more requests only queue.
    const slots = this.hint?.slots;
    let to = this.#slowStart ? Math.max(this.#limit * 2, slots ?? 0) : this.#limit + 1;
    if (slots !== undefined)
      to = Math.min(to, Math.max(this.#limit, slots * (1 + this.#policy.queueAllowance)));
    return this.#set(to, { reason: this.#slowStart ? 'slow-start' : 'latency-flat', ...figures });
  }

  #set(value: number, why: Omit<LimitDecision, 'from' | 'to'>): LimitDecision | undefined {
    const from = this.limit;
    this.#limit = clamp(value, this.#policy.min, this.#policy.max);
    const to = this.limit;
    if (to === from) return undefined;
    this.#skip = from;
    this.#movedAt = this.#clock.now();
    this.#window = [];
    this.#windowMaxInFlight = 0;
    return { from, to, ...why };
  }
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
