import { afterEach, describe, expect, it, vi } from 'vitest';
import { createActor, ErrorCode, isVolleyError } from '../src/index.js';
import { codeOf, tick, track } from './helpers/async.js';

describe('actor delivery', () => {
  it('handles messages one at a time in the order they were sent', async () => {
    const seen: number[] = [];
    const actor = createActor<number>({ receive: (n) => void seen.push(n) }, { name: 'order' });
    for (let i = 0; i < 1_000; i++) expect(actor.send(i)).toBe(true);
    await tick(1);
    expect(seen).toEqual(Array.from({ length: 1_000 }, (_, i) => i));
  });

  it('interleaves sends and asks in one order', async () => {
    const seen: string[] = [];
    const actor = createActor<string, string>(
      {
        receive: (m) => {
          seen.push(m);
          return m.toUpperCase();
        },
      },
      { name: 'mixed' },
    );
    actor.send('a');
    const b = actor.ask('b');
    actor.send('c');
    expect(await b).toBe('B');
    await tick(1);
    expect(seen).toEqual(['a', 'b', 'c']);
  });

  it('never delivers synchronously: a send is not handled before send returns', async () => {
    const seen: number[] = [];
    const actor = createActor<number>({ receive: (n) => void seen.push(n) }, { name: 'async' });
    actor.send(1);
    expect(seen).toEqual([]);
    void actor.ask(2);
    expect(seen).toEqual([]);
    await Promise.resolve();
    expect(seen).toEqual([1, 2]);
  });

  it('does not deliver a message sent from inside receive re-entrantly', async () => {
    const log: string[] = [];
    const actor = createActor<string>(
      {
        receive: (m) => {
          log.push(`start ${m}`);
          if (m === 'first') actor.send('second');
          log.push(`end ${m}`);
        },
      },
      { name: 'reentrant' },
    );
    actor.send('first');
    await tick(1);
    expect(log).toEqual(['start first', 'end first', 'start second', 'end second']);
  });

  it('does not block the next message on a promise reply', async () => {
    let release!: (value: string) => void;
    const seen: string[] = [];
    const actor = createActor<string, string>(
      {
        receive: (m) => {
          seen.push(m);
          if (m === 'slow') return new Promise<string>((resolve) => (release = resolve));
          return `fast:${m}`;
        },
      },
      { name: 'pipe' },
    );
    let slowDone = false;
    const slow = actor.ask('slow').then((v) => {
      slowDone = true;
      return v;
    });
    const fast = await actor.ask('quick');
    expect(fast).toBe('fast:quick');
    expect(seen).toEqual(['slow', 'quick']);
    expect(slowDone).toBe(false);
    release('slow:done');
    expect(await slow).toBe('slow:done');
  });

  it('exposes its name and reports isStopped', async () => {
    const actor = createActor<number>({ receive: () => undefined }, { name: 'named' });
    expect(actor.name).toBe('named');
    expect(actor.isStopped).toBe(false);
    const stopped = actor.stop();
    expect(actor.isStopped).toBe(true);
    await stopped;
  });
});

