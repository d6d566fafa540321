import { describe, expect, it } from 'vitest';
import { createSimulator, SimulatorOptionError, type SimulatorOptions } from '../src/index.js';
import { chatBody, send } from './helpers.js';

async function rejection(options: unknown): Promise<SimulatorOptionError> {
  const error = await createSimulator(options as SimulatorOptions).then(
    async (sim) => {
      await sim.close();
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SimulatorOptionError);
  return error as SimulatorOptionError;
}

describe('option validation', () => {
  it.each([
    [{ latencyMs: 5 }, 'latencyMs'],
    [{ port: 70_000 }, 'port'],
    [{ seed: 1.5 }, 'seed'],
    [{ models: ['a', ''] }, 'models'],
    [{ acceptAnyModel: 'yes' }, 'acceptAnyModel'],
    [{ latency: { headersMs: -1 } }, 'latency.headersMs'],
    [{ latency: { headersMs: { distribution: 'pareto' } } }, 'latency.headersMs.distribution'],
    [
      { latency: { headersMs: { distribution: 'uniform', minMs: 5, maxMs: 1 } } },
      'latency.headersMs.maxMs',
    ],
    [
      { latency: { headersMs: { distribution: 'normal', meanMs: 5 } } },
      'latency.headersMs.stdDevMs',
    ],
    [{ latency: { tokensPerSecond: Number.NaN } }, 'latency.tokensPerSecond'],
    [{ latency: { interTokenJitter: 2 } }, 'latency.interTokenJitter'],
    [{ limits: { rpm: 0 } }, 'limits.rpm'],
    [{ limits: { rps: 1 } }, 'limits.rps'],
    [{ faults: { rate: 1.5, kinds: { 'status-500': 1 } } }, 'faults.rate'],
    [{ faults: { rate: 0.5 } }, 'faults.kinds'],
    [{ faults: { kinds: { 'status-418': 1 } } }, 'faults.kinds'],
    [{ faults: { kinds: { 'status-500': -1 } } }, 'faults.kinds.status-500'],
    [{ faults: { outageKind: 'meltdown' } }, 'faults.outageKind'],
    [{ faultFor: 'status-500' }, 'faultFor'],
    [{ apiKey: '' }, 'apiKey'],
    [{ logCapacity: 0 }, 'logCapacity'],
    [{ clock: 0 }, 'clock'],
  ])('rejects %j naming %s', async (options, option) => {
    const error = await rejection(options);
    expect(error.code).toBe('VOLLEY_ERR_SIM_OPTION');
    expect(error.option).toBe(option);
    expect(error.message).toContain(`"${option}"`);
  });

  it('setOptions validates the patch and changes nothing when it is rejected', async () => {
    const sim = await createSimulator({ faults: { rate: 1, kinds: { 'status-503': 1 } } });
    try {
      expect(() => sim.setOptions({ faults: { rate: 2 } })).toThrow(SimulatorOptionError);
      expect(() => sim.setOptions({ port: sim.port + 1 })).toThrow(
        expect.objectContaining({ option: 'port' }),
      );
      expect(() => sim.setOptions({ logCapacity: 5 })).toThrow(
        expect.objectContaining({ option: 'logCapacity' }),
      );
      expect((await send(sim.url, '/chat/completions', { body: chatBody('x') })).status).toBe(503);
      // undefined restores a default.
      sim.setOptions({ faults: undefined });
      expect((await send(sim.url, '/chat/completions', { body: chatBody('x') })).status).toBe(200);
    } finally {
      await sim.close();
    }
  });

  it('close is idempotent and the url follows the SDK baseURL convention', async () => {
    const sim = await createSimulator();
    expect(sim.url).toBe(`http://127.0.0.1:${sim.port}/v1`);
    await Promise.all([sim.close(), sim.close()]);
    await sim.close();
  });
});
