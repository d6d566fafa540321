import { describe, expect, it } from 'vitest';
import type { AdaptiveLimitPolicy } from '../src/adaptive-limit.js';
import { AdaptiveLimit, defaultAdaptiveLimitPolicy } from '../src/adaptive-limit.js';
import { ManualClock } from './helpers/manual-clock.js';

const policy: AdaptiveLimitPolicy = { ...defaultAdaptiveLimitPolicy, minWindowSamples: 4 };

function create(overrides: Partial<AdaptiveLimitPolicy> = {}) {
  const clock = new ManualClock(0);
  return { clock, limit: new AdaptiveLimit({ ...policy, ...overrides }, clock) };
}

/** Feeds `count` samples of `latencyMs`, each with the limit fully used unless `inFlight` says. */
function feed(limit: AdaptiveLimit, count: number, latencyMs: number, inFlight?: number) {
  const decisions = [];
  for (let i = 0; i < count; i++) {
    const decision = limit.sample(latencyMs, inFlight ?? limit.limit);
    if (decision !== undefined) decisions.push(decision);
  }
  return decisions;
}

/** Feeds samples until the limit moves (at most 1000); returns that decision and the count fed. */
function untilDecision(limit: AdaptiveLimit, latencyMs: number, inFlight?: number) {
  for (let fed = 1; fed <= 1000; fed++) {
    const decision = limit.sample(latencyMs, inFlight ?? limit.limit);
    if (decision !== undefined) return { decision, fed };
  }
  return { decision: undefined, fed: 1000 };
}

/**
 * A model server, as the simulator's engine behaves: time to first token grows a little with the
 * batch inside its slots, and past them every request waits for its share of whole answers.
 */
function modelTtft(inFlight: number, slots: number): number {
  const step = 10 + 0.1 * Math.min(inFlight, slots);
  const queued = Math.max(0, inFlight - slots);
  return 1.5 * step + (queued / slots) * 32 * step;
}

