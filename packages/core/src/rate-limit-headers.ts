/**
 * Parsing of the rate-limit hints OpenAI-compatible servers send. Malformed values are ignored
 * (undefined), never thrown: a bad header must not fail a request that otherwise succeeded.
 * Impossible ones too: a limit of 0 would stop a lane for good, a count past 2^53 is not a count.
 */
import { capServerWaitMs } from './backoff.js';

/** Header map as undici gives it: lower-case names, string or string[] values. */
export type HeaderMap = Record<string, string | string[] | undefined>;

/** A header's value; of a repeated header, the first. */
export function headerValue(headers: HeaderMap, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** IMF-fixdate, obsolete RFC 850, and asctime (RFC 9110 §5.6.7). */
const HTTP_DATE =
  /^(?:[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT|[A-Z][a-z]+, \d{2}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} GMT|[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4})$/;

/**
 * `retry-after-ms` (OpenAI, milliseconds) takes precedence over `retry-after`, which is either
 * delta-seconds or an HTTP date (RFC 9110 §10.2.3). Returns milliseconds from `nowEpochMs`.
 */
export function parseRetryAfterMs(headers: HeaderMap, nowEpochMs = Date.now()): number | undefined {
  const ms = headerValue(headers, 'retry-after-ms');
  if (ms !== undefined) {
    const value = Number(ms);
    if (ms.trim() !== '' && Number.isFinite(value) && value >= 0) return value;
  }
  const raw = headerValue(headers, 'retry-after')?.trim();
  if (raw === undefined || raw === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(raw)) return Number(raw) * 1000;
  // Only the three HTTP-date forms: V8's Date.parse also accepts '-1', '1,5' or 'abc 2' as dates.
  if (!HTTP_DATE.test(raw)) return undefined;
  const date = Date.parse(raw);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowEpochMs);
}

const GO_DURATION = /^(\d+(?:\.\d+)?(?:h|m(?!s)|s|ms|us|µs|ns))+$/;
const GO_PART = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g;
const UNIT_MS: Record<string, number> = {
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
  us: 1e-3,
  µs: 1e-3,
  ns: 1e-6,
};

/**
 * Go-style durations as in `x-ratelimit-reset-requests: 6m0s` or `1.5s` or `120ms`. A bare number
 * is read as seconds (some servers send `x-ratelimit-reset-requests: 1`).
 */
export function parseDurationMs(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return finiteOrUndefined(Number(text) * 1000);
  if (!GO_DURATION.test(text)) return undefined;
  let total = 0;
  for (const match of text.matchAll(GO_PART))
    total += Number(match[1]) * (UNIT_MS[match[2] as string] ?? 0);
  return finiteOrUndefined(total);
}

export interface RateLimitSnapshot {
  limitRequests?: number;
  remainingRequests?: number;
  resetRequestsMs?: number;
  limitTokens?: number;
  remainingTokens?: number;
  resetTokensMs?: number;
}

/** Hundreds of digits read as Infinity, which is no duration or count at all. */
function finiteOrUndefined(value: number): number | undefined {
  return Number.isFinite(value) ? value : undefined;
}

/** A count as a header may carry it: digits only, and exact (at most 2^53 - 1). */
function nonNegativeInt(raw: string | undefined): number | undefined {
  if (raw === undefined || !/^\s*\d+\s*$/.test(raw)) return undefined;
  const value = Number(raw);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** A limit per minute: 0 would mean "never again", which no server means; read it as unknown. */
function positiveLimit(raw: string | undefined): number | undefined {
  const value = nonNegativeInt(raw);
  return value === undefined || value === 0 ? undefined : value;
}

/** The `x-ratelimit-*` family. Returns undefined when none of it is present and well formed. */
export function parseRateLimitHeaders(headers: HeaderMap): RateLimitSnapshot | undefined {
  // Made only when a header is there: most local servers send none, and this runs per response.
  let snapshot: RateLimitSnapshot | undefined;
  for (const [key, header, parse] of RATE_LIMIT_FIELDS) {
    const value = parse(headerValue(headers, header));
    if (value === undefined) continue;
    snapshot ??= {};
    snapshot[key] = value;
  }
  return snapshot;
}

/** Each snapshot field, the header it comes from and how that header is read. */
const RATE_LIMIT_FIELDS: ReadonlyArray<
  readonly [keyof RateLimitSnapshot, string, (raw: string | undefined) => number | undefined]
> = [
  ['limitRequests', 'x-ratelimit-limit-requests', positiveLimit],
  ['remainingRequests', 'x-ratelimit-remaining-requests', nonNegativeInt],
  ['resetRequestsMs', 'x-ratelimit-reset-requests', parseDurationMs],
  ['limitTokens', 'x-ratelimit-limit-tokens', positiveLimit],
  ['remainingTokens', 'x-ratelimit-remaining-tokens', nonNegativeInt],
  ['resetTokensMs', 'x-ratelimit-reset-tokens', parseDurationMs],
];

/**
 * The snapshot with its resets capped like `retry-after` (`retryAfterCapMs`): a reset is how long
 * the server says a lane has nothing left, and an uncapped `1h30m` would stall every call on the
 * lane until its deadline.
 */
export function capResets(snapshot: RateLimitSnapshot, capMs: number): RateLimitSnapshot {
  const capped = { ...snapshot };
  if (capped.resetRequestsMs !== undefined)
    capped.resetRequestsMs = capServerWaitMs(capped.resetRequestsMs, capMs);
  if (capped.resetTokensMs !== undefined)
    capped.resetTokensMs = capServerWaitMs(capped.resetTokensMs, capMs);
  return capped;
}
