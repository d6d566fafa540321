import { describe, expect, it } from 'vitest';
import { duplicateCustomIdIssue } from '../src/jsonl/batch-line.js';
import { createDuplicateTracker } from '../src/jsonl/duplicate-tracker.js';

describe('createDuplicateTracker', () => {
  it('reports the second add of an id as a duplicate', () => {
    const ids = createDuplicateTracker();
    expect(ids.add('a')).toBe(true);
    expect(ids.add('b')).toBe(true);
    expect(ids.add('a')).toBe(false);
    expect(ids.has('b')).toBe(true);
    expect(ids.has('c')).toBe(false);
    expect(ids.size).toBe(2);
  });

  it('is exact across growth, prefixes and non-ASCII ids', () => {
    const ids = createDuplicateTracker();
    const n = 200_000;
    for (let i = 0; i < n; i++) expect(ids.add(`req-${i}`)).toBe(true);
    expect(ids.add('req-')).toBe(true);
    expect(ids.add('é😀')).toBe(true);
    expect(ids.add('e\u0301😀')).toBe(true); // distinct code points, never normalized
    for (let i = 0; i < n; i += 997) expect(ids.add(`req-${i}`)).toBe(false);
    expect(ids.add('é😀')).toBe(false);
    expect(ids.has(`req-${n}`)).toBe(false);
    expect(ids.size).toBe(n + 3);
    // Compact: far below the ~70+ bytes per entry of a Set<string>.
    expect(ids.bytes / ids.size).toBeLessThan(40);
  });

  it('builds a coded issue for the caller', () => {
    expect(
      duplicateCustomIdIssue({ lineNo: 8, offset: 80, text: '{"custom_id":"a"}' }, 'a'),
    ).toMatchObject({
      code: 'VOLLEY_INPUT_DUPLICATE_CUSTOM_ID',
      lineNo: 8,
      offset: 80,
      customId: 'a',
    });
  });
});
