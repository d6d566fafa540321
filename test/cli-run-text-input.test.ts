/**
 * `volley run prompts.txt -m <model>`: plain text, one prompt per line, as `volley embed` reads
 * it (custom_id `line-<n>`). A file that is not JSONL at all is refused with how to convert it.
 */

import { readFile, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJsonl, runCli, tempDir } from './helpers.js';

interface Received {
  model: string;
  messages: Array<{ role: string; content: string }>;
}
const received: Received[] = [];
let server: ReturnType<typeof createServer>;
let baseUrl = '';

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    req.on('end', () => {
      const body = JSON.parse(text) as Received;
      received.push(body);
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          id: 'chatcmpl-1',
          object: 'chat.completion',
          created: 0,
          model: body.model,
          choices: [
            { index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' },
          ],
          usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

describe('volley run with a plain-text prompt file', () => {
  it('sends each non-blank line as a prompt, custom_id line-<n>', async () => {
    await using dir = await tempDir();
    received.length = 0;
    // A BOM, CRLF line ends, a blank line and quotes: the prompts are the lines' text, exactly.
    await writeFile(
      dir.file('prompts.txt'),
      '\uFEFFHello there\r\nSecond "quoted" {prompt}\r\n\r\nThird\r\n',
    );
    const result = await runCli([
      'run',
      dir.file('prompts.txt'),
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      baseUrl,
      '-m',
      'test-model',
      '--concurrency',
      '1',
    ]);
    expect(result.stderr).toContain('3 valid');
    expect(result.code).toBe(0);
    const records = parseJsonl(await readFile(dir.file('out.jsonl'), 'utf8'));
    expect(records.map((r) => r.custom_id).sort()).toEqual(['line-1', 'line-2', 'line-4']);
    expect(received.map((r) => r.messages)).toEqual([
      [{ role: 'user', content: 'Hello there' }],
      [{ role: 'user', content: 'Second "quoted" {prompt}' }],
      [{ role: 'user', content: 'Third' }],
    ]);
    expect(received.every((r) => r.model === 'test-model')).toBe(true);
  }, 30_000);

  it('--input-format text reads any file name that way', async () => {
    await using dir = await tempDir();
    received.length = 0;
    await writeFile(dir.file('prompts.lines'), 'one\ntwo\n');
    const result = await runCli([
      'run',
      dir.file('prompts.lines'),
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      baseUrl,
      '-m',
      'test-model',
      '--input-format',
      'text',
    ]);
    expect(result.code).toBe(0);
    expect(received.map((r) => r.messages[0]?.content).sort()).toEqual(['one', 'two']);
  }, 30_000);

  it('resumes as text, and refuses to resume the same output as JSONL', async () => {
    await using dir = await tempDir();
    await writeFile(dir.file('prompts.txt'), 'one\ntwo\n');
    const args = ['run', dir.file('prompts.txt'), '-o', dir.file('out.jsonl')];
    const common = ['--base-url', baseUrl, '-m', 'test-model'];
    expect((await runCli([...args, ...common])).code).toBe(0);
    received.length = 0;
    const again = await runCli([...args, ...common, '--resume']);
    expect(again.code).toBe(0);
    expect(received).toHaveLength(0);
    const asJsonl = await runCli([...args, ...common, '--resume', '--input-format', 'jsonl']);
    expect(asJsonl.code).toBe(2);
    expect(asJsonl.stderr).toContain('the configuration changed');
    expect(received).toHaveLength(0);
  }, 30_000);

  it('without --model: one line saying so, exit 2, nothing sent', async () => {
    await using dir = await tempDir();
    received.length = 0;
    await writeFile(dir.file('prompts.txt'), 'Hello\n');
    const result = await runCli([
      'run',
      dir.file('prompts.txt'),
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      baseUrl,
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'volley: a plain-text input (one prompt per line) names no model: pass --model, e.g. -m gpt-4o-mini\n',
    );
    expect(received).toHaveLength(0);
  });

  it('a file that is not JSONL (a CSV) is refused with how to convert it', async () => {
    await using dir = await tempDir();
    await writeFile(dir.file('in.csv'), 'id,prompt\n1,hello\n2,"hi, there"\n');
    const result = await runCli([
      'run',
      dir.file('in.csv'),
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      baseUrl,
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('volley run reads JSONL (one JSON object per line)');
    expect(result.stderr).toContain("jq -Rc '{prompt: .}' prompts.txt > prompts.jsonl");
  });
});