describe('actor mailbox bound', () => {
  it('send returns false once the mailbox holds mailboxCapacity messages', async () => {
    const seen: number[] = [];
    const actor = createActor<number>(
      { receive: (n) => void seen.push(n) },
      { name: 'bounded', mailboxCapacity: 3 },
    );
    expect([actor.send(1), actor.send(2), actor.send(3), actor.send(4)]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    await tick(1);
    expect(seen).toEqual([1, 2, 3]);
  });

  it('ask rejects with VOLLEY_ERR_MAILBOX_FULL when the mailbox is full, without delivering', async () => {
    const seen: number[] = [];
    const actor = createActor<number, number>(
      {
        receive: (n) => {
          seen.push(n);
          return n;
        },
      },
      { name: 'bounded-ask', mailboxCapacity: 2 },
    );
    actor.send(1);
    actor.send(2);
    const error = await actor.ask(3).catch((e: unknown) => e);
    expect(codeOf(error)).toBe(ErrorCode.MAILBOX_FULL);
    await tick(1);
    expect(seen).toEqual([1, 2]);
  });

  it('accepts again once the mailbox has drained', async () => {
    const actor = createActor<number, number>(
      { receive: (n) => n * 2 },
      { name: 'refill', mailboxCapacity: 1 },
    );
    expect(actor.send(1)).toBe(true);
    expect(actor.send(2)).toBe(false);
    await tick(1);
    expect(actor.send(3)).toBe(true);
    await tick(1);
    expect(await actor.ask(21)).toBe(42);
  });
});

/** An actor whose replies never settle unless released. */
function parked() {
  const releases: Array<(value: string) => void> = [];
  const seen: string[] = [];
  const actor = createActor<string, string>(
    {
      receive: (m) => {
        seen.push(m);
        return new Promise<string>((resolve) => releases.push(resolve));
      },
    },
    { name: 'parked' },
  );
  return { actor, releases, seen };
}

describe('actor ask', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('resolves with the reply', async () => {
    const actor = createActor<number, number>({ receive: (n) => n + 1 }, { name: 'inc' });
    expect(await actor.ask(41)).toBe(42);
  });

  it('rejects with VOLLEY_ERR_TIMEOUT when the reply takes longer than timeoutMs', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { actor } = parked();
    const reply = track(actor.ask('x', { timeoutMs: 100 }));
    await tick(1);
    vi.advanceTimersByTime(99);
    await tick(1);
    expect(reply.state).toBe('pending');
    vi.advanceTimersByTime(1);
    await tick(1);
    expect(reply.state).toBe('rejected');
    expect(codeOf(reply.error)).toBe(ErrorCode.TIMEOUT);
    expect(isVolleyError(reply.error)).toBe(true);
  });

  it('resolves normally and clears its timer when the reply beats the timeout', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { actor, releases } = parked();
    const reply = track(actor.ask('x', { timeoutMs: 100 }));
    await tick(1);
    expect(vi.getTimerCount()).toBe(1);
    releases[0]?.('done');
    await tick(1);
    expect(reply.state).toBe('fulfilled');
    expect(reply.value).toBe('done');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects with VOLLEY_ERR_ABORTED at once for an already-aborted signal, without delivering', async () => {
    const { actor, seen } = parked();
    const error = await actor
      .ask('x', { signal: AbortSignal.abort(new Error('caller gave up')) })
      .catch((e: unknown) => e);
    expect(codeOf(error)).toBe(ErrorCode.ABORTED);
    expect((error as Error).cause).toBeInstanceOf(Error);
    await tick(1);
    expect(seen).toEqual([]);
  });

  it('rejects with VOLLEY_ERR_ABORTED when the signal aborts while the reply is pending', async () => {
    const { actor, seen } = parked();
    const controller = new AbortController();
    const reply = track(actor.ask('x', { signal: controller.signal }));
    await tick(1);
    expect(seen).toEqual(['x']);
    expect(reply.state).toBe('pending');
    controller.abort();
    await tick(1);
    expect(reply.state).toBe('rejected');
    expect(codeOf(reply.error)).toBe(ErrorCode.ABORTED);
  });

  it('rejects with VOLLEY_ERR_ABORTED when the signal aborts while the message is still queued', async () => {
    const { actor } = parked();
    const controller = new AbortController();
    const reply = track(actor.ask('x', { signal: controller.signal }));
    controller.abort();
    await tick(1);
    expect(codeOf(reply.error)).toBe(ErrorCode.ABORTED);
  });

  it('resolves and detaches from the signal when the reply comes first', async () => {
    const actor = createActor<number, number>({ receive: (n) => n }, { name: 'quick' });
    const controller = new AbortController();
    const removed = vi.spyOn(controller.signal, 'removeEventListener');
    expect(await actor.ask(7, { signal: controller.signal })).toBe(7);
    expect(removed).toHaveBeenCalledWith('abort', expect.any(Function));
  });

  it('rejects with what receive threw', async () => {
    const boom = new Error('boom');
    const actor = createActor<number, number>(
      {
        receive: () => {
          throw boom;
        },
      },
      { name: 'throws' },
    );
    await expect(actor.ask(1)).rejects.toBe(boom);
  });

  it('rejects with the rejection of a promise reply', async () => {
    const boom = new Error('async boom');
    const actor = createActor<number, number>(
      { receive: () => Promise.reject(boom) },
      { name: 'rejects' },
    );
    await expect(actor.ask(1)).rejects.toBe(boom);
    await expect(actor.ask(1, { timeoutMs: 10_000 })).rejects.toBe(boom);
  });

  it('keeps handling messages after receive throws', async () => {
    const actor = createActor<number, number>(
      {
        receive: (n) => {
          if (n === 1) throw new Error('one');
          return n;
        },
      },
      { name: 'survives' },
    );
    const first = track(actor.ask(1));
    expect(await actor.ask(2)).toBe(2);
    expect(first.state).toBe('rejected');
  });
});

