// The same-turn mailbox of the supervisor actor: one message at a time, in order, in the sender's turn.
import { describe, expect, it } from 'vitest';
import { Mailbox } from '../src/actor.js';

describe('Mailbox', () => {
  it('handles a message at once, in the sender turn, when the actor is idle', () => {
    const seen: number[] = [];
    const mailbox = new Mailbox<number>((n) => seen.push(n));
    mailbox.send(1);
    expect(seen).toEqual([1]);
  });

  it('never re-enters a handler: a message sent from inside one is handled right after it', () => {
    const log: string[] = [];
    const mailbox: Mailbox<number> = new Mailbox<number>((n) => {
      log.push(`start ${n}`);
      if (n < 3) mailbox.send(n + 1);
      log.push(`end ${n}`);
    });
    mailbox.send(1);
    expect(log).toEqual(['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3']);
  });

  it('keeps handling the messages behind one whose handler threw, and reports the error loudly', async () => {
    const seen: number[] = [];
    const mailbox: Mailbox<number> = new Mailbox<number>((n) => {
      seen.push(n);
      if (n === 1) {
        mailbox.send(2);
        throw new Error('bug');
      }
    });
    const reported = new Promise<unknown>((resolve) => {
      process.once('uncaughtException', resolve);
    });
    mailbox.send(1);
    expect(seen).toEqual([1, 2]);
    expect(((await reported) as Error).message).toBe('bug');
    mailbox.send(3);
    expect(seen).toEqual([1, 2, 3]);
  });
});
