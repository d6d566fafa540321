/**
 * The Redis URL a cluster is given: checked once, its password registered as a secret (so the
 * logger scrubs it from any text), and a display form without credentials for logs and errors.
 */
import { ErrorCode, registerSecret, VolleyError } from '@volley/core';

export interface RedisTarget {
  /** The URL as given, credentials included: only ever handed to the Redis client. */
  url: string;
  /** `redis://host:port/db`, never with a user or password. */
  display: string;
}

/** Checks `raw` (named `name` in errors) and returns it with its display form. */
export function parseRedisUrl(name: string, raw: unknown): RedisTarget {
  if (typeof raw !== 'string' || raw.trim() === '') {
    throw new VolleyError(ErrorCode.INVALID_OPTIONS, `${name} must be a redis:// URL`);
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // The raw text may hold a password: say what is wrong without repeating it.
    throw new VolleyError(ErrorCode.INVALID_OPTIONS, `${name} is not a URL`);
  }
  if (url.password !== '') registerSecret(decodeURIComponent(url.password));
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new VolleyError(
      ErrorCode.INVALID_OPTIONS,
      `${name} must use redis: or rediss:, got ${url.protocol}`,
    );
  }
  return { url: raw, display: displayRedisUrl(url) };
}

/** The URL without user and password (and without a query, which may carry them too). */
export function displayRedisUrl(url: URL): string {
  const port = url.port === '' ? '' : `:${url.port}`;
  const db = url.pathname === '' || url.pathname === '/' ? '' : url.pathname;
  return `${url.protocol}//${url.hostname}${port}${db}`;
}
