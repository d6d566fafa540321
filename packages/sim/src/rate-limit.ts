/**
 * Requests-per-minute and tokens-per-minute limits as token buckets with continuous refill.
 *
 * Each bucket refills at limit/60 000 per millisecond and holds one second of refill (at least one
 * unit): a steady client at the limit never sees a 429, and a client that fires its whole minute
 * at once is throttled within a second, as OpenAI's limiter behaves in practice. A request is
 * admitted when the bucket holds its cost (or is full, for a cost above one second of refill);
 * the level may go negative, and that debt delays the next requests.
 */

/** Go's `time.Duration.String()` as OpenAI's `x-ratelimit-reset-*` headers use it: `120ms`, `1s`, `1.5s`, `6m0s`, `1h0m0s`. */
export function formatGoDuration(ms: number): string {
  const total = Math.ceil(ms);
  if (total <= 0) return '0s';
  if (total < 1000) return `${total}ms`;
  const hours = Math.floor(total / 3_600_000);
  const minutes = Math.floor((total % 3_600_000) / 60_000);
  const seconds = (total % 60_000) / 1000;
  const prefix = hours > 0 ? `${hours}h${minutes}m` : minutes > 0 ? `${minutes}m` : '';
  return `${prefix}${seconds}s`;
}

// Refill arithmetic in floating point leaves levels like 0.9999999999 after exactly one period.
const EPSILON = 1e-9;

/** One continuously refilling bucket; reads time only through the `now` arguments. */
export class TokenBucket {
  /** The configured per-minute limit (what `x-ratelimit-limit-*` reports). */
  readonly limit: number;
  readonly #capacity: number;
  readonly #perMs: number;
  #level: number;
  #updatedAt: number;

  constructor(limitPerMinute: number, now: number) {
    this.limit = limitPerMinute;
    this.#capacity = Math.max(1, limitPerMinute / 60);
    this.#perMs = limitPerMinute / 60_000;
    this.#level = this.#capacity;
    this.#updatedAt = now;
  }

  /** Milliseconds until `cost` would be admitted; 0 means now. */
  waitMs(cost: number, now: number): number {
    this.#refill(now);
    const needed = Math.min(cost, this.#capacity);
    return this.#level + EPSILON >= needed ? 0 : (needed - this.#level) / this.#perMs;
  }

  /** Spends `cost`; call after {@link waitMs} returned 0 for the same `now`. */
  take(cost: number): void {
    this.#level -= cost;
  }

  /** Gives back (positive) or charges more (negative) after the fact; never above capacity. */
  adjust(delta: number, now: number): void {
    this.#refill(now);
    this.#level = Math.min(this.#capacity, this.#level + delta);
  }

  /** Whole units left right now (never negative). */
  remaining(now: number): number {
    this.#refill(now);
    return Math.max(0, Math.floor(this.#level + EPSILON));
  }

  /** Milliseconds until the bucket is full again. */
  resetMs(now: number): number {
    this.#refill(now);
    return Math.max(0, (this.#capacity - this.#level) / this.#perMs);
  }

  #refill(now: number): void {
    const elapsed = now - this.#updatedAt;
    if (elapsed <= 0) return;
    this.#level = Math.min(this.#capacity, this.#level + elapsed * this.#perMs);
    this.#updatedAt = now;
  }
}

/** Why a request was refused: which limit, and how long until it would pass. */
export interface Rejection {
  kind: 'requests' | 'tokens';
  limit: number;
  waitMs: number;
}

/** The request and token buckets together; a refused request spends from neither. */
export class RateLimiter {
  readonly #requests: TokenBucket | undefined;
  readonly #tokens: TokenBucket | undefined;

  constructor(rpm: number | undefined, tpm: number | undefined, now: number) {
    this.#requests = rpm === undefined ? undefined : new TokenBucket(rpm, now);
    this.#tokens = tpm === undefined ? undefined : new TokenBucket(tpm, now);
  }

  /** Admits and spends one request of `tokens`, or says which limit refused it. */
  admit(tokens: number, now: number): Rejection | undefined {
    const requestWait = this.#requests?.waitMs(1, now) ?? 0;
    const tokenWait = this.#tokens?.waitMs(tokens, now) ?? 0;
    if (requestWait > 0 || tokenWait > 0) {
      // Report the limit that keeps the client waiting longest: retrying sooner fails again.
      return requestWait >= tokenWait
        ? { kind: 'requests', limit: this.#requests!.limit, waitMs: requestWait }
        : { kind: 'tokens', limit: this.#tokens!.limit, waitMs: tokenWait };
    }
    this.#requests?.take(1);
    this.#tokens?.take(tokens);
    return undefined;
  }

  /** Settles an admission count against the real usage (`tokenAccounting: 'usage'`). */
  settleTokens(admitted: number, used: number, now: number): void {
    this.#tokens?.adjust(admitted - used, now);
  }

  /** Appends the `x-ratelimit-*` header pairs (flat, as `writeHead` takes them) for each limit set. */
  appendHeaders(headers: string[], now: number): void {
    appendBucket(headers, 'requests', this.#requests, now);
    appendBucket(headers, 'tokens', this.#tokens, now);
  }
}

function appendBucket(
  headers: string[],
  name: string,
  bucket: TokenBucket | undefined,
  now: number,
): void {
  if (bucket === undefined) return;
  headers.push(
    `x-ratelimit-limit-${name}`,
    String(bucket.limit),
    `x-ratelimit-remaining-${name}`,
    String(bucket.remaining(now)),
    `x-ratelimit-reset-${name}`,
    formatGoDuration(bucket.resetMs(now)),
  );
}
