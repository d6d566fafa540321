/**
 * Server hints: what a model server publishes about its own load, read on a timer from the
 * endpoint's origin for an adaptive limit (adaptive-limit.ts). Optional in every way: a server
 * that publishes nothing (a cloud API, a proxy) is asked a few times, then left alone, and an
 * error or a slow answer is never more than a missed hint.
 *
 *   GET origin/metrics  Prometheus text: vLLM `vllm:num_requests_running` / `_waiting`, llama.cpp
 *                       (`--metrics`) `llamacpp:requests_processing` / `_deferred`, the
 *                       simulator's `volley_sim_engine_slots` beside vLLM's gauges
 *   GET origin/slots    llama.cpp: one object per slot, `is_processing` when busy
 *   GET origin/props    llama.cpp: `total_slots`
 *
 * The first that answers with something usable is the endpoint's source from then on. No API key
 * is sent: these routes are unauthenticated on vLLM and llama.cpp by default, and a key should
 * not travel to routes it was not given for.
 */
import type { ServerHint } from './adaptive-limit.js';
import type { Clock, TimerHandle } from './clock.js';

type HintRoute = '/metrics' | '/slots' | '/props';
const ROUTES: readonly HintRoute[] = ['/metrics', '/slots', '/props'];

/** Prometheus gauges that say running / waiting / slots, by exporter. */
const GAUGES: Record<string, keyof ServerHint> = {
  'vllm:num_requests_running': 'running',
  'vllm:num_requests_waiting': 'waiting',
  'llamacpp:requests_processing': 'running',
  'llamacpp:requests_deferred': 'waiting',
  volley_sim_engine_slots: 'slots',
};

/**
 * The load gauges in Prometheus text, summed over label sets (one per model or engine);
 * `undefined` when none is there.
 *
 * @example
 * parseMetricsHint('vllm:num_requests_running{model_name="m"} 3.0\nvllm:num_requests_waiting{model_name="m"} 1.0')
 * // { running: 3, waiting: 1 }
 */
export function parseMetricsHint(text: string): ServerHint | undefined {
  const hint: ServerHint = {};
  let found = false;
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    const field = match === null ? undefined : GAUGES[match[1]!];
    if (field === undefined) continue;
    const value = Number(match![3]);
    if (!Number.isFinite(value) || value < 0) continue;
    hint[field] = (hint[field] ?? 0) + value;
    found = true;
  }
  return found ? hint : undefined;
}

/** llama.cpp's `/slots` (an array) or `/props` (`total_slots`); `undefined` for anything else. */
export function parseSlotsHint(body: unknown): ServerHint | undefined {
  if (Array.isArray(body)) {
    if (body.length === 0) return undefined;
    const running = body.filter(
      (slot) => typeof slot === 'object' && slot !== null && slot.is_processing === true,
    ).length;
    return { slots: body.length, running };
  }
  if (typeof body === 'object' && body !== null) {
    const total = (body as { total_slots?: unknown }).total_slots;
    if (typeof total === 'number' && Number.isInteger(total) && total > 0) return { slots: total };
  }
  return undefined;
}

/** Options of {@link pollServerHints}. */
export interface ServerHintsOptions {
  /** Base URL of each endpoint to poll; `undefined` for endpoints not to poll. */
  baseUrls: ReadonlyArray<string | undefined>;
  onHint: (endpoint: number, hint: ServerHint) => void;
  clock: Clock;
  /** Default 250 ms: about one per window of the limit at a server's knee. */
  intervalMs?: number;
  /** Polls with no source found after which an endpoint is no longer asked. Default 3. */
  discoveryAttempts?: number;
}

/** A running poller; `close()` stops it (idempotent). */
export interface ServerHintsPoller {
  close(): void;
  /** Where each endpoint's hints come from, once found. */
  sources(): Array<string | undefined>;
}

const DEFAULT_INTERVAL_MS = 250;

/**
 * Polls each endpoint's origin for load hints. Never throws and never rejects: a server without
 * hints just gives none.
 *
 * @example
 * const poller = pollServerHints({ baseUrls: ['http://127.0.0.1:8000/v1'], clock: systemClock,
 *   onHint: (i, hint) => limits.observe(i, hint) });
 * poller.close();
 */
export function pollServerHints(options: ServerHintsOptions): ServerHintsPoller {
  const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
  const attemptsLeft = options.baseUrls.map((url) =>
    url === undefined ? 0 : (options.discoveryAttempts ?? 3),
  );
  const sources: Array<string | undefined> = options.baseUrls.map(() => undefined);
  const busy = options.baseUrls.map(() => false);
  const controller = new AbortController();
  let closed = false;

  const pollOne = async (endpoint: number): Promise<void> => {
    const origin = new URL(options.baseUrls[endpoint]!).origin;
    const known = sources[endpoint];
    const routes = known === undefined ? ROUTES : [known as HintRoute];
    for (const route of routes) {
      const hint = await readHint(origin + route, route, intervalMs, controller.signal);
      if (closed) return;
      if (hint !== undefined) {
        sources[endpoint] = route;
        options.onHint(endpoint, hint);
        return;
      }
    }
    if (known === undefined) attemptsLeft[endpoint]!--;
  };

  const tick = (): void => {
    for (let endpoint = 0; endpoint < options.baseUrls.length; endpoint++) {
      if (busy[endpoint] || (sources[endpoint] === undefined && attemptsLeft[endpoint]! <= 0))
        continue;
      busy[endpoint] = true;
      pollOne(endpoint).then(
        () => {
          busy[endpoint] = false;
        },
        () => {
          busy[endpoint] = false;
        },
      );
    }
  };

  const timer: TimerHandle = options.clock.setInterval(tick, intervalMs);
  timer.unref?.();
  tick();
  return {
    close() {
      if (closed) return;
      closed = true;
      options.clock.clearInterval(timer);
      controller.abort();
    },
    sources: () => [...sources],
  };
}

/** One GET, parsed by its route's format; `undefined` on any failure. */
async function readHint(
  url: string,
  route: HintRoute,
  timeoutMs: number,
  closed: AbortSignal,
): Promise<ServerHint | undefined> {
  try {
    const response = await fetch(url, {
      signal: AbortSignal.any([closed, AbortSignal.timeout(Math.max(200, timeoutMs))]),
    });
    if (!response.ok) {
      await response.body?.cancel();
      return undefined;
    }
    const text = await response.text();
    if (route === '/metrics') return parseMetricsHint(text);
    return parseSlotsHint(JSON.parse(text));
  } catch {
    return undefined;
  }
}
