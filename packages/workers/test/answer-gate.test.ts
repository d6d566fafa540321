/**
 * The large-answer gate: a few slots, handed on in order, never lost, never counted twice; a
 * reader that gives up while waiting leaves the queue.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { LargeAnswerGate } from '../src/answer-gate.js';

class FakeAttempt extends EventEmitter {
  aborted = false;
  abort(): void {
    this.aborted = true;
    this.emit('abort');
  }
}

describe('LargeAnswerGate', () => {
  it('grants its slots at once, then hands each released slot to the next waiter in order', async () => {
    const gate = new LargeAnswerGate(2);
    const first = await gate.acquire(new FakeAttempt());
    const second = await gate.acquire(new FakeAttempt());
    const order: string[] = [];
    const third = gate.acquire(new FakeAttempt()).then((release) => {
      order.push('third');
      return release;
    });
    const fourth = gate.acquire(new FakeAttempt()).then((release) => {
      order.push('fourth');
      return release;
    });
    await Promise.resolve();
    expect(order).toEqual([]);
    first();
    first(); // a second release of the same slot counts for nothing
    (await third)();
    expect(order).toEqual(['third']);
    second();
    (await fourth)();
    expect(order).toEqual(['third', 'fourth']);
    // All four released: two slots free again.
    await gate.acquire(new FakeAttempt());
    await gate.acquire(new FakeAttempt());
  });

  it('a waiter aborted before its turn gives its place up', async () => {
    const gate = new LargeAnswerGate(1);
    const holder = await gate.acquire(new FakeAttempt());
    const quitter = new FakeAttempt();
    const quit = gate.acquire(quitter);
    const next = gate.acquire(new FakeAttempt());
    quitter.abort();
    await expect(quit).rejects.toThrow(/aborted/);
    holder();
    const release = await next;
    release();
    await expect(
      gate.acquire(Object.assign(new FakeAttempt(), { aborted: true })),
    ).resolves.toBeTypeOf('function');
  });
});
