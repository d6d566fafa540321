/**
 * Every bad-input case of reliability.md through the real CLI. Line-level problems: one error
 * record each, with the documented code, line number, byte offset and a short snippet, while the
 * valid lines are processed. File-level problems: exit 2, nothing sent, no output created. Never
 * an uncaught exception (no stack trace on stderr).
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Simulator } from '@volley/sim';
import { createSimulator, simulatedChatContent } from '@volley/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli } from './cli-process.js';
import { badInputCases, badInputFile, positions } from './fixtures/bad-input/cases.js';
import type { CliResult } from './helpers.js';
import { batchLine, CLI, parseJsonl, runCli, tempDir, writeBatch } from './helpers.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/bad-input/lines.jsonl', import.meta.url));
const RULES = [
  '--max-line-bytes',
  '4096',
  '--max-prompt-tokens',
  '100',
  '--allow-model',
  'volley-sim-1',
  '--allow-model',
  'volley-sim-embed-1',
];

let sim: Simulator;

beforeAll(async () => {
  sim = await createSimulator();
});
afterAll(() => sim.close());

function expectNoCrash(result: CliResult): void {
  expect(result.stderr).not.toMatch(/\n\s+at \S+/);
  expect(result.stderr).not.toMatch(/TypeError|ReferenceError|RangeError|Uncaught/);
  expect([0, 1, 2, 3, 4]).toContain(result.code);
}

interface ErrorLine {
  custom_id: string;
  error: { code: string; line: number; offset?: number; snippet?: string; retryable: boolean };
}

describe('the bad-input fixture', () => {
  it('is what cases.ts builds (regenerate with test/fixtures/bad-input/generate.ts)', async () => {
    expect((await readFile(FIXTURE)).equals(badInputFile())).toBe(true);
  });

  it('gives each bad line its code, line number and byte offset, and processes the rest', async () => {
    await using dir = await tempDir();
    const cases = badInputCases();
    const at = positions(cases);
    const before = sim.stats().requests;
    const result = await runCli([
      'run',
      FIXTURE,
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      sim.url,
      '--progress',
      'none',
      '--json',
      ...RULES,
    ]);
    expectNoCrash(result);
    expect(result.code).toBe(1);
    const errors = parseJsonl(
      await readFile(dir.file('out.errors.jsonl'), 'utf8'),
    ) as unknown as ErrorLine[];
    const results = parseJsonl(await readFile(dir.file('out.jsonl'), 'utf8')) as Array<{
      custom_id: string;
      response: { body: { choices: Array<{ message: { content: string } }> } };
    }>;
    const errorByLine = new Map(errors.map((e) => [e.error.line, e]));
    const validIds: string[] = [];
    cases.forEach((c, i) => {
      const where = at[i] as { line: number; offset: number };
      const label = `line ${where.line}: ${c.what}`;
      if (c.code === null) {
        validIds.push(c.customId as string);
        expect(errorByLine.has(where.line), label).toBe(false);
      } else if (c.code === 'blank') {
        expect(errorByLine.has(where.line), label).toBe(false);
      } else {
        const record = errorByLine.get(where.line);
        expect(record?.error.code, label).toBe(c.code);
        expect(record?.error.offset, label).toBe(where.offset);
        expect(record?.error.retryable, label).toBe(false);
        expect((record?.error.snippet ?? '').length, label).toBeLessThanOrEqual(80);
        expect(record?.custom_id, label).toBe(c.customId ?? `#line-${where.line}`);
      }
    });
    expect(errors).toHaveLength(cases.filter((c) => c.code !== null && c.code !== 'blank').length);
    // Snippets are escaped: no raw control or bidi character reaches a terminal.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
    for (const e of errors) expect(e.error.snippet).not.toMatch(/[\u0000-\u001f\u202e]/);
    expect(results.map((r) => r.custom_id).sort()).toEqual(validIds.sort());
    expect(sim.stats().requests - before).toBe(validIds.length);
    const seps = results.find((r) => r.custom_id === 'seps');
    expect(seps?.response.body.choices[0]?.message.content).toBe(
      simulatedChatContent({
        model: 'volley-sim-1',
        messages: [{ role: 'user', content: 'line\u2028separator and paragraph\u2029separator' }],
        max_tokens: 16,
      }).content,
    );
    // Unknown fields are accepted with a warning, shown once.
    expect(result.stderr.match(/VOLLEY_INPUT_UNKNOWN_FIELD/g)).toHaveLength(1);
    const summary = JSON.parse(result.stdout) as { succeeded: number; skipped: number };
    expect(summary).toMatchObject({ succeeded: validIds.length, skipped: errors.length });
    // Bad input is never "ready to feed back": the retry file holds failed requests only.
    expect(await readFile(dir.file('out.retry.jsonl'), 'utf8')).toBe('');
  });

  it('--strict refuses the file before sending anything', async () => {
    await using dir = await tempDir();
    const before = sim.stats().requests;
    const result = await runCli([
      'run',
      FIXTURE,
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      sim.url,
      '--strict',
      '--json',
      ...RULES,
    ]);
    expectNoCrash(result);
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout)).toMatchObject({ code: 'VOLLEY_INPUT_STRICT' });
    expect(result.stderr).toMatch(/line 3: /);
    expect(sim.stats().requests).toBe(before);
    await expect(stat(dir.file('out.jsonl'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('--dry-run reports every bad line and the token estimate, sending and writing nothing', async () => {
    const before = sim.stats().requests;
    const result = await runCli([
      'run',
      FIXTURE,
      '--dry-run',
      '--json',
      '--price-input',
      '0.15',
      '--price-output',
      '0.6',
      ...RULES,
    ]);
    expectNoCrash(result);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as {
      valid: number;
      invalid: number;
      byCode: Record<string, number>;
      promptTokens: number;
      maxCompletionTokens: number;
      costUsd: { prompt: number; upTo: number };
    };
    const cases = badInputCases();
    expect(report.valid).toBe(cases.filter((c) => c.code === null).length);
    expect(report.byCode.VOLLEY_INPUT_NOT_OBJECT).toBe(3);
    expect(report.promptTokens).toBeGreaterThan(0);
    expect(report.maxCompletionTokens).toBe(16 * (report.valid - 1) + 256); // the prompt line has no max_tokens
    expect(report.costUsd.upTo).toBeGreaterThan(report.costUsd.prompt);
    expect(result.stderr).toContain('dry run (nothing sent)');
    expect(sim.stats().requests).toBe(before);
  });
});

describe('file-level problems', () => {
  const cases: Array<[string, string, (dir: string) => Promise<string>]> = [
    ['an empty file', 'VOLLEY_INPUT_FILE_EMPTY', (d) => write(d, 'empty.jsonl', '')],
    ['blank lines only', 'VOLLEY_INPUT_FILE_EMPTY', (d) => write(d, 'blank.jsonl', '\n \n\t\n')],
    [
      'blank lines beyond the first 64 KiB',
      'VOLLEY_INPUT_FILE_EMPTY',
      (d) => write(d, 'blank-big.jsonl', '\n'.repeat(100_000)),
    ],
    [
      'UTF-16 with a BOM',
      'VOLLEY_INPUT_FILE_UTF16',
      (d) => write(d, 'u16.jsonl', Buffer.from(`\ufeff${batchLine(0)}\n`, 'utf16le')),
    ],
    [
      'UTF-16 without a BOM',
      'VOLLEY_INPUT_FILE_UTF16',
      (d) => write(d, 'u16nobom.jsonl', Buffer.from(`${batchLine(0)}\n`, 'utf16le')),
    ],
    [
      'gzip',
      'VOLLEY_INPUT_FILE_GZIP',
      (d) => write(d, 'in.jsonl.gz', gzipSync(`${batchLine(0)}\n`)),
    ],
    [
      'a zip archive',
      'VOLLEY_INPUT_FILE_COMPRESSED',
      (d) => write(d, 'in.zip', Buffer.from([0x50, 0x4b, 0x03, 0x04, 1, 2, 3, 4])),
    ],
    [
      'binary data',
      'VOLLEY_INPUT_FILE_BINARY',
      (d) => write(d, 'bin.jsonl', Buffer.from([0x7b, 0x00, 0x01, 0x02, 0x7d, 0x0a])),
    ],
    [
      'CR-only line endings',
      'VOLLEY_INPUT_FILE_CR_LINE_ENDINGS',
      (d) => write(d, 'mac.jsonl', `${batchLine(0)}\r${batchLine(1)}\r`),
    ],
    ['a missing path', 'VOLLEY_INPUT_FILE_NOT_FOUND', async (d) => `${d}/nope.jsonl`],
    [
      'a directory',
      'VOLLEY_INPUT_FILE_IS_DIRECTORY',
      async (d) => {
        await mkdir(`${d}/sub`);
        return `${d}/sub`;
      },
    ],
    [
      'a FIFO',
      'VOLLEY_INPUT_FILE_NOT_REGULAR',
      async (d) => {
        execFileSync('mkfifo', [`${d}/fifo`]);
        return `${d}/fifo`;
      },
    ],
    [
      'no valid line at all',
      'VOLLEY_INPUT_FILE_NO_VALID_LINES',
      (d) => write(d, 'results-by-mistake.jsonl', '{"id":"x","custom_id":"a","response":{}}\n[]\n'),
    ],
  ];

  it.each(cases)('%s: exit 2 with %s, nothing sent, nothing written', async (_what, code, make) => {
    await using dir = await tempDir();
    const input = await make(dir.path);
    const before = sim.stats().requests;
    const result = await runCli([
      'run',
      input,
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      sim.url,
      '--json',
    ]);
    expectNoCrash(result);
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout)).toMatchObject({ status: 'error', exitCode: 2, code });
    expect(sim.stats().requests).toBe(before);
    await expect(stat(dir.file('out.jsonl'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it.skipIf(process.getuid?.() !== 0)('an unreadable file (run as nobody)', async () => {
    await using dir = await tempDir();
    await chmod(dir.path, 0o777);
    const input = await write(dir.path, 'secret.jsonl', `${batchLine(0)}\n`);
    await chmod(input, 0o000);
    const result = await new Promise<CliResult>((resolve) => {
      const child = spawn(
        process.execPath,
        [CLI, 'run', input, '-o', dir.file('out.jsonl'), '--base-url', sim.url, '--json'],
        { uid: 65534, gid: 65534, env: { PATH: process.env.PATH ?? '' } },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    });
    expectNoCrash(result);
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout)).toMatchObject({ code: 'VOLLEY_INPUT_FILE_UNREADABLE' });
  });

  it('an output that is the input, or a symlink, is refused before anything is sent', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    await writeBatch(input, 3);
    const before = sim.stats().requests;
    const same = await runCli(['run', input, '-o', input, '--base-url', sim.url, '--json']);
    expect(same.code).toBe(2);
    expect(JSON.parse(same.stdout)).toMatchObject({ code: 'VOLLEY_ERR_OUTPUT_SAME_AS_INPUT' });
    await symlink(dir.file('elsewhere.jsonl'), dir.file('link.jsonl'));
    const link = await runCli([
      'run',
      input,
      '-o',
      dir.file('link.jsonl'),
      '--base-url',
      sim.url,
      '--json',
    ]);
    expect(link.code).toBe(2);
    expect(JSON.parse(link.stdout)).toMatchObject({ code: 'VOLLEY_ERR_OUTPUT_SYMLINK' });
    expect(sim.stats().requests).toBe(before);
    expect(await readFile(input, 'utf8')).toContain('req-2');
  });
});

describe('bad options', () => {
  it('an unusable --base-url is a usage error that leaves no files behind', async () => {
    await using dir = await tempDir();
    await writeBatch(dir.file('in.jsonl'), 3);
    const result = await runCli([
      'run',
      dir.file('in.jsonl'),
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      'ftp://example.com/v1',
      '--json',
    ]);
    expectNoCrash(result);
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout)).toMatchObject({ code: 'VOLLEY_ERR_INVALID_OPTIONS' });
    await expect(stat(dir.file('out.jsonl'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(dir.file('out.jsonl.volley-lock'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('standard input (-)', () => {
  it('is checked from its first 64 KiB (gzip refused, nothing sent)', async () => {
    await using dir = await tempDir();
    const before = sim.stats().requests;
    const cli = startCli(
      ['run', '-', '-o', dir.file('out.jsonl'), '--base-url', sim.url, '--json'],
      { stdin: gzipSync(`${batchLine(0)}\n`) },
    );
    const result = await cli.exited;
    expectNoCrash(result);
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout)).toMatchObject({ code: 'VOLLEY_INPUT_FILE_GZIP' });
    expect(sim.stats().requests).toBe(before);
  });

  it('judges lines as they arrive: bad lines get records, duplicates too, the rest results', async () => {
    await using dir = await tempDir();
    const lines = [batchLine(0), '{"broken": ', batchLine(1), batchLine(0), batchLine(2)];
    const cli = startCli(
      [
        'run',
        '-',
        '-o',
        dir.file('out.jsonl'),
        '--base-url',
        sim.url,
        '--progress',
        'none',
        '--json',
      ],
      { stdin: `${lines.join('\n')}\n` },
    );
    const result = await cli.exited;
    expectNoCrash(result);
    expect(result.code).toBe(1);
    const errors = parseJsonl(
      await readFile(dir.file('out.errors.jsonl'), 'utf8'),
    ) as unknown as ErrorLine[];
    expect(errors.map((e) => [e.error.line, e.error.code])).toEqual([
      [2, 'VOLLEY_INPUT_JSON_TRUNCATED'],
      [4, 'VOLLEY_INPUT_DUPLICATE_CUSTOM_ID'],
    ]);
    expect(parseJsonl(await readFile(dir.file('out.jsonl'), 'utf8'))).toHaveLength(3);
    // No preflight pass over a pipe: the total is only known at the end.
    expect(JSON.parse(result.stdout)).toMatchObject({ total: 5, succeeded: 3, skipped: 2 });
  });
});

async function write(dir: string, name: string, content: string | Buffer): Promise<string> {
  const path = `${dir}/${name}`;
  await writeFile(path, content);
  return path;
}
