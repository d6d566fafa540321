import { describe, expect, it } from 'vitest';
import { createFinishedSet, RecordKind } from '../src/run/finished-set.js';
import { recordId } from '../src/run/record.js';
import { oldHashPair } from './helpers/hash-collisions.js';

const RUN = '0123456789abcdef0123456789abcdef';

describe('createFinishedSet', () => {
  it('tells a finished line from a changed one by the record id', () => {
    const set = createFinishedSet();
    expect(set.add('req-1', recordId(RUN, 'req-1', 'text'), RecordKind.SUCCESS)).toBe(true);
    expect(set.add('req-1', recordId(RUN, 'req-1', 'other'), RecordKind.SUCCESS)).toBe(false);
    expect(set.lookup('req-1', recordId(RUN, 'req-1', 'text'))).toMatchObject({
      found: true,
      kind: RecordKind.SUCCESS,
      sameRequest: true,
    });
    expect(set.lookup('req-1', recordId(RUN, 'req-1', 'edited'))).toMatchObject({
      found: true,
      sameRequest: false,
    });
    expect(set.lookup('req-2', recordId(RUN, 'req-2', 'text'))).toEqual({ found: false });
  });

  it('keeps the latest failure of a line, and forgets stale entries', () => {
    const set = createFinishedSet();
    const old = recordId(RUN, 'a', 'v1');
    const latest = recordId(RUN, 'a', 'v2');
    set.add('a', old, RecordKind.FINAL_ERROR);
    set.replace('a', latest, RecordKind.FINAL_ERROR);
    expect(set.keeps('a', latest, RecordKind.FINAL_ERROR)).toBe(true);
    expect(set.keeps('a', old, RecordKind.FINAL_ERROR)).toBe(false);
    const hit = set.lookup('a', latest);
    if (!hit.found) throw new Error('expected a hit');
    set.markStale(hit.slot);
    expect(set.lookup('a', latest)).toEqual({ found: false });
    expect(set.keeps('a', latest, RecordKind.FINAL_ERROR)).toBe(false);
    expect(set.kindOf('a')).toBe(0);
  });

  it('stores spill offsets and stays exact across growth to 200,000 ids', () => {
    const set = createFinishedSet();
    for (let i = 0; i < 200_000; i++) {
      set.add(`id-${i}`, recordId(RUN, `id-${i}`, String(i)), RecordKind.SPILLED, i * 10, i);
    }
    expect(set.size).toBe(200_000);
    for (const i of [0, 1, 77_777, 199_999]) {
      const hit = set.lookup(`id-${i}`, recordId(RUN, `id-${i}`, String(i)));
      if (!hit.found) throw new Error(`id-${i} not found`);
      expect([hit.sameRequest, set.extraA(hit.slot), set.extraB(hit.slot)]).toEqual([
        true,
        i * 10,
        i,
      ]);
    }
    expect(set.lookup('id-200000', recordId(RUN, 'id-200000', 'x')).found).toBe(false);
  });
});

describe('createFinishedSet with colliding custom_ids', () => {
  // Two ids with one 64-bit value under the hashPair this set once relied on; found by
  // hashPairCollision() in helpers/hash-collisions.ts (about 3 s, so kept here).
  const X =
    'req-GihyQHHvRtAp69yTQuDieXP8hQlK4iurpdGl7cN9P_q_Hjf5-QaeM26SMAymqtUc69ylLxJgeVUdulvKsE3hzUFe0m';
  const Y =
    'req-GihyQuKrp2YV3chTQuDieXP8hqVSoZurpdGl7cN9o1TghWGTlqaeM26SMAym0SkwT9ylLxFx3c-dulvKsE3hzZpg4z';

  it('keeps two ids with equal 64-bit hashes apart', () => {
    expect(X).not.toBe(Y);
    expect(oldHashPair(X)).toEqual(oldHashPair(Y));
    const set = createFinishedSet();
    expect(set.add(X, recordId(RUN, X, 'x'), RecordKind.SUCCESS)).toBe(true);
    expect(set.add(Y, recordId(RUN, Y, 'y'), RecordKind.SUCCESS)).toBe(true);
    expect(set.lookup(Y, recordId(RUN, Y, 'y'))).toMatchObject({ found: true, sameRequest: true });
    expect(set.lookup(X, recordId(RUN, X, 'x'))).toMatchObject({ found: true, sameRequest: true });
    expect(set.size).toBe(2);
  });

  it('is exact whatever the hash (a test hook makes every id collide)', () => {
    const set = createFinishedSet({ hash: () => 42 });
    for (let i = 0; i < 500; i++) {
      expect(set.add(`c-${i}`, recordId(RUN, `c-${i}`, 't'), RecordKind.FINAL_ERROR, i, -i)).toBe(
        true,
      );
    }
    expect(set.lookup('c-500', recordId(RUN, 'c-500', 't'))).toEqual({ found: false });
    const hit = set.lookup('c-7', recordId(RUN, 'c-7', 't'));
    expect(hit).toMatchObject({ found: true, kind: RecordKind.FINAL_ERROR, sameRequest: true });
    if (!hit.found) return;
    expect([set.extraA(hit.slot), set.extraB(hit.slot)]).toEqual([7, -7]);
    set.markStale(hit.slot);
    expect(set.kindOf('c-7')).toBe(0);
    expect(set.kindOf('c-8')).toBe(RecordKind.FINAL_ERROR);
    expect(set.keeps('c-9', recordId(RUN, 'c-9', 't'), RecordKind.FINAL_ERROR)).toBe(true);
    expect(set.keeps('c-9', recordId(RUN, 'c-8', 't'), RecordKind.FINAL_ERROR)).toBe(false);
  });
});
