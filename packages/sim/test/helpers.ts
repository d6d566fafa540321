/**
 * A raw HTTP client for the sim's tests: it reports exactly what came over the wire, including
 * partial bodies and the socket error that ended them, which fetch and SDKs hide.
 */

import { type IncomingHttpHeaders, request } from 'node:http';
import type { EngineState } from '../src/index.js';

export interface WireResponse {
  /** 0 when the connection failed before a status line. */
  status: number;
  headers: IncomingHttpHeaders;
  /** Whatever body bytes arrived, as UTF-8. */
  body: string;
  /** The error that ended the exchange, if any (ECONNRESET, "aborted", ...). */
  error: NodeJS.ErrnoException | undefined;
  /** Whether the body ended cleanly (the response emitted `end`). */
  complete: boolean;
  /** Milliseconds from sending to the status line, to the first body byte, and to the end. */
  headersMs: number;
  firstByteMs: number;
  totalMs: number;
}

export interface SendOptions {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Give up after this long and resolve with what arrived (for stalls). */
  timeoutMs?: number;
}

/** Sends one request on a fresh connection (no keep-alive pool, so resets never leak between tests). */
export function send(
  baseUrl: string,
  path: string,
  options: SendOptions = {},
): Promise<WireResponse> {
  const url = new URL(baseUrl + path);
  const payload =
    options.body === undefined
      ? undefined
      : typeof options.body === 'string'
        ? options.body
        : JSON.stringify(options.body);
  return new Promise((resolve) => {
    const start = performance.now();
    const result: WireResponse = {
      status: 0,
      headers: {},
      body: '',
      error: undefined,
      complete: false,
      headersMs: -1,
      firstByteMs: -1,
      totalMs: -1,
    };
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (error?: NodeJS.ErrnoException): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      result.error = error;
      result.totalMs = performance.now() - start;
      result.body = Buffer.concat(chunks).toString();
      resolve(result);
    };
    const req = request(url, {
      method: options.method ?? (payload === undefined ? 'GET' : 'POST'),
      agent: false,
      headers: { 'content-type': 'application/json', ...options.headers },
    });
    const timer = setTimeout(() => {
      finish(Object.assign(new Error('test timeout'), { code: 'TEST_TIMEOUT' }));
      req.destroy();
    }, options.timeoutMs ?? 10_000);
    req.on('error', (error) => finish(error));
    req.on('response', (res) => {
      result.status = res.statusCode ?? 0;
      result.headersMs = performance.now() - start;
      result.headers = res.headers;
      res.on('data', (chunk: Buffer) => {
        if (chunks.length === 0) result.firstByteMs = performance.now() - start;
        chunks.push(chunk);
      });
      res.on('end', () => {
        result.complete = true;
        finish();
      });
      res.on('error', (error) => finish(error));
      res.on('close', () =>
        finish(
          result.complete ? undefined : Object.assign(new Error('closed'), { code: 'CLOSED' }),
        ),
      );
    });
    req.end(payload);
  });
}

/** The JSON payloads of an SSE body's `data:` events, `[DONE]` included as the string. */
export function sseData(body: string): unknown[] {
  const events: unknown[] = [];
  for (const block of body.split('\n\n')) {
    if (!block.startsWith('data: ')) continue;
    const data = block.slice(6);
    events.push(data === '[DONE]' ? data : JSON.parse(data));
  }
  return events;
}

/** A chat body with one user message. */
export function chatBody(
  content: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { model: 'volley-sim-1', messages: [{ role: 'user', content }], ...extra };
}

/** Polls `check` until it returns true (server-side effects of a client action land asynchronously). */
export async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('waitFor timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The simulator's origin (`http://127.0.0.1:<port>`), where the engine's hint endpoints live. */
export function originOf(baseUrl: string): string {
  return baseUrl.slice(0, -'/v1'.length);
}

/** The JSON of an SSE body's `: x-volley-sim-timing {...}` comment, or undefined. */
export function timingComment(body: string): unknown {
  const match = /^: x-volley-sim-timing (.*)$/m.exec(body);
  return match === null ? undefined : JSON.parse(match[1]!);
}

/** The middle value (upper middle for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1] ?? Number.NaN;
}

/** The engine's state from `GET /sim/engine`. */
export async function engineState(sim: { url: string }): Promise<EngineState> {
  const res = await send(originOf(sim.url), '/sim/engine');
  if (res.status !== 200) throw new Error(`GET /sim/engine answered ${res.status}`);
  return JSON.parse(res.body) as EngineState;
}

/** Polls the engine until `check` holds (the engine moves on its own timer). */
export async function waitForState(
  sim: { url: string },
  check: (state: EngineState) => boolean,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check(await engineState(sim))) {
    if (Date.now() > deadline) throw new Error('engine state never matched');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