describe('AdaptiveLimit', () => {
  it('starts at its initial limit and doubles per window while latency holds (slow start)', () => {
    const { limit } = create();
    expect(limit.limit).toBe(4);
    // Windows of max(4, limit / 2) samples, each after the old limit's round: 4, 4+4, 8+8, 16+16.
    const decisions = feed(limit, 60, 20);
    expect(decisions.map((d) => d.to)).toEqual([8, 16, 32, 64]);
    expect(decisions.every((d) => d.reason === 'slow-start')).toBe(true);
  });

  it('does not grow while fewer than half its slots are used', () => {
    const { limit } = create({ initial: 16 });
    expect(feed(limit, 200, 20, 7)).toEqual([]);
    expect(limit.limit).toBe(16);
    feed(limit, 8, 20, 8);
    expect(limit.limit).toBe(32);
  });

  it('shrinks when the window median rises past the tolerance, and grows by one after', () => {
    const { limit } = create({ initial: 16 });
    feed(limit, 8, 20); // 16 -> 32, long average 20
    const [cut] = feed(limit, 32, 40); // 2x the long average: gradient 1.5 × 20 / 40 = 0.75
    expect(cut).toMatchObject({ from: 32, reason: 'latency-rose', shortMs: 40, longMs: 20 });
    // Half of the step to 32 × 0.75 = 24, smoothing 0.5: 28.
    expect(cut?.to).toBe(28);
    const next = feed(limit, 60, 20);
    expect(next[0]).toMatchObject({ from: 28, to: 29, reason: 'latency-flat' });
  });

  it('grows within the tolerance (the batch slows every sequence a little)', () => {
    const { limit } = create({ initial: 8 });
    feed(limit, 4, 20); // 8 -> 16
    const decisions = feed(limit, 16, 28); // 1.4x: within 1.5
    expect(decisions[0]).toMatchObject({ from: 16, to: 32, reason: 'slow-start' });
  });

  it('cuts by backoffRatio on a 429, 503 or timeout, once for a burst in one window', () => {
    const { limit } = create({ initial: 40 });
    expect(limit.drop('load-shed')).toMatchObject({ from: 40, to: 28, reason: 'load-shed' });
    expect(limit.drop('load-shed')).toBeUndefined();
    expect(limit.drop('rate-limited')).toBeUndefined();
    expect(limit.limit).toBe(28);
    // The window after the cut closes (40 answers sent under 40 skipped, then 14); the next burst
    // cuts again.
    expect(untilDecision(limit, 20)).toMatchObject({ fed: 54, decision: { to: 29 } });
    expect(limit.drop('timeout')?.reason).toBe('timeout');
  });

  it('ends slow start at the first cut: growth is one per window from then on', () => {
    const { limit } = create({ initial: 32 });
    limit.drop('rate-limited'); // 32 -> 22
    const decisions = feed(limit, 200, 20);
    expect(decisions.slice(0, 3).map((d) => d.to)).toEqual([23, 24, 25]);
  });

  it('ignores the answers to attempts sent before the limit moved', () => {
    const { limit } = create({ initial: 8 });
    feed(limit, 4, 20); // 8 -> 16: the next 8 samples were sent under 8
    expect(feed(limit, 8, 1000)).toEqual([]);
    expect(feed(limit, 8, 20)[0]).toMatchObject({ from: 16, to: 32 });
  });

  it('stays within [min, max]', () => {
    const { limit } = create({ initial: 4, min: 2, max: 10 });
    feed(limit, 100, 20);
    expect(limit.limit).toBe(10);
    for (let i = 0; i < 20; i++) {
      limit.drop('load-shed');
      feed(limit, 20, 20, 0);
    }
    expect(limit.limit).toBe(2);
  });

  it('cuts by the waiting queue a server hint reports, once per hint read after the last move', () => {
    const { limit, clock } = create({ initial: 32 });
    limit.drop('rate-limited'); // out of slow start: 22
    expect(untilDecision(limit, 20).decision).toMatchObject({ to: 23 });
    clock.advance(10);
    limit.observe({ running: 16, waiting: 5 });
    // 5 waiting, 2.4 allowed (15% of the 16 running): down by the excess, rounded up.
    expect(untilDecision(limit, 20).decision).toMatchObject({
      from: 23,
      to: 20,
      reason: 'server-queue',
      waiting: 5,
    });
    // The same hint does not cut the next window: it was read before that cut.
    expect(untilDecision(limit, 20).decision?.reason).toBe('latency-flat');
    // A stale one is not used at all.
    limit.observe({ waiting: 50 });
    clock.advance(policy.hintMaxAgeMs + 1);
    expect(limit.hint).toBeUndefined();
    expect(untilDecision(limit, 20).decision?.reason).toBe('latency-flat');
  });

  it('does not jump to the slots of a server with a queue, nor after slow start', () => {
    const { limit } = create({ initial: 4 });
    expect(limit.observe({ slots: 40, running: 40, waiting: 20 })).toBeUndefined();
    limit.drop('timeout');
    expect(limit.observe({ slots: 40, running: 0, waiting: 0 })).toBeUndefined();
    expect(limit.limit).toBe(2);
  });

  it('lets a few requests wait at the server (queueAllowance) without cutting', () => {
    const { limit, clock } = create({ initial: 32 });
    limit.drop('rate-limited'); // 22
    clock.advance(1);
    limit.observe({ running: 40, waiting: 4 });
    expect(untilDecision(limit, 20).decision).toMatchObject({ to: 23, reason: 'latency-flat' });
  });

  it('does not cut for latency while the server says nobody waits', () => {
    const { limit, clock } = create({ initial: 16 });
    feed(limit, 8, 20); // 16 -> 32
    clock.advance(1);
    limit.observe({ running: 20, waiting: 0 });
    const [decision] = feed(limit, 32, 60);
    expect(decision).toMatchObject({ from: 32, to: 64, reason: 'slow-start' });
  });

  it("jumps to the server's idle slots in slow start, and no further than the few allowed to wait", () => {
    const { limit, clock } = create({ initial: 4 });
    clock.advance(1);
    expect(limit.observe({ slots: 40, running: 3, waiting: 0 })).toMatchObject({
      from: 4,
      to: 40,
      reason: 'slow-start',
    });
    expect(untilDecision(limit, 20).decision).toMatchObject({ from: 40, to: 46 });
    expect(untilDecision(limit, 20, 46).decision).toBeUndefined();
  });

  it('finds the knee of a model server with 48 slots and stays near it', () => {
    const { limit } = create({ minWindowSamples: 8 });
    const trace: number[] = [];
    // Each sample is one answer at the limit in use: a closed loop keeping every slot busy.
    for (let i = 0; i < 6000; i++) {
      limit.sample(modelTtft(limit.limit, 48), limit.limit);
      trace.push(limit.limit);
    }
    const reached = trace.findIndex((l) => l >= 40);
    expect(reached).toBeGreaterThan(0);
    expect(reached).toBeLessThan(200);
    const settled = trace.slice(1000);
    expect(Math.min(...settled)).toBeGreaterThanOrEqual(36);
    expect(Math.max(...settled)).toBeLessThanOrEqual(56);
    const mean = settled.reduce((a, b) => a + b, 0) / settled.length;
    expect(mean).toBeGreaterThan(44);
    expect(mean).toBeLessThan(52);
  });

  it('gives each server its own knee', () => {
    for (const slots of [24, 64]) {
      const { limit } = create({ minWindowSamples: 8 });
      for (let i = 0; i < 8000; i++) limit.sample(modelTtft(limit.limit, slots), limit.limit);
      expect(limit.limit).toBeGreaterThanOrEqual(Math.floor(slots * 0.75));
      expect(limit.limit).toBeLessThanOrEqual(Math.ceil(slots * 1.2));
    }
  });
});
