// The manual clock is the ground truth of every timing test in this package, so it is tested too.
import { describe, expect, it } from 'vitest';
import { ManualClock } from './helpers/manual-clock.js';

describe('ManualClock', () => {
  it('fires due timers in due-time order, with now() at each due time', () => {
    const clock = new ManualClock(100);
    const fired: Array<[string, number]> = [];
    clock.setTimeout(() => fired.push(['b', clock.now()]), 20);
    clock.setTimeout(() => fired.push(['a', clock.now()]), 10);
    clock.setTimeout(() => fired.push(['c', clock.now()]), 20);
    clock.setTimeout(() => fired.push(['late', clock.now()]), 31);
    clock.advance(30);
    expect(fired).toEqual([
      ['a', 110],
      ['b', 120],
      ['c', 120],
    ]);
    expect(clock.now()).toBe(130);
    expect(clock.pendingTimers).toBe(1);
    clock.advance(1);
    expect(fired.at(-1)).toEqual(['late', 131]);
  });

  it('does not fire cleared timers', () => {
    const clock = new ManualClock();
    let fired = false;
    const handle = clock.setTimeout(() => {
      fired = true;
    }, 5);
    clock.clearTimeout(handle);
    clock.advance(10);
    expect(fired).toBe(false);
  });

  it('fires timers armed by a callback when they fall inside the same step', () => {
    const clock = new ManualClock();
    const at: number[] = [];
    const rearm = (): void => {
      at.push(clock.now());
      if (at.length < 5) clock.setTimeout(rearm, 10);
    };
    clock.setTimeout(rearm, 10);
    clock.advance(35);
    expect(at).toEqual([10, 20, 30]);
    clock.advance(100);
    expect(at).toEqual([10, 20, 30, 40, 50]);
  });

  it('refuses to go backwards', () => {
    expect(() => new ManualClock().advance(-1)).toThrow(RangeError);
  });

  it('fires an interval once per period until it is cleared', () => {
    const clock = new ManualClock();
    const at: number[] = [];
    const handle = clock.setInterval(() => at.push(clock.now()), 10);
    clock.advance(35);
    expect(at).toEqual([10, 20, 30]);
    clock.clearInterval(handle);
    clock.advance(100);
    expect(at).toEqual([10, 20, 30]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('fireIntervals() runs every interval now, without moving time, and restarts its period', () => {
    const clock = new ManualClock();
    const at: number[] = [];
    clock.setInterval(() => at.push(clock.now()), 10);
    clock.setTimeout(() => at.push(-1), 5);
    clock.advance(4);
    clock.fireIntervals();
    expect(at).toEqual([4]);
    expect(clock.now()).toBe(4);
    clock.advance(9);
    expect(at).toEqual([4, -1]);
    clock.advance(1);
    expect(at).toEqual([4, -1, 14]);
  });

  it('runs deferred work on a later event-loop turn, not synchronously', async () => {
    const clock = new ManualClock();
    let ran = false;
    clock.defer(() => {
      ran = true;
    });
    expect(ran).toBe(false);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(ran).toBe(true);
  });
});
