import { describe, expect, it } from 'vitest';
import {
  fitSlope,
  kneeIndex,
  significantlyPositive,
  tQuantile,
  twoSidedP,
  welchTest,
} from '../src/stats.js';

describe('statistics', () => {
  it("Student's t matches tabulated values", () => {
    expect(tQuantile(0.975, 10)).toBeCloseTo(2.228, 3);
    expect(tQuantile(0.975, 2)).toBeCloseTo(4.303, 3);
    expect(twoSidedP(2.228, 10)).toBeCloseTo(0.05, 3);
    expect(twoSidedP(0, 5)).toBeCloseTo(1, 10);
  });

  it("Welch's t-test separates shifted samples and not identical ones", () => {
    const a = [10.1, 10.3, 9.9, 10.0, 10.2];
    const b = [11.0, 11.2, 10.9, 11.1, 11.3];
    const shifted = welchTest(a, b);
    expect(shifted?.p).toBeLessThan(0.001);
    expect(shifted?.t).toBeGreaterThan(0);
    expect(welchTest(a, [...a].reverse())?.p).toBeCloseTo(1, 6);
    expect(welchTest([1], [2, 3])).toBeUndefined();
  });

  it('Welch degrees of freedom follow Welch-Satterthwaite', () => {
    // Reference computed by hand: var a = 2.5/4, var b = 10/4 over n = 5 each.
    const r = welchTest([1, 2, 3, 4, 5], [2, 4, 6, 8, 10]);
    const va = 2.5 / 5;
    const vb = 10 / 5;
    expect(r?.df).toBeCloseTo((va + vb) ** 2 / (va ** 2 / 4 + vb ** 2 / 4), 10);
  });

  it('a slope is significant only when its interval clears zero', () => {
    const xs = Array.from({ length: 30 }, (_, i) => i);
    const rising = fitSlope(
      xs,
      xs.map((x) => 2 * x + ((x * 7) % 3)),
    );
    const flat = fitSlope(
      xs,
      xs.map((x) => ((x * 7) % 5) - 2),
    );
    expect(rising?.slope).toBeCloseTo(2, 1);
    expect(significantlyPositive(rising as NonNullable<typeof rising>)).toBe(true);
    expect(significantlyPositive(flat as NonNullable<typeof flat>)).toBe(false);
    expect(fitSlope([1, 2], [1, 2])).toBeUndefined();
  });

  it('finds the knee of a saturating curve, and none on a straight line', () => {
    expect(kneeIndex([1, 2, 4, 8, 16], [10, 20, 40, 42, 43])).toBe(2);
    // A server with 8 slots: throughput grows linearly with concurrency up to 8, then stays.
    const conc = [1, 2, 4, 6, 8, 10, 12, 16, 24, 32];
    const tput = conc.map((c) => Math.min(c, 8) * 10);
    expect(conc[kneeIndex(conc, tput) as number]).toBe(8);
    expect(kneeIndex([1, 2, 3, 4], [1, 2, 3, 4])).toBeUndefined();
  });
});
