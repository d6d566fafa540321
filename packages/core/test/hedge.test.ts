import { describe, expect, it } from 'vitest';
import { defaultHedgePolicy, Hedger } from '../src/hedge.js';

const policy = { percentile: 0.9, budget: 0.1, minDelayMs: 5, minSamples: 10 };

describe('Hedger: when a silent attempt gets a copy', () => {
  it('waits for minSamples of an endpoint before it names a delay (warm-up)', () => {
    const hedger = new Hedger(policy, 2);
    for (let i = 0; i < 9; i++) hedger.sample(0, 100);
    expect(hedger.delayMs(0)).toBeUndefined();
    hedger.sample(0, 100);
    expect(hedger.delayMs(0)).toBe(100);
    // Each endpoint warms up on its own samples.
    expect(hedger.delayMs(1)).toBeUndefined();
  });

  it("names the percentile of the endpoint's times to first byte, never under minDelayMs", () => {
    const hedger = new Hedger(policy, 2);
    for (let i = 1; i <= 100; i++) hedger.sample(0, i * 10);
    expect(hedger.delayMs(0)).toBe(910);
    for (let i = 0; i < 20; i++) hedger.sample(1, 1);
    expect(hedger.delayMs(1)).toBe(5);
  });

  it('follows the latest samples as the endpoint slows down', () => {
    const hedger = new Hedger(policy, 1);
    for (let i = 0; i < 2000; i++) hedger.sample(0, 50);
    expect(hedger.delayMs(0)).toBe(50);
    for (let i = 0; i < 2000; i++) hedger.sample(0, 400);
    expect(hedger.delayMs(0)).toBe(400);
  });

  it('keeps copies within budget × attempts sent', () => {
    const hedger = new Hedger(policy, 2);
    for (let i = 0; i < 9; i++) hedger.started();
    expect(hedger.tryTake()).toBe(false);
    hedger.started();
    expect(hedger.tryTake()).toBe(true);
    expect(hedger.tryTake()).toBe(false);
    for (let i = 0; i < 30; i++) hedger.started();
    const taken = [1, 2, 3, 4].filter(() => hedger.tryTake()).length;
    expect(taken).toBe(3);
  });

  it('defaults to p99 and a 2% budget', () => {
    expect(defaultHedgePolicy).toMatchObject({ percentile: 0.99, budget: 0.02 });
  });
});
