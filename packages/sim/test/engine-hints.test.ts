import { describe, expect, it } from 'vitest';
import {
  createSimulator,
  SimulatorOptionError,
  type SimulatorOptions,
  TIMING_HEADER,
} from '../src/index.js';
import { chatBody, engineState, originOf, send, waitForState } from './helpers.js';

const HINTS = ['/metrics', '/slots', '/props', '/sim/engine'];

/** Prometheus text: sample name (with labels) to value; HELP/TYPE/other comments skipped. */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`not a Prometheus sample line: ${line}`);
    samples.set(match[1]! + (match[2] ?? ''), Number(match[3]));
  }
  return samples;
}

describe('engine hints', () => {
  it('publishes running and waiting as vLLM /metrics, llama.cpp /slots and /props, and JSON', async () => {
    const sim = await createSimulator({
      engine: { slots: 2, decodeStepMs: 10, decodeStepMsPerSequence: 0 },
    });
    try {
      // Five answers of 300 steps of 10 ms: two run and three wait for seconds.
      const load = Array.from({ length: 5 }, (_, i) =>
        send(sim.url, '/chat/completions', { body: chatBody(`hold ${i}`, { max_tokens: 300 }) }),
      );
      await waitForState(sim, (state) => state.running === 2 && state.waiting === 3);
      const origin = originOf(sim.url);

      const metrics = await send(origin, '/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
      const labels = '{model_name="volley-sim-1",engine="0"}';
      expect(parsePrometheus(metrics.body)).toEqual(
        new Map([
          [`vllm:num_requests_running${labels}`, 2],
          [`vllm:num_requests_waiting${labels}`, 3],
          [`volley_sim_engine_slots${labels}`, 2],
        ]),
      );
      expect(metrics.body).toContain('# TYPE vllm:num_requests_running gauge\n');
      expect(metrics.body).toContain('# TYPE vllm:num_requests_waiting gauge\n');
      expect(metrics.body).toMatch(/^# volley-sim engine: 2 slots/);

      expect(JSON.parse((await send(origin, '/slots')).body)).toEqual([
        { id: 0, is_processing: true },
        { id: 1, is_processing: true },
      ]);
      expect(JSON.parse((await send(origin, '/props')).body)).toEqual({ total_slots: 2 });
      expect(await engineState(sim)).toMatchObject({
        slots: 2,
        running: 2,
        waiting: 3,
        maxWaiting: null,
        maxBatchedTokens: 2048,
        prefillMsPerToken: 0.05,
        decodeStepMs: 10,
        decodeStepMsPerSequence: 0,
        jitter: 0,
      });
      // Hints are not requests to the model: no rate-limit, fault or timing headers.
      const hint = await send(origin, '/sim/engine');
      expect(hint.headers[TIMING_HEADER]).toBeUndefined();
      expect(hint.headers['x-ratelimit-limit-requests']).toBeUndefined();
      await sim.close();
      await Promise.all(load);
    } finally {
      await sim.close();
    }
  });

  it('answers 404 for every hint while the engine is off, and old answers carry no truth', async () => {
    const sim = await createSimulator();
    try {
      for (const path of HINTS) {
        const res = await send(originOf(sim.url), path);
        expect(res.status).toBe(404);
        expect(JSON.parse(res.body).error.message).toBe(`Invalid URL (GET ${path})`);
      }
      const res = await send(sim.url, '/chat/completions', { body: chatBody('x') });
      expect(res.headers[TIMING_HEADER]).toBeUndefined();
      expect(sim.requests.every((entry) => entry.engine === undefined)).toBe(true);
      expect(sim.stats().queueFull).toBe(0);
    } finally {
      await sim.close();
    }
  });

  it('turns on, reconfigures and turns off live; answers in the engine finish', async () => {
    const sim = await createSimulator();
    try {
      sim.setOptions({ engine: { slots: 3, decodeStepMs: 5 } });
      expect(JSON.parse((await send(originOf(sim.url), '/props')).body)).toEqual({
        total_slots: 3,
      });
      const inEngine = send(sim.url, '/chat/completions', {
        body: chatBody('long', { max_tokens: 100 }),
      });
      await waitForState(sim, (state) => state.running === 1);
      sim.setOptions({ engine: { slots: 5, decodeStepMs: 5 } });
      expect(await engineState(sim)).toMatchObject({ slots: 5, running: 1 });

      sim.setOptions({ engine: undefined });
      expect((await send(originOf(sim.url), '/sim/engine')).status).toBe(404);
      const direct = await send(sim.url, '/chat/completions', { body: chatBody('direct') });
      expect(direct.headers[TIMING_HEADER]).toBeUndefined();
      const finished = await inEngine;
      expect(finished.status).toBe(200);
      expect(JSON.parse(String(finished.headers[TIMING_HEADER]))).toMatchObject({
        outputTokens: 100,
      });
    } finally {
      await sim.close();
    }
  });

  it('asks for the API key on hints as on every other route', async () => {
    const sim = await createSimulator({ apiKey: 'sk-hint', engine: { slots: 1 } });
    try {
      expect((await send(originOf(sim.url), '/metrics')).status).toBe(401);
      const ok = await send(originOf(sim.url), '/metrics', {
        headers: { authorization: 'Bearer sk-hint' },
      });
      expect(ok.status).toBe(200);
    } finally {
      await sim.close();
    }
  });
});

describe('engine options', () => {
  it.each([
    [{ engine: 4 }, 'engine'],
    [{ engine: {} }, 'engine.slots'],
    [{ engine: { slots: 0 } }, 'engine.slots'],
    [{ engine: { slots: 1.5 } }, 'engine.slots'],
    [{ engine: { slots: 4, slot: 4 } }, 'engine.slot'],
    [{ engine: { slots: 4, prefillMsPerToken: -1 } }, 'engine.prefillMsPerToken'],
    [{ engine: { slots: 4, decodeStepMs: Number.NaN } }, 'engine.decodeStepMs'],
    [{ engine: { slots: 4, decodeStepMsPerSequence: '1' } }, 'engine.decodeStepMsPerSequence'],
    [{ engine: { slots: 4, maxWaiting: -1 } }, 'engine.maxWaiting'],
    [{ engine: { slots: 4, maxWaiting: 2.5 } }, 'engine.maxWaiting'],
    [{ engine: { slots: 4, jitter: 1.5 } }, 'engine.jitter'],
    [{ engine: { slots: 64, maxBatchedTokens: 32 } }, 'engine.maxBatchedTokens'],
  ])('rejects %j naming %s', async (options, option) => {
    const error = await createSimulator(options as SimulatorOptions).then(
      async (sim) => {
        await sim.close();
        throw new Error('expected a rejection');
      },
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SimulatorOptionError);
    expect(error).toMatchObject({ code: 'VOLLEY_ERR_SIM_OPTION', option });
    expect((error as Error).message).toContain(`"${option}"`);
  });

  it('leaves a running simulator unchanged when an engine patch is rejected', async () => {
    const sim = await createSimulator({ engine: { slots: 2 } });
    try {
      expect(() => sim.setOptions({ engine: { slots: 0 } })).toThrow(SimulatorOptionError);
      expect(await engineState(sim)).toMatchObject({ slots: 2 });
    } finally {
      await sim.close();
    }
  });
});
