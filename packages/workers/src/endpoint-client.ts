/**
 * One keep-alive undici `Pool` per endpoint origin, built once per worker and reused by every
 * request that worker runs: that reuse is the keep-alive. Timeouts are set explicitly from the
 * configuration so a long local generation is not cut off by undici's 300 s defaults.
 */
import type { EndpointConfig } from '@volley/core';
import { Pool } from 'undici';

export interface EndpointClient {
  readonly config: EndpointConfig;
  readonly pool: Pool;
  /** Path prefix of the base URL (`/v1`), prepended to every request path. */
  readonly basePath: string;
  /** Precomputed request headers, credentials included. */
  readonly headers: Record<string, string>;
}

/** Idle keep-alive sockets are kept this long unless the server says less (`keep-alive: timeout=`). */
const KEEP_ALIVE_TIMEOUT_MS = 30_000;

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
    ...config.headers,
  };
  if (config.apiKey !== undefined) headers.authorization = `Bearer ${config.apiKey}`;
  return { config, pool, basePath: url.pathname.replace(/\/+$/, ''), headers };
}
