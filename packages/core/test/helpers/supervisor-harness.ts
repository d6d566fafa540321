/**
 * A supervisor wired to real collaborators where they are cheap (token bucket, event emitter) and
 * scripted ones where the test must be in control (dispatcher, clock, randomness).
 *
 * Timing: retry delays and bucket waits run on the manual clock; dispatches are flushed with a
 * real `setImmediate`, so tests call `settle()` (a few real event-loop turns) after each step. The
 * deadline sweep runs on `setInterval`, which tests fake (`useFakeSweep`) so it fires only when a
 * test calls `sweep()`.
 */
import { EventEmitter } from 'eventemitter3';
import { afterEach, beforeEach, vi } from 'vitest';
import type { VolleyEvents } from '../../src/events.js';
import type { CallSpec, SupervisorOptions, SupervisorRef } from '../../src/supervisor.js';
import { createSupervisor } from '../../src/supervisor.js';
import type { LaneLimits, TokenBucketRef } from '../../src/token-bucket.js';
import { createTokenBucket } from '../../src/token-bucket.js';
import type { Tracked } from './async.js';
import { tick, track } from './async.js';
import { ManualClock } from './manual-clock.js';
import { ScriptedDispatcher } from './scripted-dispatcher.js';

/** The supervisor's deadline sweep interval (supervisor.ts SWEEP_INTERVAL_MS). */
export const SWEEP_INTERVAL_MS = 250;

export interface HarnessOptions
  extends Partial<Omit<SupervisorOptions, 'createDispatcher' | 'bucket' | 'events' | 'clock'>> {
  lanes?: LaneLimits[];
  burstMs?: number;
  /** Endpoints with one lane each (lane i for endpoint i), unless `endpoints` says otherwise. */
  endpointCount?: number;
}

export interface Harness {
  readonly supervisor: SupervisorRef;
  readonly dispatcher: ScriptedDispatcher;
  readonly bucket: TokenBucketRef;
  readonly clock: ManualClock;
  readonly events: EventEmitter<VolleyEvents>;
  /** Starts a call and tracks its outcome. */
  call(spec?: Partial<CallSpec>): Tracked<Awaited<ReturnType<SupervisorRef['call']>>>;
  /** Lets real event-loop turns pass so queued messages and flushes run. */
  settle(): Promise<void>;
  /** Moves the manual clock, then lets the consequences run. */
  advance(ms: number): Promise<void>;
  /** Fires the deadline sweep once, then lets its consequences run. */
  sweep(): Promise<void>;
}

export const defaultSpec: CallSpec = {
  path: '/chat/completions',
  body: { model: 'm', messages: [{ role: 'user', content: 'hi' }] },
};

const live: Harness[] = [];

/** Fakes only `setInterval` (the sweep) for every test in the file, and tears harnesses down. */
export function useSupervisorHarness(): void {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
  });
  afterEach(async () => {
    for (const harness of live.splice(0)) await harness.supervisor.destroy();
    vi.useRealTimers();
  });
}

export function createHarness(options: HarnessOptions = {}): Harness {
  const { lanes, burstMs, endpointCount: count, ...overrides } = options;
  const clock = new ManualClock(1_000);
  const endpointCount = count ?? lanes?.length ?? 1;
  const bucket = createTokenBucket({
    lanes: lanes ?? Array.from({ length: endpointCount }, () => ({})),
    clock,
    ...(burstMs === undefined ? {} : { burstMs }),
  });
  const events = new EventEmitter<VolleyEvents>();
  let dispatcher: ScriptedDispatcher | undefined;
  const supervisor = createSupervisor({
    createDispatcher: (sink) => {
      dispatcher = new ScriptedDispatcher(sink);
      return dispatcher;
    },
    bucket,
    endpoints: Array.from({ length: endpointCount }, (_, lane) => ({ lane })),
    tokenCounter: undefined,
    concurrency: 4,
    maxQueue: 1_000,
    maxRetries: 3,
    maxAmbiguousRetries: 1,
    backoff: { baseDelayMs: 1_000, maxDelayMs: 60_000 },
    retryAfterCapMs: 60_000,
    timeoutMs: 600_000,
    attemptTimeoutMs: 300_000,
    restartBudget: { maxRestarts: 2, windowMs: 60_000 },
    random: () => 0.5,
    ...overrides,
    events,
    clock,
  });
  if (dispatcher === undefined) throw new Error('createDispatcher was not called');
  const settle = (): Promise<void> => tick(10);
  const harness: Harness = {
    supervisor,
    dispatcher,
    bucket,
    clock,
    events,
    call: (spec = {}) => track(supervisor.call({ ...defaultSpec, ...spec })),
    settle,
    async advance(ms) {
      clock.advance(ms);
      await settle();
    },
    async sweep() {
      vi.advanceTimersByTime(SWEEP_INTERVAL_MS);
      await settle();
    },
  };
  live.push(harness);
  return harness;
}
