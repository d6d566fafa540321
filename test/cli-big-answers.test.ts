/**
 * Big answers all settling at once reach the results file whole. Regression: 64 answers of 40 MB
 * (under the 64 MiB response cap) at `-c 64` were joined into one string past V8's limit; the
 * RangeError killed the run, the paid answers were lost and the lock stayed. Reproducing that
 * needs gigabytes, so this runs the same path at 8 × 8 MB, with every answer held back by its
 * last byte until all are nearly sent, so their records queue up together (the journal's bound
 * itself is tested in packages/cli/test/journal-bounded-writes.test.ts).
 */

import { readFile, writeFile } from 'node:fs/promises';
import type { Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from './helpers.js';

const ANSWERS = 8;
const ANSWER_CHARS = 8_000_000;

/** The chat completion of request `id`: ANSWER_CHARS of one letter per request. */
function completion(id: number): Buffer {
  const content = String.fromCharCode(97 + (id % 26)).repeat(ANSWER_CHARS);
  return Buffer.from(
    JSON.stringify({
      id: `chatcmpl-${id}`,
      object: 'chat.completion',
      created: 1,
      model: 'big',
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
    }),
  );
}

/** Sends each answer but its last byte; once ANSWERS are that far, ends them all at once. */
async function startHoldingServer(): Promise<{ server: Server; url: string }> {
  let held: Array<{ response: ServerResponse; last: Buffer }> = [];
  let next = 0;
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      const body = completion(next++);
      response.writeHead(200, {
        'content-type': 'application/json',
        'content-length': body.length,
      });
      response.write(body.subarray(0, body.length - 1), () => {
        held.push({ response, last: body.subarray(body.length - 1) });
        if (held.length < ANSWERS) return;
        for (const { response: r, last } of held) r.end(last);
        held = [];
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/v1` };
}

describe('big answers', () => {
  let big: Awaited<ReturnType<typeof startHoldingServer>>;
  beforeAll(async () => {
    big = await startHoldingServer();
  });
  afterAll(() => new Promise((resolve) => big.server.close(resolve)));

  it('are all written whole when they settle together, exit 0', async () => {
    await using dir = await tempDir();
    const lines = Array.from({ length: ANSWERS }, (_, i) =>
      JSON.stringify({
        custom_id: `big-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'big', messages: [{ role: 'user', content: `${i}` }] },
      }),
    );
    const input = dir.file('in.jsonl');
    await writeFile(input, `${lines.join('\n')}\n`);
    const out = dir.file('out.jsonl');
    const result = await runCli([
      'run',
      input,
      '-o',
      out,
      '--base-url',
      big.url,
      '-c',
      String(ANSWERS),
      '--progress',
      'none',
      '--json',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ succeeded: ANSWERS, failed: 0 });
    const records = (await readFile(out, 'utf8'))
      .split('\n')
      .filter((line) => line !== '')
      .map(
        (line) =>
          JSON.parse(line) as {
            custom_id: string;
            response: { body: { choices: Array<{ message: { content: string } }> } };
          },
      );
    expect(records.map((r) => r.custom_id).sort()).toEqual(lines.map((_, i) => `big-${i}`).sort());
    for (const record of records) {
      const content = record.response.body.choices[0]?.message.content ?? '';
      expect(content.length).toBe(ANSWER_CHARS);
      expect(new Set(content).size).toBe(1);
    }
  }, 60_000);
});
