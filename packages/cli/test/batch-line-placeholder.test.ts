import { describe, expect, it } from 'vitest';
import {
  duplicateCustomIdIssue,
  implicitCustomId,
  parseBatchLine,
  placeholderCustomId,
} from '../src/jsonl/batch-line.js';
import { parseLine } from '../src/run/lines.js';

const at = (lineNo: number, text: string) => ({ lineNo, offset: 0, text });
const batch = (customId: unknown) =>
  JSON.stringify({
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'm', messages: [{ role: 'user', content: 'x' }] },
  });
function issueOf(lineNo: number, text: string) {
  const result = parseBatchLine(at(lineNo, text), { model: 'm' });
  if (result.ok) throw new Error(`line accepted: ${text}`);
  return result.issue;
}

describe('placeholder custom_ids of lines without a valid one', () => {
  it('are #line-<n>, distinct from implicit ids', () => {
    expect(placeholderCustomId(7)).toBe('#line-7');
    expect(implicitCustomId(7)).toBe('line-7');
  });

  it('name the records of lines whose custom_id is missing, invalid or unreadable', () => {
    expect(issueOf(1, batch(undefined)).customId).toBe('#line-1');
    expect(issueOf(2, batch(42)).customId).toBe('#line-2');
    expect(issueOf(3, batch('  ')).customId).toBe('#line-3');
    expect(issueOf(4, '{"custom_id":"a",').customId).toBe('#line-4');
    expect(issueOf(5, '[1]').customId).toBe('#line-5');
    // A convenience line without custom_id that is bad for another reason: not its implicit id,
    // which a real id on another line may hold.
    expect(issueOf(6, '{"prompt":""}').customId).toBe('#line-6');
    expect(issueOf(6, '{"prompt":"x","stream":true}').customId).toBe('#line-6');
    // A line with a valid id keeps it.
    expect(issueOf(8, '{"custom_id":"a","prompt":""}').customId).toBe('a');
  });

  it('cannot be taken by a real custom_id', () => {
    for (const id of ['#line-1', '#line-0', '#line-123456']) {
      const issue = issueOf(9, batch(id));
      expect(issue.code).toBe('VOLLEY_INPUT_CUSTOM_ID_RESERVED');
      expect(issue.customId).toBe('#line-9');
      expect(issueOf(9, JSON.stringify({ custom_id: id, prompt: 'x' })).code).toBe(
        'VOLLEY_INPUT_CUSTOM_ID_RESERVED',
      );
    }
    // Only the exact form is reserved.
    for (const id of ['line-1', '#line-', '#line-1a', 'x#line-1', '#Line-1']) {
      expect(parseBatchLine(at(1, batch(id))).ok, id).toBe(true);
    }
  });

  it('name unreadable lines from the reader too', () => {
    const parsed = parseLine(
      {
        lineNo: 4,
        offset: 10,
        bytes: 3,
        issue: {
          code: 'VOLLEY_INPUT_INVALID_UTF8',
          message: 'x',
          lineNo: 4,
          offset: 10,
          snippet: '',
        },
      },
      { defaults: {} },
    );
    expect(parsed.ok ? undefined : parsed.issue.customId).toBe('#line-4');
  });

  it('name a duplicate that repeats an id only through its implicit one', () => {
    const implicit = duplicateCustomIdIssue(at(6, '{"prompt":"x"}'), 'line-6');
    expect(implicit.customId).toBe('#line-6');
    expect(implicit.message).toMatch(/no "custom_id"/);
    // A real id that is a duplicate keeps its id, even of the implicit form.
    expect(
      duplicateCustomIdIssue(at(6, '{"custom_id":"line-6","prompt":"x"}'), 'line-6').customId,
    ).toBe('line-6');
    expect(duplicateCustomIdIssue(at(2, batch('a')), 'a').customId).toBe('a');
  });
});
