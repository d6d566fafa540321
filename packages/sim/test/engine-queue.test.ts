import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { createSimulator, type Simulator } from '../src/index.js';
import { chatBody, engineState, send, waitFor, waitForState } from './helpers.js';

/** Starts a streaming request and resolves once its headers arrive, with a way to abandon it. */
function openStream(
  sim: Simulator,
  body: Record<string, unknown>,
): Promise<{ abandon: () => void; firstData: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${sim.url}/chat/completions`, { method: 'POST', agent: false });
    req.on('error', () => {});
    req.on('response', (res) => {
      const firstData = new Promise<void>((done) => res.once('data', () => done()));
      resolve({ abandon: () => req.destroy(), firstData });
    });
    setTimeout(() => reject(new Error('no response')), 10_000);
    req.end(JSON.stringify({ ...body, stream: true }));
  });
}

describe('engine: slots and the waiting queue', () => {
  it('runs at most `slots` sequences; the rest wait in FIFO order', async () => {
    // Answers of 80 tokens at 10 ms per step: each wave holds its slots for about 0.8 s.
    const sim = await createSimulator({
      engine: { slots: 4, decodeStepMs: 10, decodeStepMsPerSequence: 0 },
    });
    try {
      const answers = Array.from({ length: 12 }, (_, i) =>
        send(sim.url, '/chat/completions', { body: chatBody(`queue ${i}`, { max_tokens: 80 }) }),
      );
      await waitForState(sim, (state) => state.running === 4 && state.waiting === 8);
      const responses = await Promise.all(answers);
      expect(responses.map((res) => res.status)).toEqual(new Array(12).fill(200));

      const truths = sim.requests
        .filter((entry) => entry.method === 'POST')
        .map((entry) => entry.engine!);
      expect(truths).toHaveLength(12);
      expect(truths.every((truth) => truth.runningAtAdmission <= 4)).toBe(true);
      expect(truths.every((truth) => truth.outputTokens === 80)).toBe(true);
      // Four got a slot at once (queuedMs exactly 0), eight waited; the last wave waited for two
      // answers of 80 steps (0.8: they did not all arrive at the same instant).
      expect(truths.filter((truth) => truth.queuedMs > 0)).toHaveLength(8);
      expect(Math.max(...truths.map((truth) => truth.queuedMs))).toBeGreaterThanOrEqual(
        2 * 80 * 10 * 0.8,
      );
      expect(await engineState(sim)).toMatchObject({
        running: 0,
        waiting: 0,
        admitted: 12,
        completed: 12,
        rejected: 0,
      });
    } finally {
      await sim.close();
    }
  });

  it('answers 503 at once when the bounded queue is full, and counts every one', async () => {
    const sim = await createSimulator({
      engine: { slots: 2, maxWaiting: 3, decodeStepMs: 10, decodeStepMsPerSequence: 0 },
    });
    try {
      // Answers of 100 steps of 10 ms: all ten arrive long before the first one ends.
      const answers = Array.from({ length: 10 }, (_, i) =>
        send(sim.url, '/chat/completions', { body: chatBody(`full ${i}`, { max_tokens: 100 }) }),
      );
      const responses = await Promise.all(answers);
      const refused = responses.filter((res) => res.status === 503);
      expect(refused).toHaveLength(5);
      expect(responses.filter((res) => res.status === 200)).toHaveLength(5);
      for (const res of refused) {
        expect(JSON.parse(res.body).error).toMatchObject({
          type: 'server_error',
          code: 'queue_full',
        });
      }
      expect(sim.stats()).toMatchObject({ queueFull: 5, byStatus: { 200: 5, 503: 5 } });
      expect(await engineState(sim)).toMatchObject({ rejected: 5, admitted: 5, completed: 5 });
      const refusedInLog = sim.requests.filter((entry) => entry.status === 503);
      expect(refusedInLog.map((entry) => entry.engine)).toEqual(new Array(5).fill(undefined));
      // Refused at once: every 503 went out before the first answer finished.
      const firstAnswer = Math.min(
        ...sim.requests.filter((entry) => entry.status === 200).map((entry) => entry.finishedAt!),
      );
      expect(refusedInLog.every((entry) => entry.finishedAt! < firstAnswer)).toBe(true);
    } finally {
      await sim.close();
    }
  });

  it('frees the slot of an abandoned request at once, and its queue place too', async () => {
    // One slot; each answer would hold it for 200 steps of 20 ms = 4 s.
    const sim = await createSimulator({
      engine: { slots: 1, decodeStepMs: 20, decodeStepMsPerSequence: 0 },
    });
    try {
      const first = await openStream(sim, chatBody('first', { max_tokens: 200 }));
      const queuedThenAbandoned = await openStream(sim, chatBody('second', { max_tokens: 200 }));
      const third = send(sim.url, '/chat/completions', {
        body: chatBody('third', { max_tokens: 5 }),
      });
      await waitForState(sim, (state) => state.running === 1 && state.waiting === 2);

      queuedThenAbandoned.abandon();
      await waitForState(sim, (state) => state.waiting === 1 && state.cancelled === 1);

      await first.firstData;
      first.abandon();
      const res = await third;
      expect(res.status).toBe(200);
      await waitFor(() => sim.stats().inFlight === 0);
      expect(await engineState(sim)).toMatchObject({
        running: 0,
        waiting: 0,
        cancelled: 2,
        completed: 1,
      });
      const posts = sim.requests.filter((entry) => entry.method === 'POST');
      const truth = posts[2]!.engine!;
      // It waited for the abandoned first answer, not for the 4 s it would have taken.
      expect(truth.queuedMs).toBeLessThan(2000);
      expect(truth.outputTokens).toBe(5);
      expect(posts.slice(0, 2).map((entry) => [entry.aborted, entry.engine])).toEqual([
        [true, undefined],
        [true, undefined],
      ]);
    } finally {
      await sim.close();
    }
  });
});
