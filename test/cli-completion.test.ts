/**
 * `volley completion bash|zsh|fish`: the bash script, sourced in a real bash with COMP_WORDS and
 * COMP_CWORD set as bash sets them, offers the commands, the flags of the command typed and the
 * choices of a flag. zsh and fish scripts are syntax-checked by those shells when installed.
 */
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from './helpers.js';

const has = (shell: string): boolean =>
  spawnSync(shell, ['-c', 'exit 0'], { stdio: 'ignore' }).status === 0;

let bashScript = '';
beforeAll(async () => {
  const result = await runCli(['completion', 'bash']);
  expect(result.code).toBe(0);
  bashScript = result.stdout;
});

/** The candidates bash's completion would offer for `words`, the last one being completed. */
async function complete(words: string[], cwd?: string): Promise<string[]> {
  await using dir = await tempDir();
  const scriptPath = dir.file('volley.bash');
  await writeFile(scriptPath, bashScript);
  const quoted = words.map((w) => `'${w}'`).join(' ');
  const program = `source '${scriptPath}'
COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}
_volley
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const result = spawnSync('bash', ['--norc', '--noprofile', '-c', program], {
    encoding: 'utf8',
    ...(cwd === undefined ? {} : { cwd }),
  });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  return result.stdout.split('\n').filter((line) => line !== '');
}

describe('volley completion', () => {
  it('bash: the commands at the first word', async () => {
    expect(await complete(['volley', ''])).toEqual([
      'run',
      'embed',
      'sim',
      'bench',
      'cluster',
      'worker',
      'completion',
    ]);
    expect(await complete(['volley', 'em'])).toEqual(['embed']);
  });

  it('bash: the flags of the command typed', async () => {
    const flags = await complete(['volley', 'run', 'in.jsonl', '--con']);
    expect(flags).toEqual(['--concurrency']);
    const embed = await complete(['volley', 'embed', '--dim']);
    expect(embed).toEqual(['--dimensions']);
    // A flag of another command is not offered.
    expect(await complete(['volley', 'sim', '--dry'])).toEqual([]);
  });

  it('bash: the choices of a flag, and subcommands of subcommands', async () => {
    expect(await complete(['volley', 'run', '--progress', ''])).toEqual([
      'auto',
      'tty',
      'plain',
      'json',
      'none',
    ]);
    expect(await complete(['volley', 'run', '--order', 'i'])).toEqual(['input']);
    expect(await complete(['volley', 'bench', 'c'])).toEqual(['compare']);
    expect(await complete(['volley', 'completion', '--h'])).toEqual(['--help']);
  });

  it('bash: file names for the input and for path flags, nothing for a number', async () => {
    await using dir = await tempDir();
    await writeFile(dir.file('requests.jsonl'), '');
    expect(await complete(['volley', 'run', 'req'], dir.path)).toEqual(['requests.jsonl']);
    expect(await complete(['volley', 'run', 'x', '-o', 'req'], dir.path)).toEqual([
      'requests.jsonl',
    ]);
    expect(await complete(['volley', 'run', 'x', '--concurrency', ''], dir.path)).toEqual([]);
  });

  it.skipIf(!has('zsh'))(
    `zsh: the script parses (zsh -n)${has('zsh') ? '' : '; skipped: zsh is not installed here'}`,
    async () => {
      const result = await runCli(['completion', 'zsh']);
      expect(result.code).toBe(0);
      const check = spawnSync('zsh', ['-n'], { input: result.stdout, encoding: 'utf8' });
      expect(check.stderr).toBe('');
      expect(check.status).toBe(0);
    },
  );

  it.skipIf(!has('fish'))(
    `fish: the script parses (fish --no-execute)${has('fish') ? '' : '; skipped: fish is not installed here'}`,
    async () => {
      const result = await runCli(['completion', 'fish']);
      expect(result.code).toBe(0);
      const check = spawnSync('fish', ['--no-execute'], { input: result.stdout, encoding: 'utf8' });
      expect(check.stderr).toBe('');
      expect(check.status).toBe(0);
    },
  );

  it('fish: one complete line per command and flag', async () => {
    const result = await runCli(['completion', 'fish']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      "complete -c volley -n '__fish_use_subcommand' -a 'run' -d 'Send an OpenAI Batch",
    );
    expect(result.stdout).toMatch(
      /complete -c volley -n '__fish_seen_subcommand_from run' -l progress -x -a 'auto tty plain json none'/,
    );
  });

  it('an unknown shell is a usage error', async () => {
    const result = await runCli(['completion', 'powershell']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /Allowed choices are bash, zsh, fish; see volley completion --help/,
    );
  });
});
