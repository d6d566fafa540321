/**
 * Backoff is a pure function of (attempt, policy, random) so it can be tested exactly.
 *
 * Full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter"): the delay is uniform in
 * [0, min(cap, base * 2^attempt)]. It spreads synchronized retries better than equal or
 * decorrelated jitter, which matters when hundreds of requests hit the same 429 at once.
 */
export interface BackoffPolicy {
  baseDelayMs: number;
  maxDelayMs: number;
}

export const defaultBackoffPolicy: BackoffPolicy = { baseDelayMs: 250, maxDelayMs: 30_000 };

/** @param attempt 0 for the first retry. @param random a number in [0, 1). */
export function computeBackoffMs(attempt: number, policy: BackoffPolicy, random: number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random * ceiling);
}

/**
 * The delay before the next attempt: the server's hint wins when it is longer than the jittered
 * backoff (a server that says "wait 2 s" means it), but it is capped so a hostile or buggy header
 * cannot park a run for a day.
 */
export function retryDelayMs(
  attempt: number,
  policy: BackoffPolicy,
  random: number,
  retryAfterMs: number | undefined,
  retryAfterCapMs: number,
): number {
  const backoff = computeBackoffMs(attempt, policy, random);
  if (retryAfterMs === undefined) return backoff;
  return Math.max(backoff, capServerWaitMs(retryAfterMs, retryAfterCapMs));
}

/**
 * A wait the server asked for (`retry-after`, `x-ratelimit-reset-*`), capped: the one rule for
 * every such hint, so a hostile or buggy header (`1h30m`, `999999999h`) cannot park a run.
 */
export function capServerWaitMs(waitMs: number, capMs: number): number {
  return Math.min(waitMs, capMs);
}
