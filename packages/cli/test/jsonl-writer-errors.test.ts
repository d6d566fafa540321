import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openJsonlWriter } from '../src/jsonl/writer.js';

const hasDevFull = existsSync('/dev/full');

describe('openJsonlWriter write errors', () => {
  it.skipIf(!hasDevFull)(
    'rejects a write that fills the buffer on /dev/full with ENOSPC',
    async () => {
      const out = await openJsonlWriter('/dev/full');
      // Larger than the stream's buffer: write waits for drain, and gets the error instead.
      await expect(out.write('x'.repeat(64 * 1024))).rejects.toMatchObject({
        code: 'VOLLEY_ERR_OUTPUT_WRITE',
        osCode: 'ENOSPC',
        path: '/dev/full',
      });
      await expect(out.write('{}')).rejects.toMatchObject({ code: 'VOLLEY_ERR_OUTPUT_WRITE' });
      await expect(out.close()).rejects.toMatchObject({
        code: 'VOLLEY_ERR_OUTPUT_WRITE',
        osCode: 'ENOSPC',
      });
    },
  );

  it.skipIf(!hasDevFull)(
    'surfaces a small buffered write failure on close at the latest',
    async () => {
      const out = await openJsonlWriter('/dev/full');
      await out.write('{"a":1}').catch(() => undefined);
      await expect(out.close()).rejects.toMatchObject({
        code: 'VOLLEY_ERR_OUTPUT_WRITE',
        osCode: 'ENOSPC',
      });
    },
  );

  it('surfaces an injected stdout EPIPE as VOLLEY_ERR_OUTPUT_WRITE', async () => {
    const stdout = new Writable({
      highWaterMark: 16,
      write(_chunk, _encoding, callback) {
        callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const out = await openJsonlWriter('-', { stdout });
    await expect(out.write('x'.repeat(100))).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_WRITE',
      osCode: 'EPIPE',
      path: '-',
    });
    await expect(out.close()).rejects.toMatchObject({ osCode: 'EPIPE' });
  });

  it('surfaces EPIPE when the reader of the real stdout goes away', async () => {
    const writer = fileURLToPath(new URL('../src/jsonl/writer.ts', import.meta.url));
    const script = `
      const { openJsonlWriter } = await import(${JSON.stringify(writer)});
      const out = await openJsonlWriter('-');
      let error;
      for (let i = 0; i < 100000 && error === undefined; i++) {
        await out.write(JSON.stringify({ i, pad: 'x'.repeat(1000) })).catch((e) => { error = e; });
      }
      await out.close().catch((e) => { error ??= e; });
      process.stderr.write(JSON.stringify({ code: error?.code, osCode: error?.osCode }));
    `;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout.once('data', () => child.stdout.destroy());
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
    expect(JSON.parse(stderr)).toEqual({ code: 'VOLLEY_ERR_OUTPUT_WRITE', osCode: 'EPIPE' });
  });
});
