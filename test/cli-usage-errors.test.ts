/**
 * A mistyped flag or command: one line on stderr with the suggestion and `see … --help`, exit 2,
 * not the whole help (which scrolled the error away). `--help` shows examples, defaults, the
 * environment and the exit codes.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from './helpers.js';

describe('volley usage errors', () => {
  it('a mistyped flag prints one line with the suggestion, exit 2', async () => {
    const result = await runCli(['run', 'in.jsonl', '-o', 'out.jsonl', '--concurency', '3']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      "volley: unknown option '--concurency' (did you mean --concurrency?); see volley run --help\n",
    );
    expect(result.stdout).toBe('');
  });

  it('an unknown command prints one line, exit 2', async () => {
    const result = await runCli(['rn', 'in.jsonl']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      "volley: unknown command 'rn' (did you mean run?); see volley --help\n",
    );
  });

  it('a bad value of a nested command names that command', async () => {
    const result = await runCli(['bench', 'compare', 'a.json']);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/; see volley bench compare --help$/m);
  });

  it('volley alone still shows the help, exit 2', async () => {
    const result = await runCli([]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Usage: volley');
  });

  it.each(['run', 'embed'])(
    'volley %s --help shows examples, defaults, environment and exit codes',
    async (command) => {
      const result = await runCli([command, '--help']);
      expect(result.code).toBe(0);
      for (const section of ['Examples:', 'Defaults:', 'Environment:', 'Exit codes:']) {
        expect(result.stdout).toContain(section);
      }
      expect(result.stdout).toMatch(/OPENAI_API_KEY/);
      expect(result.stdout).toMatch(/VOLLEY_LOG_LEVEL/);
      expect(result.stdout).toMatch(/--max-retries 5/);
      expect(result.stdout).toMatch(/130\s+interrupted/);
    },
  );
});
