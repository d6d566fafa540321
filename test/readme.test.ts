/**
 * The README's examples are run, not trusted: every ```ts block is written next to this file (so
 * `volley` resolves as it does for a user) and executed with tsx against the embedded simulator.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const readme = readFileSync(join(here, '..', 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1] as string);

describe('README examples', () => {
  it('has library examples', () => {
    expect(blocks.length).toBeGreaterThan(0);
  });

  it.each(blocks.map((code, i) => [i, code] as const))('block %i runs to completion', (i, code) => {
    const file = join(here, `.readme-example-${i}.ts`);
    writeFileSync(file, code);
    try {
      const result = spawnSync(process.execPath, ['--import', 'tsx', file], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '' },
        timeout: 60_000,
      });
      expect(result.stderr).not.toMatch(/Error|TypeError|VolleyError/);
      expect(result.status).toBe(0);
      expect(result.stdout.length).toBeGreaterThan(0);
    } finally {
      rmSync(file, { force: true });
    }
  });
});
