/**
 * The Lua scripts against a real Redis: lending arithmetic, atomicity under many concurrent
 * callers, refunds and charges, cool-downs, slots and floors. Levels are read back with HGET.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { groupKeys } from '../src/keys.js';
import type { ScriptCommands } from '../src/scripts.js';
import { defineScripts, parseAcquire, parseSettle } from '../src/scripts.js';
import { dropKeys, inspector, SHARED_REDIS, uniquePrefix } from './helpers/redis.js';

interface Ask {
  holder?: string;
  rpm?: number;
  tpm?: number;
  maxInFlight?: number;
  needRequests?: number;
  wantRequests?: number;
  needTokens?: number;
  wantTokens?: number;
  needSlots?: number;
  wantSlots?: number;
  heldSlots?: number;
  returnRequests?: number;
  tokenDelta?: number;
  floorRequests?: number;
  floorTokens?: number;
  burstMs?: number;
}

const look = inspector();
const clients: Array<Redis & ScriptCommands> = [];
let prefix = '';

function client(): Redis & ScriptCommands {
  const redis = defineScripts(new Redis(SHARED_REDIS, { maxRetriesPerRequest: 1 }));
  clients.push(redis);
  return redis;
}

function keys() {
  return groupKeys(prefix, 'g1');
}

function acquire(redis: Redis & ScriptCommands, ask: Ask) {
  const k = keys();
  return redis
    .volleyAcquire(
      k.bucket,
      k.slots,
      k.members,
      'm1',
      ask.holder ?? 'm1.0',
      ask.rpm ?? -1,
      ask.tpm ?? -1,
      ask.maxInFlight ?? -1,
      ask.burstMs ?? 250,
      ask.needRequests ?? 0,
      ask.wantRequests ?? 0,
      ask.needTokens ?? 0,
      ask.wantTokens ?? 0,
      ask.needSlots ?? 0,
      ask.wantSlots ?? 0,
      ask.heldSlots ?? 0,
      ask.returnRequests ?? 0,
      ask.tokenDelta ?? 0,
      ask.floorRequests ?? -1,
      ask.floorTokens ?? -1,
      5_000,
      5_000,
      10_000,
      60_000,
      'test label',
    )
    .then(parseAcquire);
}

function settle(redis: Redis & ScriptCommands, ask: Ask & { leaving?: boolean }) {
  const k = keys();
  return redis
    .volleySettle(
      k.bucket,
      k.slots,
      k.members,
      'm1',
      ask.holder ?? 'm1.0',
      ask.rpm ?? -1,
      ask.tpm ?? -1,
      ask.maxInFlight ?? -1,
      250,
      ask.returnRequests ?? 0,
      ask.tokenDelta ?? 0,
      ask.heldSlots ?? 0,
      ask.floorRequests ?? -1,
      ask.floorTokens ?? -1,
      ask.leaving === true ? 1 : 0,
      5_000,
      10_000,
      60_000,
      'test label',
    )
    .then(parseSettle);
}

async function field(name: string): Promise<number> {
  return Number(await look.hget(keys().bucket, name));
}

beforeEach(() => {
  prefix = uniquePrefix('scripts');
});

afterEach(async () => {
  await dropKeys(look, prefix);
});

afterAll(async () => {
  for (const redis of clients) redis.disconnect();
  look.disconnect();
});

describe('acquire', () => {
  it('lends what the burst holds now, then the whole want in debt, ready once refilled', async () => {
    const redis = client();
    // 60 RPM with a minute of burst: 60 requests in the bucket, one more per second. Slow on
    // purpose: a test process paused for a second still sees the same arithmetic.
    const slow = { rpm: 60, burstMs: 60_000 };
    const first = await acquire(redis, { ...slow, needRequests: 1, wantRequests: 50 });
    expect(first).toMatchObject({ granted: true, requests: 50, waitMs: 0 });
    // About 10 left: lent now, as much as there is, though 20 were wanted.
    const second = await acquire(redis, { ...slow, needRequests: 1, wantRequests: 20 });
    expect(second).toMatchObject({ granted: true, waitMs: 0 });
    expect(second.requests).toBeGreaterThanOrEqual(10);
    expect(second.requests).toBeLessThan(20);
    // Less than 5 left where 5 are needed: the whole want is lent in debt, ready once the
    // refill has paid it back (one request per 1,000 ms).
    const third = await acquire(redis, { ...slow, needRequests: 5, wantRequests: 20 });
    expect(third).toMatchObject({ granted: true, requests: 20 });
    const debt = await field('req');
    expect(debt).toBeLessThan(-15);
    expect(third.waitMs).toBeCloseTo(-debt * 1_000, 0);
  });

  it('never lends more than the burst plus the refill to many concurrent callers', async () => {
    // 6,000 RPM: 0.1 request per ms, a burst of 25. 8 connections x 50 callers at once.
    const connections = Array.from({ length: 8 }, () => client());
    await Promise.all(connections.map((redis) => redis.ping()));
    const startedAt = performance.now();
    const grants = await Promise.all(
      connections.flatMap((redis) =>
        Array.from({ length: 50 }, async () => {
          const reply = await acquire(redis, { rpm: 6_000, needRequests: 1, wantRequests: 1 });
          return { ...reply, readyAt: performance.now() + reply.waitMs - startedAt };
        }),
      ),
    );
    expect(grants.every((grant) => grant.granted && grant.requests === 1)).toBe(true);
    const ready = grants.map((grant) => grant.readyAt).sort((a, b) => a - b);
    // However the calls interleaved, the k-th request is ready no sooner than the refill allows.
    ready.forEach((at, k) => {
      expect(k + 1).toBeLessThanOrEqual(25 + Math.max(0, at) * 0.1 + 1);
    });
    // And none is held back longer than the refill needs: 375 requests beyond the burst.
    expect(ready.at(-1)).toBeLessThan(3_750 + 500);
    expect(await field('req')).toBeLessThan(-375 + (performance.now() - startedAt) * 0.1 + 1);
  });

  it('settles refunds up to the burst and charges below zero, which delays the next lease', async () => {
    const redis = client();
    // 60,000 TPM: 1 token per ms, a burst of 250 tokens.
    await acquire(redis, { tpm: 60_000, needTokens: 200, wantTokens: 200 });
    expect(await field('tok')).toBeLessThan(60);
    await settle(redis, { tpm: 60_000, tokenDelta: 10_000 });
    expect(await field('tok')).toBe(250);
    await settle(redis, { tpm: 60_000, tokenDelta: -500 });
    expect(await field('tok')).toBeLessThan(-240);
    const next = await acquire(redis, { tpm: 60_000, needTokens: 10, wantTokens: 10 });
    expect(next.granted).toBe(true);
    // The charge is paid back first: about 250 ms of refill, plus the 10 tokens.
    expect(next.waitMs).toBeGreaterThan(240);
    expect(next.waitMs).toBeLessThanOrEqual(262);
  });

  it('refuses every lease during a cool-down, announces it, and keeps levels untouched', async () => {
    const redis = client();
    const listener = new Redis(SHARED_REDIS);
    clients.push(listener as Redis & ScriptCommands);
    const heard = new Promise<string>((resolve) =>
      listener.on('message', (_c, m: string) => resolve(m)),
    );
    await listener.subscribe(`${prefix}:events`);
    await acquire(redis, { rpm: 6_000, needRequests: 1, wantRequests: 5 });
    const before = await field('req');
    const left = Number(
      await redis.volleyCooldown(keys().bucket, 500, `${prefix}:events`, 'g1', 60_000),
    );
    expect(left).toBeGreaterThan(490);
    expect(await heard).toMatch(/^g1\|c\|(4\d\d|500)$/);
    const refused = await acquire(redis, { rpm: 6_000, needRequests: 1, wantRequests: 5 });
    expect(refused).toMatchObject({ granted: false, requests: 0 });
    expect(refused.waitMs).toBeGreaterThan(400);
    expect(refused.cooldownMs).toBeGreaterThan(400);
    expect(await field('req')).toBeGreaterThanOrEqual(before);
  });

  it('lends nothing while the slots are taken, and the slots come back when given back', async () => {
    const a = client();
    const limits = { rpm: 6_000, maxInFlight: 2 };
    const first = await acquire(a, {
      ...limits,
      holder: 'a',
      needRequests: 1,
      wantRequests: 2,
      needSlots: 1,
      wantSlots: 2,
    });
    expect(first).toMatchObject({ granted: true, slots: 2 });
    const levelBefore = await field('req');
    const refused = await acquire(a, {
      ...limits,
      holder: 'b',
      needRequests: 1,
      wantRequests: 1,
      needSlots: 1,
      wantSlots: 1,
    });
    expect(refused).toMatchObject({ granted: false, requests: 0, slots: 0, waitMs: -1 });
    // All or nothing: the refused lease took no request either (the level only refilled).
    expect(await field('req')).toBeGreaterThanOrEqual(levelBefore);
    const news = await settle(a, { ...limits, holder: 'a', heldSlots: 0 });
    expect(news.contended).toBe(true);
    const after = await acquire(a, {
      ...limits,
      holder: 'b',
      needRequests: 1,
      wantRequests: 1,
      needSlots: 1,
      wantSlots: 1,
    });
    expect(after).toMatchObject({ granted: true, slots: 1 });
  });

  it('lowers a level to what a server said remains, and never raises it', async () => {
    const redis = client();
    await acquire(redis, { rpm: 6_000, needRequests: 1, wantRequests: 5 });
    await settle(redis, { rpm: 6_000, floorRequests: 3 });
    expect(await field('req')).toBe(3);
    await settle(redis, { rpm: 6_000, floorRequests: 20 });
    expect(await field('req')).toBeLessThan(4);
  });

  it('keeps learned limits for lanes with none configured, and announces them', async () => {
    const redis = client();
    expect(await redis.volleyLearn(keys().bucket, 600, -1, `${prefix}:events`, 'g1', 60_000)).toBe(
      1,
    );
    expect(await redis.volleyLearn(keys().bucket, 600, -1, `${prefix}:events`, 'g1', 60_000)).toBe(
      0,
    );
    // A lane with no configured rpm runs on the learned 600 RPM: a burst of 2.5 requests.
    const lease = await acquire(redis, { needRequests: 1, wantRequests: 10 });
    expect(lease).toMatchObject({ granted: true, requests: 2, learnedRpm: 600 });
    expect(await look.pttl(keys().bucket)).toBeGreaterThan(0);
  });
});
