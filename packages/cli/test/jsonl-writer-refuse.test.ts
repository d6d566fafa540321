import { execFileSync } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openJsonlWriter } from '../src/jsonl/writer.js';
import { useTempDir } from './helpers/temp-files.js';

const tempDir = useTempDir();

describe('openJsonlWriter refusals', () => {
  it('refuses to truncate an existing non-empty file without overwrite', async () => {
    const path = join(await tempDir(), 'results.jsonl');
    await writeFile(path, '{"precious":true}\n');
    await expect(openJsonlWriter(path)).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_EXISTS',
      path,
    });
    expect(await readFile(path, 'utf8')).toBe('{"precious":true}\n');
  });

  it('refuses a symlink, dangling or not, even with overwrite or append', async () => {
    const dir = await tempDir();
    const target = join(dir, 'target.jsonl');
    await writeFile(target, 'keep\n');
    const link = join(dir, 'link.jsonl');
    await symlink(target, link);
    const dangling = join(dir, 'dangling.jsonl');
    await symlink(join(dir, 'nowhere.jsonl'), dangling);
    for (const options of [{}, { overwrite: true }, { append: true }]) {
      await expect(openJsonlWriter(link, options)).rejects.toMatchObject({
        code: 'VOLLEY_ERR_OUTPUT_SYMLINK',
      });
      await expect(openJsonlWriter(dangling, options)).rejects.toMatchObject({
        code: 'VOLLEY_ERR_OUTPUT_SYMLINK',
      });
    }
    expect(await readFile(target, 'utf8')).toBe('keep\n');
  });

  it('refuses a directory and a FIFO', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'sub'));
    await expect(openJsonlWriter(join(dir, 'sub'))).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_NOT_FILE',
    });
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    await expect(openJsonlWriter(fifo)).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_NOT_FILE',
    });
  });

  it('reports a missing directory as VOLLEY_ERR_OUTPUT_OPEN with the OS code', async () => {
    const path = join(await tempDir(), 'no', 'such', 'dir.jsonl');
    await expect(openJsonlWriter(path)).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_OPEN',
      osCode: 'ENOENT',
    });
  });

  it('refuses overwrite together with append', async () => {
    const path = join(await tempDir(), 'x.jsonl');
    await expect(openJsonlWriter(path, { overwrite: true, append: true })).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_OPTIONS',
    });
  });
});
