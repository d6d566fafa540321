import { spawn } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readAll } from './helpers/temp-files.js';

describe("readJsonlLines('-')", () => {
  it('reads from the injected stdin stream', async () => {
    const stdin = new PassThrough();
    stdin.end('{"a":1}\r\n\n{"b":2}');
    const lines = await readAll('-', { stdin });
    expect(lines).toEqual([
      { lineNo: 1, offset: 0, bytes: 8, text: '{"a":1}' },
      { lineNo: 3, offset: 10, bytes: 7, text: '{"b":2}' },
    ]);
  });

  it('reads the real process.stdin of a child process', async () => {
    const reader = fileURLToPath(new URL('../src/jsonl/reader.ts', import.meta.url));
    const script = `
      const { readJsonlLines } = await import(${JSON.stringify(reader)});
      const out = [];
      for await (const line of readJsonlLines('-')) out.push(line);
      process.stdout.write(JSON.stringify(out));
    `;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stdin.end('{"x":1}\n{"y":"\u2028"}\n');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual([
      { lineNo: 1, offset: 0, bytes: 7, text: '{"x":1}' },
      { lineNo: 2, offset: 8, bytes: 11, text: '{"y":"\u2028"}' },
    ]);
  });
});
