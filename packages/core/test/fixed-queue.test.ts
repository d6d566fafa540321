import { describe, expect, it } from 'vitest';
import { FixedQueue } from '../src/index.js';

describe('FixedQueue', () => {
  it('is FIFO across growth', () => {
    const queue = new FixedQueue<number>(2);
    for (let i = 0; i < 100; i++) queue.push(i);
    expect(queue.length).toBe(100);
    const out: Array<number | undefined> = [];
    while (queue.length > 0) out.push(queue.shift());
    expect(out).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('is FIFO when it grows while the ring has wrapped around', () => {
    const queue = new FixedQueue<number>(4);
    const expected: number[] = [];
    let next = 0;
    // Interleave pushes and shifts so the head moves and the buffer wraps before each growth.
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 3; i++) queue.push(next++);
      expected.push(queue.shift() as number);
      expected.push(queue.shift() as number);
    }
    expected.push(...queue.drain());
    expect(expected).toEqual(Array.from({ length: next }, (_, i) => i));
  });

  it('returns undefined from shift and peek when empty', () => {
    const queue = new FixedQueue<string>();
    expect(queue.shift()).toBeUndefined();
    expect(queue.peek()).toBeUndefined();
    expect(queue.length).toBe(0);
  });

  it('peeks at the head without removing it', () => {
    const queue = new FixedQueue<string>();
    queue.push('a');
    queue.push('b');
    expect(queue.peek()).toBe('a');
    expect(queue.peek()).toBe('a');
    expect(queue.length).toBe(2);
    queue.shift();
    expect(queue.peek()).toBe('b');
  });

  it('removeWhere returns the matches in order and keeps the rest in order', () => {
    const queue = new FixedQueue<number>(4);
    queue.push(-1);
    queue.shift(); // move the head off slot 0
    for (let i = 0; i < 10; i++) queue.push(i);
    expect(queue.removeWhere((n) => n % 3 === 0)).toEqual([0, 3, 6, 9]);
    expect(queue.length).toBe(6);
    queue.push(10);
    expect(queue.drain()).toEqual([1, 2, 4, 5, 7, 8, 10]);
  });

  it('removeWhere with no match leaves the queue unchanged', () => {
    const queue = new FixedQueue<number>();
    for (let i = 0; i < 5; i++) queue.push(i);
    expect(queue.removeWhere(() => false)).toEqual([]);
    expect(queue.drain()).toEqual([0, 1, 2, 3, 4]);
  });

  it('drain empties the queue in order and the queue stays usable', () => {
    const queue = new FixedQueue<string>(2);
    for (const s of ['a', 'b', 'c', 'd', 'e']) queue.push(s);
    expect(queue.drain()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(queue.length).toBe(0);
    expect(queue.drain()).toEqual([]);
    queue.push('f');
    expect(queue.shift()).toBe('f');
  });

  it('works with a degenerate initial capacity', () => {
    for (const capacity of [0, 1, -3]) {
      const queue = new FixedQueue<number>(capacity);
      for (let i = 0; i < 5; i++) queue.push(i);
      expect(queue.drain()).toEqual([0, 1, 2, 3, 4]);
    }
  });
});
