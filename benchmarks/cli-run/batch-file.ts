/**
 * The CLI benchmark's input and its check: an OpenAI Batch JSONL file of N identical short chat
 * requests (the throughput workload's body) with custom_ids `line-0` … `line-<N-1>`, and a check
 * that an output file holds exactly one successful record per custom_id, so no contender can win
 * by dropping, duplicating or failing work.
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { CHAT_REQUEST } from '../throughput/workload.js';

export const CUSTOM_ID_PREFIX = 'line-';

export async function writeBatchInput(path: string, lines: number): Promise<void> {
  const out = createWriteStream(path);
  const body = JSON.stringify(CHAT_REQUEST);
  for (let i = 0; i < lines; i++) {
    const line = `{"custom_id":"${CUSTOM_ID_PREFIX}${i}","method":"POST","url":"/v1/chat/completions","body":${body}}\n`;
    if (!out.write(line)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

export interface OutputCheck {
  records: number;
  /** custom_ids seen exactly once with status 200 and a string `choices[0].message.content`. */
  ok: number;
  missing: number;
  duplicates: number;
  /** Records with an unknown custom_id, an error, a status other than 200 or no content. */
  bad: number;
  firstProblem?: string;
}

interface OutputRecord {
  custom_id?: unknown;
  response?: {
    status_code?: unknown;
    body?: { choices?: Array<{ message?: { content?: unknown } }> };
  } | null;
  error?: unknown;
}

export async function checkBatchOutput(path: string, lines: number): Promise<OutputCheck> {
  const seen = new Uint8Array(lines);
  const check: OutputCheck = { records: 0, ok: 0, missing: 0, duplicates: 0, bad: 0 };
  const problem = (text: string): void => {
    check.firstProblem ??= text;
  };
  for await (const text of createInterface({
    input: createReadStream(path),
    crlfDelay: Infinity,
  })) {
    if (text === '') continue;
    check.records++;
    let record: OutputRecord;
    try {
      record = JSON.parse(text) as OutputRecord;
    } catch {
      check.bad++;
      problem(`not JSON: ${text.slice(0, 120)}`);
      continue;
    }
    const id = typeof record.custom_id === 'string' ? record.custom_id : '';
    const index = id.startsWith(CUSTOM_ID_PREFIX) ? Number(id.slice(CUSTOM_ID_PREFIX.length)) : -1;
    if (!Number.isInteger(index) || index < 0 || index >= lines) {
      check.bad++;
      problem(`unknown custom_id ${JSON.stringify(record.custom_id)}`);
      continue;
    }
    if (seen[index] === 1) {
      check.duplicates++;
      problem(`duplicate custom_id ${id}`);
      continue;
    }
    seen[index] = 1;
    const content = record.response?.body?.choices?.[0]?.message?.content;
    if (
      record.response?.status_code !== 200 ||
      typeof content !== 'string' ||
      record.error != null
    ) {
      check.bad++;
      problem(`${id} failed: ${text.slice(0, 200)}`);
      continue;
    }
    check.ok++;
  }
  check.missing = seen.reduce((missing, value) => missing + (value === 0 ? 1 : 0), 0);
  if (check.missing > 0) problem(`${check.missing} custom_ids have no record`);
  return check;
}
