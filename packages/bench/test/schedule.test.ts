import { describe, expect, it } from 'vitest';
import { createArrivalSchedule } from '../src/schedule.js';

describe('arrival schedule', () => {
  it('constant arrivals are exactly 1/rate apart, the first after one gap (as vLLM)', () => {
    const plan = createArrivalSchedule({
      ratePerSecond: 50,
      distribution: 'constant',
      count: 5,
      seed: 1,
    });
    expect([...plan]).toEqual([20, 40, 60, 80, 100]);
  });

  it('poisson plans for a count are rescaled to end at count / rate, and the seed repeats them', () => {
    const a = createArrivalSchedule({
      ratePerSecond: 10,
      distribution: 'poisson',
      count: 500,
      seed: 7,
    });
    const b = createArrivalSchedule({
      ratePerSecond: 10,
      distribution: 'poisson',
      count: 500,
      seed: 7,
    });
    const c = createArrivalSchedule({
      ratePerSecond: 10,
      distribution: 'poisson',
      count: 500,
      seed: 8,
    });
    expect(a[499]).toBeCloseTo(50_000, 6);
    expect([...a]).toEqual([...b]);
    expect([...a]).not.toEqual([...c]);
    for (let i = 1; i < a.length; i++) expect(a[i]).toBeGreaterThanOrEqual(a[i - 1] as number);
  });

  it('gamma gaps get burstier as burstiness falls (coefficient of variation 1/sqrt(b))', () => {
    const cv = (b: number): number => {
      const plan = createArrivalSchedule({
        ratePerSecond: 100,
        distribution: 'gamma',
        burstiness: b,
        count: 20_000,
        seed: 3,
      });
      const gaps: number[] = [];
      for (let i = 1; i < plan.length; i++)
        gaps.push((plan[i] as number) - (plan[i - 1] as number));
      const mean = gaps.reduce((s, g) => s + g, 0) / gaps.length;
      const sd = Math.sqrt(gaps.reduce((s, g) => s + (g - mean) ** 2, 0) / gaps.length);
      return sd / mean;
    };
    expect(cv(0.25)).toBeCloseTo(2, 0);
    expect(cv(4)).toBeCloseTo(0.5, 1);
    expect(cv(1)).toBeCloseTo(1, 1);
  });

  it('a duration bound cuts the plan at that offset, without rescaling', () => {
    const plan = createArrivalSchedule({
      ratePerSecond: 100,
      distribution: 'constant',
      count: 10_000,
      maxOffsetMs: 1000,
      seed: 0,
    });
    expect(plan.length).toBe(100);
    expect(plan[plan.length - 1]).toBeCloseTo(1000, 6);
  });

  it('linear ramp-up shortens the gaps from the start rate to the end rate', () => {
    const plan = createArrivalSchedule({
      ratePerSecond: Infinity,
      distribution: 'constant',
      count: 101,
      seed: 0,
      rampUp: { strategy: 'linear', startRps: 10, endRps: 100 },
    });
    expect(plan[0]).toBeCloseTo(100, 6);
    expect((plan[100] as number) - (plan[99] as number)).toBeCloseTo(10, 6);
  });

  it('rate inf sends everything at time 0', () => {
    const plan = createArrivalSchedule({
      ratePerSecond: Infinity,
      distribution: 'poisson',
      count: 3,
      seed: 0,
    });
    expect([...plan]).toEqual([0, 0, 0]);
  });

  it('refuses a bad rate or burstiness with VOLLEY_ERR_INVALID_OPTIONS', () => {
    expect(() =>
      createArrivalSchedule({ ratePerSecond: 0, distribution: 'poisson', count: 3, seed: 0 }),
    ).toThrow(expect.objectContaining({ code: 'VOLLEY_ERR_INVALID_OPTIONS' }));
    expect(() =>
      createArrivalSchedule({
        ratePerSecond: 1,
        distribution: 'gamma',
        burstiness: 0,
        count: 3,
        seed: 0,
      }),
    ).toThrow(expect.objectContaining({ code: 'VOLLEY_ERR_INVALID_OPTIONS' }));
  });
});
