import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { watchAbort } from '../src/abort-watch.js';

describe('watchAbort', () => {
  it('puts one listener on a signal however many watch it, and calls each watcher once', () => {
    const controller = new AbortController();
    const calls: number[] = [];
    const unwatch = Array.from({ length: 50 }, (_, i) =>
      watchAbort(controller.signal, () => calls.push(i)),
    );
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    unwatch[7]?.();
    controller.abort();
    controller.abort();
    expect(calls).toHaveLength(49);
    expect(calls).not.toContain(7);
    expect(new Set(calls).size).toBe(49);
  });

  it('watches a new signal with its own listener, and one that already ended never fires', () => {
    const a = new AbortController();
    const b = new AbortController();
    let fired = 0;
    watchAbort(a.signal, () => fired++)();
    watchAbort(b.signal, () => fired++);
    expect(getEventListeners(a.signal, 'abort')).toHaveLength(1);
    expect(getEventListeners(b.signal, 'abort')).toHaveLength(1);
    a.abort();
    expect(fired).toBe(0);
    b.abort();
    expect(fired).toBe(1);
  });
});
