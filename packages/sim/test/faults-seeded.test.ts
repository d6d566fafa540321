import { describe, expect, it } from 'vitest';
import { createSimulator, type FaultKind, type SimulatorOptions } from '../src/index.js';
import { chatBody, send } from './helpers.js';

const SEEDED: SimulatorOptions['faults'] = {
  rate: 0.5,
  kinds: { 'status-500': 2, 'status-503': 1, 'status-429': 1, 'empty-200': 1 },
};

/** Sends `count` requests one after another and returns each one's fault (or '-'). */
async function faultSequence(options: SimulatorOptions, count: number): Promise<string[]> {
  const sim = await createSimulator(options);
  try {
    for (let i = 0; i < count; i++)
      await send(sim.url, '/chat/completions', { body: chatBody(`request ${i}`) });
    return sim.requests.map((entry) => entry.fault ?? '-');
  } finally {
    await sim.close();
  }
}

describe('seeded faults', () => {
  it('gives the same faults to the same requests for the same seed', async () => {
    const first = await faultSequence({ seed: 7, faults: SEEDED }, 40);
    const second = await faultSequence({ seed: 7, faults: SEEDED }, 40);
    const other = await faultSequence({ seed: 8, faults: SEEDED }, 40);
    expect(second).toEqual(first);
    expect(other).not.toEqual(first);
    const faulted = first.filter((kind) => kind !== '-');
    expect(faulted.length).toBeGreaterThan(8);
    expect(faulted.length).toBeLessThan(32);
    expect(new Set(faulted)).toEqual(
      new Set(['status-500', 'status-503', 'status-429', 'empty-200']),
    );
  });

  it('keys draws on the request index, so concurrency does not change which request fails', async () => {
    const sequential = await faultSequence({ seed: 3, faults: SEEDED }, 30);
    const sim = await createSimulator({ seed: 3, faults: SEEDED });
    try {
      await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          send(sim.url, '/chat/completions', { body: chatBody(`c${i}`) }),
        ),
      );
      expect(sim.requests.map((entry) => entry.fault ?? '-').sort()).toEqual(
        [...sequential].sort(),
      );
      const bySeq = [...sim.requests]
        .sort((a, b) => a.seq - b.seq)
        .map((entry) => entry.fault ?? '-');
      expect(bySeq).toEqual(sequential);
    } finally {
      await sim.close();
    }
  });

  it('does not change content: a request that is not faulted gets the same answer under any seed', async () => {
    const answers: string[] = [];
    for (const seed of [1, 2]) {
      const sim = await createSimulator({ seed });
      try {
        answers.push(
          (await send(sim.url, '/chat/completions', { body: chatBody('same') })).body.replace(
            /"id":"[^"]+"|"created":\d+/g,
            '',
          ),
        );
      } finally {
        await sim.close();
      }
    }
    expect(answers[1]).toBe(answers[0]);
  });
});

describe('targeted faults', () => {
  it('faultFor picks faults by request index and body, with per-fault parameters', async () => {
    const seen: number[] = [];
    const sim = await createSimulator({
      faultFor: ({ index, body, path }) => {
        seen.push(index);
        if (path !== '/v1/chat/completions') return undefined;
        if (index === 1) return 'status-502';
        const content = (body as { messages: { content: string }[] }).messages[0]!.content;
        return content === 'throttle me' ? { kind: 'status-429', retryAfterMs: 2500 } : undefined;
      },
    });
    try {
      expect((await send(sim.url, '/chat/completions', { body: chatBody('a') })).status).toBe(200);
      expect((await send(sim.url, '/chat/completions', { body: chatBody('b') })).status).toBe(502);
      const throttled = await send(sim.url, '/chat/completions', { body: chatBody('throttle me') });
      expect([
        throttled.status,
        throttled.headers['retry-after'],
        throttled.headers['retry-after-ms'],
      ]).toEqual([429, '3', '2500']);
      // The header wins over the hook.
      const forced = await send(sim.url, '/chat/completions', {
        body: chatBody('throttle me'),
        headers: { 'x-volley-sim-fault': 'status-504' },
      });
      expect(forced.status).toBe(504);
      expect(seen).toEqual([0, 1, 2]);
      expect(sim.requests.map((entry) => entry.fault)).toEqual([
        undefined,
        'status-502',
        'status-429',
        'status-504',
      ]);
    } finally {
      await sim.close();
    }
  });

  it('starts failing mid-run: an outage set live fails every request until it ends', async () => {
    let now = 0;
    const sim = await createSimulator({ clock: () => now });
    try {
      const statuses: number[] = [];
      const call = async (): Promise<void> => {
        statuses.push((await send(sim.url, '/chat/completions', { body: chatBody('x') })).status);
      };
      await call();
      sim.setOptions({ faults: { outageMs: 30_000 } });
      await call();
      now = 29_999;
      await call();
      now = 30_000;
      await call();
      sim.setOptions({ faults: { outageMs: 1000, outageKind: 'reset-before-headers' } });
      await call();
      expect(statuses).toEqual([200, 503, 503, 200, 0]);
      expect(sim.stats().byFault).toEqual({ 'status-503': 2, 'reset-before-headers': 1 });
    } finally {
      await sim.close();
    }
  });

  it('setOptions turns seeded faults on and off live', async () => {
    const sim = await createSimulator();
    try {
      sim.setOptions({ faults: { rate: 1, kinds: { 'status-500': 1 } } });
      expect((await send(sim.url, '/chat/completions', { body: chatBody('x') })).status).toBe(500);
      sim.setOptions({ faults: {} });
      expect((await send(sim.url, '/chat/completions', { body: chatBody('x') })).status).toBe(200);
    } finally {
      await sim.close();
    }
  });

  it('a throwing faultFor becomes a 500 envelope, not a crashed server', async () => {
    const sim = await createSimulator({
      faultFor: ({ index }) => {
        if (index === 0) throw new Error('hook broke');
        return index === 1 ? ('status-999' as FaultKind) : undefined;
      },
    });
    try {
      const broken = await send(sim.url, '/chat/completions', { body: chatBody('x') });
      expect([broken.status, JSON.parse(broken.body).error.code]).toEqual([500, 'simulator_error']);
      const unknown = await send(sim.url, '/chat/completions', { body: chatBody('x') });
      expect(JSON.parse(unknown.body).error.message).toContain('unknown fault kind');
      expect((await send(sim.url, '/chat/completions', { body: chatBody('x') })).status).toBe(200);
    } finally {
      await sim.close();
    }
  });
});
