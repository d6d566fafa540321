/**
 * One keep-alive undici `Pool` per endpoint origin, built once per worker and reused by every
 * request that worker runs: that reuse is the keep-alive. Timeouts are set explicitly from the
 * configuration so a long local generation is not cut off by undici's 300 s defaults.
 */
import type { EndpointAuth, EndpointConfig } from '@volley/core';
import { registerHeaderSecrets } from '@volley/core';
import { Pool } from 'undici';

export interface EndpointClient {
  readonly config: EndpointConfig;
  readonly pool: Pool;
  /** Path prefix of the base URL (`/v1`), prepended to every request path. */
  readonly basePath: string;
  /** Precomputed request headers, credentials included. */
  readonly headers: Record<string, string>;
  /**
   * The request target for a path relative to the base URL: base path, path, then the base URL's
   * query (Azure OpenAI's `?api-version=...` must travel with every request).
   */
  pathFor(path: string): string;
}

/** Idle keep-alive sockets are kept this long unless the server says less (`keep-alive: timeout=`). */
const KEEP_ALIVE_TIMEOUT_MS = 30_000;

/** Azure OpenAI's hosts, which take the key as `api-key` rather than a bearer token. */
const AZURE_HOST = /\.(?:openai\.azure\.com|cognitiveservices\.azure\.com)$/i;

/** How this endpoint's key travels: the configured way, else by host. */
export function authFor(config: Pick<EndpointConfig, 'auth' | 'baseUrl'>): EndpointAuth {
  if (config.auth !== undefined) return config.auth;
  return AZURE_HOST.test(new URL(config.baseUrl).hostname) ? 'api-key' : 'bearer';
}

export function createEndpointClient(config: EndpointConfig): EndpointClient {
  const url = new URL(config.baseUrl);
  const pool = new Pool(url.origin, {
    connections: config.connections,
    pipelining: 1,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    keepAliveMaxTimeout: 10 * KEEP_ALIVE_TIMEOUT_MS,
    connect: { timeout: config.connectTimeoutMs },
    headersTimeout: config.headersTimeoutMs,
    bodyTimeout: config.idleTimeoutMs,
    // One cap for JSON bodies and whole streams, enforced while bytes arrive.
    maxResponseSize: config.maxResponseBytes,
  });
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'user-agent': 'volley/0.1',
  };
  if (config.apiKey !== undefined) {
    if (authFor(config) === 'api-key') headers['api-key'] = config.apiKey;
    else headers.authorization = `Bearer ${config.apiKey}`;
  }
  // The caller's headers come last and win, names compared as HTTP does (case-insensitively).
  for (const [name, value] of Object.entries(config.headers ?? {}))
    headers[name.toLowerCase()] = value;
  // Scrubbed from logs and errors like the key itself (this may be a worker thread).
  registerHeaderSecrets(config.headers);
  const basePath = url.pathname.replace(/\/+$/, '');
  const query = url.search.slice(1);
  const pathFor =
    query === ''
      ? (path: string): string => basePath + path
      : (path: string): string => `${basePath}${path}${path.includes('?') ? '&' : '?'}${query}`;
  return { config, pool, basePath, headers, pathFor };
}
