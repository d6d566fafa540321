/** A token bucket on a manual clock, with acquisitions tracked so tests can read grant times. */
import type { Grant, LaneLimits, TokenBucketRef } from '../../src/token-bucket.js';
import { createTokenBucket } from '../../src/token-bucket.js';
import type { Tracked } from './async.js';
import { tick, track } from './async.js';
import { ManualClock } from './manual-clock.js';

export interface BucketHarness {
  readonly bucket: TokenBucketRef;
  readonly clock: ManualClock;
  /** Starts an acquisition; `at` is the clock time it was asked at. */
  acquire(
    lane: number,
    tokens: number,
    signal?: AbortSignal,
  ): Tracked<Grant> & { readonly at: number };
  /** Lets the actor handle what is queued and the grant promises settle. */
  settle(): Promise<void>;
  /** Moves the manual clock, then lets the consequences run. */
  advance(ms: number): Promise<void>;
}

export function createBucketHarness(lanes: LaneLimits[], burstMs?: number): BucketHarness {
  const clock = new ManualClock(10_000);
  const bucket = createTokenBucket({ lanes, clock, ...(burstMs === undefined ? {} : { burstMs }) });
  const settle = (): Promise<void> => tick(3);
  return {
    bucket,
    clock,
    acquire(lane, tokens, signal) {
      const at = clock.now();
      return Object.assign(track(bucket.acquire(lane, tokens, signal)), { at });
    },
    settle,
    async advance(ms) {
      clock.advance(ms);
      await settle();
    },
  };
}

/** Grant times (asked-at plus waited) of the fulfilled acquisitions, in grant order. */
export function grantTimes(
  acquisitions: ReadonlyArray<Tracked<Grant> & { readonly at: number }>,
): number[] {
  return acquisitions
    .filter((a) => a.state === 'fulfilled')
    .map((a) => a.at + (a.value as Grant).waitedMs)
    .sort((x, y) => x - y);
}
