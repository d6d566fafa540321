/**
 * `createVolley()` with no endpoint answers from the embedded simulator: right for a first try,
 * silently wrong for real work. It says so once per process on stderr (through the logger), with
 * how to point it at a real endpoint; not when the simulator was asked for.
 */
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));

/** Runs `code` as an ES module where `volley` resolves as it does for these tests. */
function run(code: string): { stdout: string; stderr: string; status: number | null } {
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    cwd: here,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '' },
    timeout: 30_000,
  });
  return { stdout: result.stdout, stderr: result.stderr, status: result.status };
}

const WARNING = /no endpoint configured: using the embedded simulator/;

describe('the warning when createVolley() silently uses the simulator', () => {
  it('is written once per process to stderr, with how to use a real endpoint', () => {
    const { stderr, status } = run(`
      import { createVolley } from 'volley';
      for (let i = 0; i < 3; i++) await (await createVolley()).close();
    `);
    expect(status).toBe(0);
    expect(stderr.match(new RegExp(WARNING.source, 'g'))).toHaveLength(1);
    expect(stderr).toContain('endpoints: [{ baseUrl');
    expect(stderr).toContain('OPENAI_BASE_URL');
    expect(stderr).toContain('"level":40');
  });

  it('is not written when the simulator was asked for, or an endpoint given', () => {
    const { stderr, status } = run(`
      import { createSimulator, createVolley } from 'volley';
      await (await createVolley({ simulator: {} })).close();
      const sim = await createSimulator();
      await (await createVolley({ endpoints: [{ baseUrl: sim.url }] })).close();
      await sim.close();
    `);
    expect(status).toBe(0);
    expect(stderr).not.toMatch(WARNING);
  });

  it('is not written with logger: false', () => {
    const { stderr, status } = run(`
      import { createVolley } from 'volley';
      await (await createVolley({ logger: false })).close();
    `);
    expect(status).toBe(0);
    expect(stderr).not.toMatch(WARNING);
  });
});
