import { execFileSync } from 'node:child_process';
import { chmod, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { inspectInputFile } from '../src/jsonl/reader.js';
import { useTempDir, writeTemp } from './helpers/temp-files.js';

const tempDir = useTempDir();
const LINE = '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{}}\n';

describe('inspectInputFile', () => {
  it('accepts a plain UTF-8 JSONL file, with or without a UTF-8 BOM or CRLF', async () => {
    const dir = await tempDir();
    expect(await inspectInputFile(await writeTemp(dir, 'ok.jsonl', LINE))).toBeUndefined();
    expect(
      await inspectInputFile(await writeTemp(dir, 'bom.jsonl', `\ufeff${LINE}`)),
    ).toBeUndefined();
    expect(
      await inspectInputFile(await writeTemp(dir, 'crlf.jsonl', LINE.replace('\n', '\r\n'))),
    ).toBeUndefined();
  });

  it('reports a missing path as FILE_NOT_FOUND', async () => {
    const dir = await tempDir();
    expect(await inspectInputFile(join(dir, 'nope.jsonl'))).toMatchObject({
      code: 'VOLLEY_INPUT_FILE_NOT_FOUND',
    });
    expect(await inspectInputFile(join(dir, 'nodir', 'x.jsonl'))).toMatchObject({
      code: 'VOLLEY_INPUT_FILE_NOT_FOUND',
    });
  });

  it('reports a file without read permission as FILE_UNREADABLE', async () => {
    const path = await writeTemp(await tempDir(), 'secret.jsonl', LINE);
    await chmod(path, 0o000);
    if (process.getuid?.() !== 0) {
      expect(await inspectInputFile(path)).toMatchObject({ code: 'VOLLEY_INPUT_FILE_UNREADABLE' });
      return;
    }
    // Root reads anything: ask again from a child running as nobody.
    const reader = fileURLToPath(new URL('../src/jsonl/reader.ts', import.meta.url));
    const script = `
      const { inspectInputFile } = await import(${JSON.stringify(reader)});
      process.stdout.write(JSON.stringify(await inspectInputFile(${JSON.stringify(path)})));
    `;
    const out = execFileSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { uid: 65534, gid: 65534, encoding: 'utf8' },
    );
    expect(JSON.parse(out)).toMatchObject({ code: 'VOLLEY_INPUT_FILE_UNREADABLE' });
  });

  it('reports a directory as FILE_IS_DIRECTORY', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'sub'));
    expect(await inspectInputFile(join(dir, 'sub'))).toMatchObject({
      code: 'VOLLEY_INPUT_FILE_IS_DIRECTORY',
    });
  });

  it('refuses a FIFO without blocking on it', async () => {
    const fifo = join(await tempDir(), 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(await inspectInputFile(fifo)).toMatchObject({ code: 'VOLLEY_INPUT_FILE_NOT_REGULAR' });
  });

  it('refuses a Unix socket', async () => {
    const path = join(await tempDir(), 'sock');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      expect(await inspectInputFile(path)).toMatchObject({ code: 'VOLLEY_INPUT_FILE_NOT_REGULAR' });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('refuses a character device', async () => {
    expect(await inspectInputFile('/dev/null')).toMatchObject({
      code: 'VOLLEY_INPUT_FILE_NOT_REGULAR',
    });
  });

  it('reports an empty file and a file of blank lines as FILE_EMPTY', async () => {
    const dir = await tempDir();
    expect(await inspectInputFile(await writeTemp(dir, 'empty.jsonl', ''))).toMatchObject({
      code: 'VOLLEY_INPUT_FILE_EMPTY',
    });
    expect(
      await inspectInputFile(await writeTemp(dir, 'blank.jsonl', '\n  \r\n\t\n')),
    ).toMatchObject({
      code: 'VOLLEY_INPUT_FILE_EMPTY',
    });
  });

  it('reports UTF-16 with either BOM, and without a BOM, as FILE_UTF16', async () => {
    const dir = await tempDir();
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(LINE, 'utf16le')]);
    const be = Buffer.from(le).swap16();
    const noBom = Buffer.from(LINE.repeat(3), 'utf16le');
    for (const [name, bytes] of [
      ['le.jsonl', le],
      ['be.jsonl', be],
      ['nobom.jsonl', noBom],
      ['nobom-be.jsonl', Buffer.from(noBom).swap16()],
    ] as const) {
      expect(await inspectInputFile(await writeTemp(dir, name, bytes)), name).toMatchObject({
        code: 'VOLLEY_INPUT_FILE_UTF16',
      });
    }
  });

  it('reports gzip input as FILE_GZIP and other archives as FILE_COMPRESSED', async () => {
    const dir = await tempDir();
    expect(
      await inspectInputFile(await writeTemp(dir, 'a.jsonl.gz', gzipSync(LINE))),
    ).toMatchObject({
      code: 'VOLLEY_INPUT_FILE_GZIP',
    });
    const zstd = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0x11, 0x00]);
    expect(await inspectInputFile(await writeTemp(dir, 'a.zst', zstd))).toMatchObject({
      code: 'VOLLEY_INPUT_FILE_COMPRESSED',
    });
  });

  it('reports NUL bytes or many control bytes as FILE_BINARY', async () => {
    const dir = await tempDir();
    const withNul = Buffer.concat([
      Buffer.from(LINE),
      Buffer.from([0, 1, 2, 3]),
      Buffer.from(LINE),
    ]);
    expect(await inspectInputFile(await writeTemp(dir, 'nul.bin', withNul))).toMatchObject({
      code: 'VOLLEY_INPUT_FILE_BINARY',
    });
    const controls = Buffer.alloc(4096);
    for (let i = 0; i < controls.length; i++) controls[i] = i % 7 === 0 ? 0x1b : 0x41 + (i % 26);
    expect(await inspectInputFile(await writeTemp(dir, 'ctl.bin', controls))).toMatchObject({
      code: 'VOLLEY_INPUT_FILE_BINARY',
    });
  });

  it('does not call a file with one stray control byte binary (that is a line-level error)', async () => {
    const path = await writeTemp(
      await tempDir(),
      'one.jsonl',
      `${LINE}{"prompt":"a\u0007b"}\n${LINE}`,
    );
    expect(await inspectInputFile(path)).toBeUndefined();
  });

  it('reports bare-CR line endings as FILE_CR_LINE_ENDINGS', async () => {
    const dir = await tempDir();
    const path = await writeTemp(dir, 'cr.jsonl', LINE.replace('\n', '\r').repeat(3));
    expect(await inspectInputFile(path)).toMatchObject({
      code: 'VOLLEY_INPUT_FILE_CR_LINE_ENDINGS',
    });
    // One line ending in a single CR is just a line without LF.
    const single = await writeTemp(dir, 'cr1.jsonl', LINE.replace('\n', '\r'));
    expect(await inspectInputFile(single)).toBeUndefined();
  });

  it("accepts '-' unless stdin is a terminal", async () => {
    expect(await inspectInputFile('-', { stdin: { isTTY: false } })).toBeUndefined();
    expect(await inspectInputFile('-', { stdin: { isTTY: true } })).toMatchObject({
      code: 'VOLLEY_INPUT_FILE_STDIN_TTY',
    });
  });
});
