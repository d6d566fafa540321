/**
 * Checks what `volley run` wrote for a batch made by `writeBatch` (custom_ids `req-0` ...): every
 * line exactly once across the results and errors files, no torn record, and every result body
 * equal to what the deterministic simulator returns for that request. Shared by the crash tests
 * and scripts/kill-resume-harness.ts.
 */
import { readFile } from 'node:fs/promises';
import { simulatedChatContent } from '@volley/sim';
import { chatBody } from './helpers.js';

/** What {@link checkBatchOutput} counted. */
export interface BatchCheck {
  /** Whole records in the results and errors files. */
  records: number;
  /** Lines with no record. */
  lost: number;
  /** Records beyond the first for a custom_id. */
  duplicated: number;
  /** Lines that do not parse as JSON (torn or garbage). */
  torn: number;
  /** Results whose content differs from what the simulator returns for that request. */
  mismatched: number;
  /** Records in the errors file. */
  errors: number;
  /** Results that come before a result of an earlier input line. */
  outOfOrder: number;
}

async function readOrEmpty(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Reads `results` (and `errors`, if given) and checks them against `count` lines of
 * `writeBatch`.
 *
 * @example
 * expect(await checkBatchOutput(count, dir.file('out.jsonl'), dir.file('out.errors.jsonl')))
 *   .toMatchObject({ lost: 0, duplicated: 0, torn: 0, mismatched: 0 });
 */
export async function checkBatchOutput(
  count: number,
  results: string,
  errors?: string,
): Promise<BatchCheck> {
  const check: BatchCheck = {
    records: 0,
    lost: 0,
    duplicated: 0,
    torn: 0,
    mismatched: 0,
    errors: 0,
    outOfOrder: 0,
  };
  const seen = new Uint8Array(count);
  let previous = -1;
  const files = [{ text: await readOrEmpty(results), isErrors: false }];
  if (errors !== undefined) files.push({ text: await readOrEmpty(errors), isErrors: true });
  for (const { text, isErrors } of files) {
    if (text.length > 0 && !text.endsWith('\n')) check.torn++;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      let record: {
        custom_id?: string;
        response?: { body?: { choices?: Array<{ message?: { content?: string } }> } } | null;
      };
      try {
        record = JSON.parse(line) as typeof record;
      } catch {
        check.torn++;
        continue;
      }
      check.records++;
      const index = Number(String(record.custom_id).slice('req-'.length));
      if (!Number.isInteger(index) || index < 0 || index >= count) {
        check.mismatched++;
        continue;
      }
      if (seen[index] === 1) check.duplicated++;
      seen[index] = 1;
      if (isErrors) {
        check.errors++;
        continue;
      }
      if (index < previous) check.outOfOrder++;
      previous = index;
      const content = record.response?.body?.choices?.[0]?.message?.content;
      if (content !== simulatedChatContent(chatBody(index)).content) check.mismatched++;
    }
  }
  for (const flag of seen) if (flag === 0) check.lost++;
  return check;
}