describe('actor errors from send', () => {
  it('reports a throw from receive to onError with the actor name, and keeps going', async () => {
    const reported: Array<[unknown, string]> = [];
    const seen: number[] = [];
    const boom = new Error('boom');
    const actor = createActor<number>(
      {
        receive: (n) => {
          if (n === 2) throw boom;
          seen.push(n);
        },
      },
      { name: 'sender', onError: (error, name) => reported.push([error, name]) },
    );
    actor.send(1);
    actor.send(2);
    actor.send(3);
    await tick(1);
    expect(reported).toEqual([[boom, 'sender']]);
    expect(seen).toEqual([1, 3]);
  });

  it('reports a rejected promise reply to onError', async () => {
    const reported: unknown[] = [];
    const boom = new Error('async boom');
    const actor = createActor<number, void>(
      { receive: () => Promise.reject(boom) },
      { name: 'async-sender', onError: (error) => reported.push(error) },
    );
    actor.send(1);
    await tick(2);
    expect(reported).toEqual([boom]);
  });

  it('does not report to onError what an ask already delivered to its caller', async () => {
    const reported: unknown[] = [];
    const actor = createActor<number, number>(
      {
        receive: () => {
          throw new Error('for the asker');
        },
      },
      { name: 'asked', onError: (error) => reported.push(error) },
    );
    await expect(actor.ask(1)).rejects.toThrow();
    await tick(1);
    expect(reported).toEqual([]);
  });
});

describe('actor stop', () => {
  it('handles what is already queued, then runs onStop', async () => {
    const log: string[] = [];
    const actor = createActor<string>(
      {
        receive: (m) => void log.push(m),
        onStop: () => void log.push('onStop'),
      },
      { name: 'drain' },
    );
    actor.send('a');
    actor.send('b');
    const stopped = actor.stop();
    expect(log).toEqual([]);
    await stopped;
    expect(log).toEqual(['a', 'b', 'onStop']);
  });

  it('waits for an async onStop', async () => {
    let finished = false;
    const actor = createActor<string>(
      {
        receive: () => undefined,
        onStop: async () => {
          await tick(2);
          finished = true;
        },
      },
      { name: 'async-stop' },
    );
    await actor.stop();
    expect(finished).toBe(true);
  });

  it('refuses work after stop: send returns false and ask rejects VOLLEY_ERR_STOPPED', async () => {
    const seen: string[] = [];
    const actor = createActor<string, string>(
      {
        receive: (m) => {
          seen.push(m);
          return m;
        },
      },
      { name: 'closed' },
    );
    const stopped = actor.stop();
    expect(actor.send('late')).toBe(false);
    const error = await actor.ask('late ask').catch((e: unknown) => e);
    expect(codeOf(error)).toBe(ErrorCode.STOPPED);
    await stopped;
    expect(actor.send('later')).toBe(false);
    expect(codeOf(await actor.ask('later ask').catch((e: unknown) => e))).toBe(ErrorCode.STOPPED);
    expect(seen).toEqual([]);
  });

  it('answers asks queued before stop', async () => {
    const actor = createActor<number, number>({ receive: (n) => n * 10 }, { name: 'answers' });
    const reply = actor.ask(4);
    await actor.stop();
    expect(await reply).toBe(40);
  });

  it('is idempotent: onStop runs once and every call returns the same promise', async () => {
    let stops = 0;
    const actor = createActor<number>(
      { receive: () => undefined, onStop: () => void stops++ },
      { name: 'idem' },
    );
    const first = actor.stop();
    expect(actor.stop()).toBe(first);
    await first;
    await actor.stop();
    expect(stops).toBe(1);
  });
});
