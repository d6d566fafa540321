import { describe, expect, it } from 'vitest';
import { AttemptTable } from '../src/attempt-table.js';

describe('AttemptTable', () => {
  it('finds what it holds by the id add returned, and nothing once it is deleted', () => {
    const table = new AttemptTable<string>();
    const a = table.add('a');
    const b = table.add('b');
    expect(a).not.toBe(b);
    expect(table.get(a)).toBe('a');
    expect(table.get(b)).toBe('b');
    expect(table.size).toBe(2);
    expect(table.delete(a)).toBe(true);
    expect(table.get(a)).toBeUndefined();
    expect(table.delete(a)).toBe(false);
    expect(table.size).toBe(1);
  });

  it('never hands out an id twice, although slots are reused', () => {
    const table = new AttemptTable<number>();
    const seen = new Set<number>();
    const held: number[] = [];
    for (let i = 0; i < 10_000; i++) {
      const id = table.add(i);
      expect(seen.has(id)).toBe(false);
      seen.add(id);
      held.push(id);
      // Keep about 8 on the wire, ending them out of order.
      if (held.length > 8) table.delete(held.splice((i * 7) % held.length, 1)[0] as number);
    }
    expect(table.size).toBe(8);
  });

  it('does not find a late id in a slot that now holds a newer attempt', () => {
    const table = new AttemptTable<string>();
    const old = table.add('old');
    table.delete(old);
    const newer = table.add('newer');
    expect(table.get(old)).toBeUndefined();
    expect(table.delete(old)).toBe(false);
    expect(table.get(newer)).toBe('newer');
    expect(table.size).toBe(1);
  });

  it('replaces the item under an id it holds, and refuses an id it does not', () => {
    const table = new AttemptTable<string>();
    const call = table.add('call');
    const copy = table.add('copy');
    table.replace(call, 'copy');
    table.replace(copy, 'call');
    expect(table.get(call)).toBe('copy');
    expect(table.get(copy)).toBe('call');
    table.delete(copy);
    expect(() => table.replace(copy, 'x')).toThrow(/not on the wire/);
  });

  it('lets entries be deleted while they are iterated, and clears', () => {
    const table = new AttemptTable<number>();
    const ids = Array.from({ length: 6 }, (_, i) => table.add(i));
    const visited: number[] = [];
    for (const [id, item] of table.entries()) {
      visited.push(item);
      table.delete(id);
    }
    expect(visited).toEqual([0, 1, 2, 3, 4, 5]);
    expect(table.size).toBe(0);
    for (const id of ids) expect(table.get(id)).toBeUndefined();

    table.add(7);
    table.add(8);
    expect([...table.values()].sort()).toEqual([7, 8]);
    table.clear();
    expect(table.size).toBe(0);
    expect([...table.values()]).toEqual([]);
    // Slots freed by clear are handed out again, under new ids.
    const again = table.add(9);
    expect(ids).not.toContain(again);
    expect(table.get(again)).toBe(9);
  });
});
