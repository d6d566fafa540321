import { link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { NamedOutput } from '../src/jsonl/writer.js';
import { assertDistinctPaths } from '../src/jsonl/writer.js';
import { useTempDir } from './helpers/temp-files.js';

const tempDir = useTempDir();

/** Outputs named by numbered flags, for the messages. */
function named(...paths: string[]): NamedOutput[] {
  return paths.map((path, i) => ({ path, flag: `--out-${i + 1}` }));
}

describe('assertDistinctPaths', () => {
  it('accepts distinct outputs, existing or not', async () => {
    const dir = await tempDir();
    const input = join(dir, 'in.jsonl');
    await writeFile(input, '{}\n');
    await writeFile(join(dir, 'old.jsonl'), '');
    await expect(
      assertDistinctPaths(input, named(join(dir, 'out.jsonl'), join(dir, 'old.jsonl'), '-')),
    ).resolves.toBeUndefined();
    await expect(assertDistinctPaths('-', named(join(dir, 'out.jsonl')))).resolves.toBeUndefined();
  });

  it('refuses the input path itself, also spelled differently', async () => {
    const dir = await tempDir();
    const input = join(dir, 'in.jsonl');
    await writeFile(input, '{}\n');
    await expect(assertDistinctPaths(input, named(input))).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_SAME_AS_INPUT',
    });
    await mkdir(join(dir, 'sub'));
    await expect(
      assertDistinctPaths(input, named(join(dir, 'sub', '..', 'in.jsonl'))),
    ).rejects.toMatchObject({ code: 'VOLLEY_ERR_OUTPUT_SAME_AS_INPUT' });
    await expect(
      assertDistinctPaths(input, named(relative(process.cwd(), input))),
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
    await expect(assertDistinctPaths(input, named(join(dir, 'sym.jsonl')))).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_SAME_AS_INPUT',
    });
    await expect(assertDistinctPaths(input, named(join(dir, 'hard.jsonl')))).rejects.toMatchObject({
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
      assertDistinctPaths(join(dir, 'alias', 'in.jsonl'), named(input)),
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
      assertDistinctPaths(input, named(out, join(dir, '.', 'out.jsonl'))),
    ).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_CONFLICT',
    });
    await expect(assertDistinctPaths(input, named('-', '-'))).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_CONFLICT',
    });
  });

  it('names both flags, also for a path one of them implies', async () => {
    const dir = await tempDir();
    const input = join(dir, 'in.jsonl');
    await writeFile(input, '{}\n');
    const out = join(dir, 'out.jsonl');
    await expect(
      assertDistinctPaths(input, [
        { path: out, flag: '-o/--output' },
        { path: `${out}.volley-spill`, flag: '-o/--output', derived: 'its spill file' },
        { path: join(dir, '.', 'out.jsonl.volley-spill'), flag: '-e/--errors' },
      ]),
    ).rejects.toMatchObject({
      code: 'VOLLEY_ERR_OUTPUT_CONFLICT',
      message: expect.stringMatching(
        /^-e\/--errors names the same file as -o\/--output \(its spill file ".*"\): /,
      ),
    });
  });

  it('refuses an output path that is a symbolic link, dangling or not', async () => {
    const dir = await tempDir();
    const input = join(dir, 'in.jsonl');
    await writeFile(input, '{}\n');
    await writeFile(join(dir, 'real.jsonl'), '');
    await symlink(join(dir, 'real.jsonl'), join(dir, 'link.jsonl'));
    await symlink(join(dir, 'nowhere.jsonl'), join(dir, 'dangling.jsonl'));
    for (const path of [join(dir, 'link.jsonl'), join(dir, 'dangling.jsonl')]) {
      await expect(assertDistinctPaths(input, named(path))).rejects.toMatchObject({
        code: 'VOLLEY_ERR_OUTPUT_SYMLINK',
      });
    }
    // A directory reached through a link is not refused: only the file's own name is checked.
    await symlink(dir, join(dir, 'alias'));
    await expect(
      assertDistinctPaths(input, named(join(dir, 'alias', 'out.jsonl'))),
    ).resolves.toBeUndefined();
  });
});
