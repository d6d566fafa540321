import { describe, expect, it } from 'vitest';
import { CallQueue } from '../src/call-queue.js';

interface Call {
  name: string;
  state: string;
  deadlineAt: number;
}

const call = (name: string, deadlineAt = Infinity): Call => ({ name, state: 'queued', deadlineAt });

describe('CallQueue', () => {
  it('serves retries before fresh calls, each in FIFO order', () => {
    const queue = new CallQueue<Call>();
    for (const c of [call('a'), call('b')]) queue.push(c);
    for (const c of [call('r1'), call('r2')]) queue.pushRetry(c);
    expect(queue.length).toBe(4);
    expect([1, 2, 3, 4].map(() => queue.shift()?.name)).toEqual(['r1', 'r2', 'a', 'b']);
    expect(queue.shift()).toBeUndefined();
  });

  it('counts calls that ended while waiting as gone, and skips them', () => {
    const queue = new CallQueue<Call>();
    const [a, b, c] = [call('a'), call('b'), call('c')];
    for (const x of [a, b, c]) queue.push(x);
    b.state = 'done';
    queue.markDead();
    expect(queue.length).toBe(2);
    expect(queue.shift()).toBe(a);
    expect(queue.shift()).toBe(c);
    expect(queue.length).toBe(0);
  });

  it('lists live calls past their deadline', () => {
    const queue = new CallQueue<Call>();
    const late = call('late', 100);
    const dead = call('dead', 50);
    queue.push(call('early', 500));
    queue.push(late);
    queue.pushRetry(dead);
    dead.state = 'done';
    queue.markDead();
    expect([...queue.expired(100)]).toEqual([late]);
  });

  it('clear() forgets everything, dead calls included', () => {
    const queue = new CallQueue<Call>();
    const a = call('a');
    queue.push(a);
    queue.push(call('b'));
    a.state = 'done';
    queue.markDead();
    expect([...queue.live()].map((c) => c.name)).toEqual(['b']);
    queue.clear();
    expect(queue.length).toBe(0);
    expect(queue.shift()).toBeUndefined();
  });
});
