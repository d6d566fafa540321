/**
 * withDeadline against a real simulator, in both modes: what completes in time is returned, the
 * rest is aborted at the server and listed as cancelled, and the result comes at the deadline.
 */
import { describe, expect, it } from 'vitest';
import type { ChatInput, DeadlineTask, Volley } from 'volley';
import { ErrorCode, withDeadline } from 'volley';
import { codeOf, lastMessage, limiterIdle, MODES, parity, rig, waitFor, words } from './helpers.js';

const modes = parity();

/** A deadline task that asks `content` and returns the answer text. */
const ask =
  (volley: Volley, content: string): DeadlineTask<string> =>
  async (signal) => {
    const reply = await volley.chat({ messages: [{ role: 'user', content }] } as ChatInput, {
      signal,
    });
    return reply.choices[0]?.message.content ?? '';
  };

/** Answers "<prompt> done" padded to the word count named in the prompt ("fast 5"). */
const script = ({ body }: { body: unknown }): string => {
  const [name, count] = lastMessage(body).split(' ');
  return words(`${name} done`, Number(count));
};

describe.each(MODES)('withDeadline (%s mode)', (mode) => {
  it('returns what completed by the deadline and cancels the rest at the server', async () => {
    await using r = await rig(mode, {
      latency: { tokensPerSecond: 100 },
      script,
      faultFor: ({ body }) =>
        lastMessage(body).startsWith('broken') ? 'status-400-context-length' : undefined,
    });
    const started = Date.now();
    const result = await withDeadline(
      {
        summary: ask(r.volley, 'summary 3'),
        sentiment: ask(r.volley, 'sentiment 5'),
        broken: ask(r.volley, 'broken 1'),
        entities: ask(r.volley, 'entities 200'),
      },
      { deadlineMs: 400 },
    );
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(390);
    expect(elapsed).toBeLessThan(1000);
    expect(result.stoppedBy).toBe('deadline');
    expect(result.completed).toEqual(['summary', 'sentiment']);
    expect(result.failed).toEqual(['broken']);
    expect(result.cancelled).toEqual(['entities']);
    expect(result.results.summary).toMatchObject({
      ok: true,
      index: 0,
      value: words('summary done', 3),
    });
    const broken = result.results.broken;
    expect(!broken.ok && codeOf(broken.error)).toBe(ErrorCode.HTTP);
    // Cancelled: settled as a failure with the reason it was aborted with.
    const entities = result.results.entities;
    expect(entities).toMatchObject({ ok: false, index: 3 });
    expect(!entities.ok && codeOf(entities.error)).toBe(ErrorCode.TIMEOUT);

    const slow = await waitFor(() => {
      const entry = r.log().find((e) => lastMessage(e.body).startsWith('entities'));
      return entry?.finishedAt !== undefined && entry;
    });
    expect(slow.aborted).toBe(true);
    expect((slow.finishedAt ?? 0) - slow.receivedAt).toBeLessThan(1000);
    await limiterIdle(r.volley);
    modes.record(mode, 'deadline', [result.completed, result.failed, result.cancelled]);
  });

  it('returns as soon as everything settled, in input order for lists', async () => {
    await using r = await rig(mode, { latency: { tokensPerSecond: 100 }, script });
    const started = Date.now();
    const result = await withDeadline([ask(r.volley, 'a 2'), ask(r.volley, 'b 4')], {
      deadlineMs: 10_000,
    });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(result.stoppedBy).toBeUndefined();
    expect(result.completed).toEqual([0, 1]);
    expect(result.results.map((o) => o.ok && o.value)).toEqual([
      words('a done', 2),
      words('b done', 4),
    ]);
    modes.record(
      mode,
      'in time',
      result.results.map((o) => o.ok),
    );
  });

  it('a caller abort stops the set like the deadline', async () => {
    await using r = await rig(mode, { latency: { tokensPerSecond: 100 }, script });
    const controller = new AbortController();
    // Abort once the quick answer is in and the slow call is generating at the server (a fixed
    // 200 ms raced a worker thread's first request under load).
    let quickDone = (): void => undefined;
    const quickIn = new Promise<void>((resolve) => {
      quickDone = resolve;
    });
    const quick: DeadlineTask<string> = async (signal) => {
      const answer = await ask(r.volley, 'quick 1')(signal);
      quickDone();
      return answer;
    };
    const slowAtServer = waitFor(() => r.log().some((e) => lastMessage(e.body).startsWith('slow')));
    const abort = (): void => controller.abort();
    void Promise.all([quickIn, slowAtServer]).then(abort, abort);
    const result = await withDeadline([quick, ask(r.volley, 'slow 300')], {
      deadlineMs: 10_000,
      signal: controller.signal,
    });
    expect(result.stoppedBy).toBe('signal');
    expect(result.completed).toEqual([0]);
    expect(result.cancelled).toEqual([1]);
    const slow = await waitFor(() => {
      const entry = r.log().find((e) => lastMessage(e.body).startsWith('slow'));
      return entry?.finishedAt !== undefined && entry;
    });
    expect(slow.aborted).toBe(true);
    modes.record(mode, 'signal', [result.completed, result.cancelled]);
  });
});

describe('both modes', () => {
  it('give the same results', () => {
    modes.check();
  });
});

describe('withDeadline without a runtime', () => {
  it('returns at the deadline even when a task ignores its signal', async () => {
    const started = Date.now();
    const result = await withDeadline(
      { stubborn: () => new Promise<number>((resolve) => setTimeout(() => resolve(1), 2000)) },
      { deadlineMs: 50 },
    );
    expect(Date.now() - started).toBeLessThan(500);
    expect(result.cancelled).toEqual(['stubborn']);
  });

  it('hands each task a signal that aborts at the deadline', async () => {
    let seen: AbortSignal | undefined;
    await withDeadline(
      [
        (signal) => {
          seen = signal;
          return new Promise<void>(() => {});
        },
      ],
      { deadlineMs: 20 },
    );
    expect(seen?.aborted).toBe(true);
    expect(codeOf(seen?.reason)).toBe(ErrorCode.TIMEOUT);
  });

  it('reports a task that throws synchronously as failed', async () => {
    const result = await withDeadline(
      [
        () => {
          throw new Error('boom');
        },
      ],
      { deadlineMs: 100 },
    );
    expect(result.failed).toEqual([0]);
  });

  it('rejects a negative deadline', () => {
    expect(() => withDeadline([], { deadlineMs: -1 })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_OPTIONS }),
    );
  });
});
