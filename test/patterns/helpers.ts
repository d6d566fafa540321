/**
 * Shared set-up for the pattern tests: a real simulator on port 0 whose log the tests read, a
 * Volley pointed at it in the mode under test, and a recorder that checks both modes agree.
 */
import type { SimRequestLogEntry, Simulator, SimulatorOptions } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { expect } from 'vitest';
import type { EndpointOptions, Volley, VolleyOptions } from 'volley';
import { createVolley, defaultThreads } from 'volley';

export const MODES = ['async', 'threads'] as const;
export type Mode = (typeof MODES)[number];

export interface Rig {
  sim: Simulator;
  volley: Volley;
  /** The simulator's request log, oldest first. */
  log(): SimRequestLogEntry[];
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * A simulator and a Volley on it; dispose with `await using`. In threads mode it returns once
 * every worker thread has reported in.
 *
 * Why wait: in threads mode a cancel is sent only to threads that have said hello, and a worker
 * ignores a cancel for an attempt it has not started yet; either way the request then runs to
 * completion at the server (reported as a bug in @volley/workers). A real runtime is long-lived
 * with its threads up, and the tests cancel calls that are already on the wire: that is the case
 * they measure.
 */
export async function rig(
  mode: Mode,
  simulator: SimulatorOptions = {},
  options: Omit<VolleyOptions, 'mode' | 'endpoints' | 'logger'> & {
    endpoint?: Omit<EndpointOptions, 'baseUrl'>;
  } = {},
): Promise<Rig> {
  const sim = await createSimulator(simulator);
  const { endpoint, ...rest } = options;
  const volley = await createVolley({
    model: 'volley-sim-1',
    ...rest,
    mode,
    logger: false,
    endpoints: [{ baseUrl: sim.url, ...endpoint }],
  });
  if (mode === 'threads') {
    const threads = rest.threads ?? defaultThreads();
    await waitFor(async () => (await volley.workerStats()).length >= threads, 10_000);
  }
  return {
    sim,
    volley,
    log: () => [...sim.requests],
    async [Symbol.asyncDispose]() {
      await volley.close();
      await sim.close();
    },
  };
}

/** The text of a request body's last message (what scripts and fault hooks key on). */
export function lastMessage(body: unknown): string {
  const messages = (body as { messages?: Array<{ content?: unknown }> } | undefined)?.messages;
  const content = messages?.[messages.length - 1]?.content;
  return typeof content === 'string' ? content : '';
}

/** `count` filler words after `head`: at `tokensPerSecond`, the simulator takes that long to answer. */
export function words(head: string, count: number): string {
  return [head, ...Array.from({ length: count }, () => 'filler')].join(' ');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `check` returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(10);
  }
}

/** Every request's rate-limit reservation settled: nothing in flight, nobody waiting. */
export async function limiterIdle(volley: Volley): Promise<void> {
  await waitFor(async () => {
    const lanes = await volley.limiterStats();
    return lanes.every((lane) => lane.inFlight === 0 && lane.waiting === 0);
  });
}

/** Records what each mode produced under a name, then checks the two modes agree exactly. */
export function parity(): {
  record(mode: Mode, name: string, value: unknown): void;
  check(): void;
} {
  const seen: Record<Mode, Map<string, unknown>> = { async: new Map(), threads: new Map() };
  return {
    record(mode, name, value) {
      seen[mode].set(name, structuredClone(value));
    },
    check() {
      expect(seen.async.size).toBeGreaterThan(0);
      expect([...seen.threads.keys()]).toEqual([...seen.async.keys()]);
      for (const [name, value] of seen.async) expect(seen.threads.get(name), name).toEqual(value);
    },
  };
}

export function codeOf(error: unknown): unknown {
  return (error as { code?: unknown } | undefined)?.code;
}
