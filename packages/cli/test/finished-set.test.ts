import { describe, expect, it } from 'vitest';
import { createFinishedSet, RecordKind } from '../src/run/finished-set.js';
import { recordId } from '../src/run/record.js';

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
