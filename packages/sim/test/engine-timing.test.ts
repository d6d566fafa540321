/**
 * The engine's times against the model's analytic bounds. The truth each answer carries is
 * measured on real timers, so the checks are lower bounds the model guarantees (engine time never
 * runs faster than the formula), ratios between loads measured side by side, and upper bounds
 * with room for a busy machine.
 */
import { describe, expect, it } from 'vitest';
import {
  createSimulator,
  estimatePromptTokens,
  type SimEngineTiming,
  type Simulator,
} from '../src/index.js';
import { chatBody, engineState, median, send, waitForState } from './helpers.js';

/** One JSON chat answer's truth, from its `x-volley-sim-timing` header. */
async function truth(
  sim: Simulator,
  content: string,
  extra: Record<string, unknown>,
): Promise<SimEngineTiming> {
  const res = await send(sim.url, '/chat/completions', { body: chatBody(content, extra) });
  expect(res.status).toBe(200);
  return JSON.parse(String(res.headers['x-volley-sim-timing'])) as SimEngineTiming;
}

function concurrently(
  sim: Simulator,
  count: number,
  extra: Record<string, unknown>,
): Promise<SimEngineTiming[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => truth(sim, `load ${i}`, extra)));
}

describe('engine timing', () => {
  it('keeps TTFT near prefill + one step below the knee and grows it with the queue beyond', async () => {
    const stepMs = 10;
    const sim = await createSimulator({
      engine: { slots: 4, decodeStepMs: stepMs, decodeStepMsPerSequence: 0 },
    });
    try {
      const below = await concurrently(sim, 4, { max_tokens: 30 });
      const beyond = await concurrently(sim, 12, { max_tokens: 30 });
      for (const t of [...below, ...beyond]) {
        // The first token needs the prompt's prefill and the step that samples it, after the queue.
        expect(t.ttftMs).toBeGreaterThanOrEqual(t.queuedMs + t.prefillMs + stepMs - 0.01);
        expect(t.runningAtAdmission).toBeLessThanOrEqual(4);
      }
      // Below the knee nobody queues (a slot at once: exactly 0), and TTFT stays near prefill +
      // one step (two at most: the step in progress, then its own; the rest is a busy machine).
      expect(below.map((t) => t.queuedMs)).toEqual([0, 0, 0, 0]);
      const prefillMs = Math.max(...below.map((t) => t.prefillMs));
      expect(median(below.map((t) => t.ttftMs))).toBeLessThanOrEqual(prefillMs + 2 * stepMs + 100);
      // Beyond it, eight of twelve wait for one answer (30 steps) or two before their first token.
      expect(beyond.filter((t) => t.queuedMs > 0)).toHaveLength(8);
      expect(Math.max(...beyond.map((t) => t.queuedMs))).toBeGreaterThanOrEqual(
        2 * 30 * stepMs * 0.8,
      );
      expect(median(beyond.map((t) => t.ttftMs))).toBeGreaterThanOrEqual(30 * stepMs * 0.5);
      // TPOT does not grow with the queue: the batch never exceeds the slots.
      expect(median(beyond.map((t) => t.tpotMs))).toBeLessThan(2 * stepMs);
    } finally {
      await sim.close();
    }
  });

  it('slows each decode step as the batch grows', async () => {
    // step(n) = 4 + 2 × (n − 1): 4 ms alone, 34 ms with 16 running.
    const sim = await createSimulator({
      engine: { slots: 16, decodeStepMs: 4, decodeStepMsPerSequence: 2 },
    });
    try {
      const alone = await truth(sim, 'alone', { max_tokens: 40 });
      const batch = await concurrently(sim, 16, { max_tokens: 40 });
      expect(alone.tpotMs).toBeGreaterThanOrEqual(4 * 0.8);
      const batchTpot = median(batch.map((t) => t.tpotMs));
      expect(batchTpot).toBeGreaterThanOrEqual(34 * 0.8);
      expect(batchTpot).toBeLessThanOrEqual(34 * 2);
      expect(batchTpot).toBeGreaterThan(3 * alone.tpotMs);
      expect(Math.max(...batch.map((t) => t.runningAtAdmission))).toBe(16);
    } finally {
      await sim.close();
    }
  });

  it('prefills a prompt beyond the step token budget in chunks that slow the batch down', async () => {
    // 2 ms per prompt token; a step takes at most 20 tokens (one per decoding sequence first).
    const sim = await createSimulator({
      engine: {
        slots: 2,
        maxBatchedTokens: 20,
        prefillMsPerToken: 2,
        decodeStepMs: 10,
        decodeStepMsPerSequence: 0,
      },
    });
    try {
      const longPrompt = 'word '.repeat(160);
      const promptTokens = estimatePromptTokens(chatBody(longPrompt));
      expect(promptTokens).toBe(3 + 4 + 200);

      const alone = await truth(sim, longPrompt, { max_tokens: 5 });
      expect(alone.prefillMs).toBeCloseTo(promptTokens * 2, 6);
      // 207 tokens at 20 per step: 11 steps, each 10 ms plus its chunk's prefill.
      expect(alone.ttftMs).toBeGreaterThanOrEqual(11 * 10 + promptTokens * 2 - 0.01);

      // A long answer decoding while the long prompt arrives: its steps carry the prompt's chunks.
      const stepsBefore = (await engineState(sim)).steps;
      const decoding = truth(sim, 'short', { max_tokens: 100 });
      // The second step is composed once the first (prefill + first token) has ended.
      await waitForState(sim, (state) => state.steps >= stepsBefore + 2);
      const arriving = await truth(sim, longPrompt, { max_tokens: 5 });
      const shared = await decoding;
      expect(arriving.prefillMs).toBeCloseTo(promptTokens * 2, 6);
      // 99 gaps of 10 ms plus the 414 ms of prefill spread over them: 14.2 ms, not 10 (0.95: the
      // first token may be written a few ms late, which shortens the measured span).
      expect(shared.tpotMs).toBeGreaterThanOrEqual(((99 * 10 + promptTokens * 2) / 99) * 0.95);
    } finally {
      await sim.close();
    }
  });

  it('draws step jitter from the seed: same seed, same times', async () => {
    async function prefillTimes(seed: number): Promise<number[]> {
      const sim = await createSimulator({
        seed,
        engine: { slots: 1, decodeStepMs: 1, prefillMsPerToken: 1, jitter: 0.5 },
      });
      try {
        const times: number[] = [];
        // One at a time: the engine takes the same steps, so draws the same factors.
        for (let i = 0; i < 8; i++)
          times.push((await truth(sim, 'same', { max_tokens: 3 })).prefillMs);
        return times;
      } finally {
        await sim.close();
      }
    }
    const nominal = estimatePromptTokens(chatBody('same'));
    const first = await prefillTimes(7);
    expect(await prefillTimes(7)).toEqual(first);
    expect(await prefillTimes(8)).not.toEqual(first);
    expect(new Set(first).size).toBeGreaterThan(4);
    for (const ms of first) {
      expect(ms).toBeGreaterThanOrEqual(nominal * 0.5);
      expect(ms).toBeLessThanOrEqual(nominal * 1.5);
    }
  });
});
