/**
 * A supervisor wired to real collaborators where they are cheap (token bucket, event emitter) and
 * scripted ones where the test must be in control (dispatcher, clock, randomness).
 *
 * Timing: every timer of the supervisor and the bucket (retry delays, bucket waits, the deadline
 * sweep) runs on the manual clock; the once-per-turn dispatch runs on the clock's `defer`, a real
 * turn boundary, so tests call `settle()` (a few real event-loop turns) after each step. `sweep()`
 * fires the deadline sweep at the current instant.
 */
import { EventEmitter } from 'eventemitter3';
import { afterEach } from 'vitest';
import type { VolleyEvents } from '../../src/events.js';
import type { CallSpec, SupervisorOptions, SupervisorRef } from '../../src/supervisor.js';
import { createSupervisor } from '../../src/supervisor.js';
import type { LaneLimits, TokenBucketRef } from '../../src/token-bucket.js';
import { createTokenBucket } from '../../src/token-bucket.js';
import type { Tracked } from './async.js';
import { tick, track } from './async.js';
import { ManualClock } from './manual-clock.js';
import { ScriptedDispatcher } from './scripted-dispatcher.js';

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

/** Tears down the harnesses a test file created. */
export function useSupervisorHarness(): void {
  afterEach(async () => {
    for (const harness of live.splice(0)) await harness.supervisor.destroy();
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
    endpoints: Array.from({ length: endpointCount }, (_, lane) => ({
      label: `http://endpoint-${lane}.test/v1`,
      lane,
    })),
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
      clock.fireIntervals();
      await settle();
    },
  };
  live.push(harness);
  return harness;
}
