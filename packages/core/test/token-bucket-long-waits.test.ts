// D2 (adversarial trial): a bucket wait longer than a Node timer can hold (2^31 - 1 ms) is served
// by several timers, never by one that Node would shorten to 1 ms (a busy loop).
import { describe, expect, it } from 'vitest';
import { createBucketHarness } from './helpers/bucket-harness.js';

/** What Node's timers hold; anything longer fires after 1 ms. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

describe('token bucket: waits longer than a timer can hold', () => {
  it('arms no timer beyond 2^31 - 1 ms and still grants when the wait is over', async () => {
    // 1 token per minute, so 100,000 tokens take about 69 days: three timers' worth.
    const { clock, acquire, advance, settle } = createBucketHarness([{ tpm: 1 }], 1_000);
    const big = acquire(0, 100_000);
    await settle();
    expect(big.state).toBe('pending');
    const waitMs = (100_000 - 1) * 60_000;
    expect(waitMs).toBeGreaterThan(2 * MAX_TIMER_DELAY_MS);
    let timers = 0;
    while (big.state === 'pending' && timers < 10) {
      const due = clock.nextDueAt();
      expect(due).toBeDefined();
      expect((due as number) - clock.now()).toBeLessThanOrEqual(MAX_TIMER_DELAY_MS);
      await advance((due as number) - clock.now());
      timers++;
    }
    expect(big.state).toBe('fulfilled');
    expect(big.value?.waitedMs).toBe(waitMs);
    expect(timers).toBe(3);
  });
});
