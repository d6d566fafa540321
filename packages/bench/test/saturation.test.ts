import { describe, expect, it } from 'vitest';
import { createSaturationCheck } from '../src/saturation.js';

/** One check per second: in-flight and a few latency samples per second. */
function feed(
  seconds: number,
  inFlight: (t: number) => number,
  latency: (t: number) => number,
): number | undefined {
  const check = createSaturationCheck();
  for (let s = 1; s <= seconds; s++) {
    const t = s * 1000;
    const samples = [0, 250, 500, 750].map(
      (o) => [t - 1000 + o, latency(t - 1000 + o) + ((o / 250) % 2)] as const,
    );
    if (check.add(t, inFlight(t), samples)) return s;
  }
  return undefined;
}

describe('over-saturation check', () => {
  it('fires when latency and requests in flight both keep rising, after the minimum duration', () => {
    const at = feed(
      30,
      (t) => 10 + t / 100,
      (t) => 100 + t / 10,
    );
    expect(at).toBe(10);
  });

  it('stays quiet at a steady state, and when only one of the two rises', () => {
    expect(
      feed(
        40,
        (t) => 20 + ((t / 1000) % 3),
        (t) => 100 + ((t / 250) % 5),
      ),
    ).toBeUndefined();
    expect(
      feed(
        40,
        (t) => 20 + ((t / 1000) % 3),
        (t) => 100 + t / 10,
      ),
    ).toBeUndefined();
    expect(
      feed(
        40,
        (t) => 10 + t / 100,
        (t) => 100 + ((t / 250) % 5),
      ),
    ).toBeUndefined();
  });
});
