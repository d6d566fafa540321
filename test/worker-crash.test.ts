/**
 * Killing worker threads mid-run. A dead thread's in-flight requests are re-dispatched and every
 * call still ends with the server's answer; past the restart budget the runtime escalates and
 * fails what is pending instead of hanging.
 */

import type { Worker } from 'node:worker_threads';
import type { Simulator } from '@volley/sim';
import { createSimulator, simulatedChatContent } from '@volley/sim';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createVolley, ErrorCode } from 'volley';

/** Every Worker created in this process, in creation order (Node's process-level 'worker' event). */
function trackWorkers(): { workers: Worker[]; stop(): void } {
  const workers: Worker[] = [];
  const onWorker = (worker: Worker): void => {
    workers.push(worker);
  };
  process.on('worker', onWorker);
  return { workers, stop: () => process.off('worker', onWorker) };
}

function prompt(i: number): { role: 'user'; content: string }[] {
  return [{ role: 'user', content: `crash test item ${i}` }];
}

describe('worker crashes', () => {
  let sim: Simulator;
  let tracker: ReturnType<typeof trackWorkers>;

  beforeEach(async () => {
    // Latency keeps requests in flight when the thread dies.
    sim = await createSimulator({ latency: { headersMs: 40 } });
    tracker = trackWorkers();
  });

  afterEach(async () => {
    tracker.stop();
    await sim.close();
  });

  it('re-dispatches what a killed worker held: nothing is lost', async () => {
    const volley = await createVolley({
      mode: 'threads',
      threads: 2,
      concurrency: 32,
      endpoints: [{ baseUrl: sim.url }],
      model: 'volley-sim-1',
      // The crashes are the point here; their warnings would only be noise in the test output.
      logger: false,
    });
    const crashes: number[] = [];
    volley.on('workerCrash', ({ restarts }) => crashes.push(restarts));
    const items = Array.from({ length: 400 }, (_, i) => i);
    let killed = false;
    const results = await volley.map(items, async (i) => {
      if (i === 120 && !killed) {
        killed = true;
        // Kill one live thread while it holds requests.
        await tracker.workers[0]?.terminate();
      }
      return volley.chat({ messages: prompt(i) });
    });
    expect(killed).toBe(true);
    for (const result of results) {
      expect(result.ok).toBe(true);
      if (!result.ok) continue;
      const body = { model: 'volley-sim-1', messages: prompt(result.index) };
      expect(result.value.choices[0]?.message.content).toBe(simulatedChatContent(body).content);
    }
    expect(crashes).toEqual([1]);
    const stats = volley.stats();
    expect(stats.succeeded).toBe(items.length);
    expect(stats.workerRestarts).toBe(1);
    await volley.close();
  });

  it('escalates past the restart budget: pending calls fail with WORKER_CRASHED, nothing hangs', async () => {
    const volley = await createVolley({
      mode: 'threads',
      threads: 2,
      concurrency: 16,
      endpoints: [{ baseUrl: sim.url }],
      model: 'volley-sim-1',
      // The crashes are the point here; their warnings would only be noise in the test output.
      logger: false,
      restartBudget: { maxRestarts: 1, windowMs: 60_000 },
    });
    const escalations: Error[] = [];
    volley.on('error', (error) => escalations.push(error));
    const calls = Array.from({ length: 200 }, (_, i) => volley.chat({ messages: prompt(i) }));
    // Kill threads (replacements included) until the runtime gives up.
    for (let kills = 0; kills < 6 && escalations.length === 0; kills++) {
      await new Promise((resolve) => setTimeout(resolve, 60));
      const live = tracker.workers.filter((worker) => worker.threadId !== -1);
      await live.at(-1)?.terminate();
    }
    const settled = await Promise.allSettled(calls);
    expect(escalations).toHaveLength(1);
    expect(escalations[0]).toMatchObject({ code: ErrorCode.WORKER_CRASHED });
    const failures = settled.filter((result) => result.status === 'rejected');
    expect(failures.length).toBeGreaterThan(0);
    for (const failure of failures) {
      expect((failure as PromiseRejectedResult).reason).toMatchObject({
        code: ErrorCode.WORKER_CRASHED,
      });
    }
    await expect(volley.chat({ messages: prompt(0) })).rejects.toMatchObject({
      code: ErrorCode.WORKER_CRASHED,
    });
    await volley.close();
  });
});
