import { link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertDistinctPaths } from '../src/jsonl/writer.js';
import { useTempDir } from './helpers/temp-files.js';

const tempDir = useTempDir();

describe('assertDistinctPaths', () => {
  it('accepts distinct outputs, existing or not', async () => {
    const dir = await tempDir();
    const input = join(dir, 'in.jsonl');
    await writeFile(input, '{}\n');
    await writeFile(join(dir, 'old.jsonl'), '');
    await expect(
      assertDistinctPaths(input, [join(dir, 'out.jsonl'), join(dir, 'old.jsonl'), '-']),
    ).resolves.toBeUndefined();
    await expect(assertDistinctPaths('-', [join(dir, 'out.jsonl')])).resolves.toBeUndefined();
  });

  it('refuses the input path itself, also spelled differently', async () => {
    const dir = await tempDir();
    const input = join(dir, 'in.jsonl');
    await writeFile(input, '{}\n');
    await expect(assertDistinctPaths(input, [input])).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_SAME_AS_INPUT',
    });
    await mkdir(join(dir, 'sub'));
    await expect(
      assertDistinctPaths(input, [join(dir, 'sub', '..', 'in.jsonl')]),
    ).rejects.toMatchObject({ code: 'VOLLEY_ERR_OUTPUT_SAME_AS_INPUT' });
    await expect(
      assertDistinctPaths(input, [relative(process.cwd(), input)]),
    ).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_SAME_AS_INPUT',
    });
  });

  it('refuses a symlink to the input and a hard link of it', async () => {
    const dir = await tempDir();
    const input = join(dir, 'in.jsonl');
    await writeFile(input, '{}\n');
    await symlink(input, join(dir, 'sym.jsonl'));
    await link(input, join(dir, 'hard.jsonl'));
    await expect(assertDistinctPaths(input, [join(dir, 'sym.jsonl')])).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_SAME_AS_INPUT',
    });
    await expect(assertDistinctPaths(input, [join(dir, 'hard.jsonl')])).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_SAME_AS_INPUT',
    });
  });

  it('refuses an input reached through a symlinked directory', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'real'));
    const input = join(dir, 'real', 'in.jsonl');
    await writeFile(input, '{}\n');
    await symlink(join(dir, 'real'), join(dir, 'alias'));
    await expect(
      assertDistinctPaths(join(dir, 'alias', 'in.jsonl'), [input]),
    ).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_SAME_AS_INPUT',
    });
  });

  it('refuses two outputs that are the same file, existing or not', async () => {
    const dir = await tempDir();
    const input = join(dir, 'in.jsonl');
    await writeFile(input, '{}\n');
    const out = join(dir, 'out.jsonl');
    await expect(
      assertDistinctPaths(input, [out, join(dir, '.', 'out.jsonl')]),
    ).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_CONFLICT',
    });
    await expect(assertDistinctPaths(input, ['-', '-'])).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_CONFLICT',
    });
  });
});
