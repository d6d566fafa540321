/**
 * The command line that continues an interrupted or stopped run: the one the user typed, with
 * `--resume` (and without `--overwrite`, which would start over). Printed at the end of the
 * summary, so nobody has to know the flag exists (uv and pnpm print such hints).
 */

/** A word as a POSIX shell reads it back: bare when safe, else single-quoted. */
export function shellWord(word: string): string {
  if (word !== '' && /^[\w@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * `volley` and `args` (the arguments after the program, `process.argv.slice(2)`) made into the
 * command that resumes the run.
 *
 * @example
 * resumeCommandLine(['run', 'in.jsonl', '-o', 'out.jsonl', '--overwrite'])
 * // 'volley run in.jsonl -o out.jsonl --resume'
 */
export function resumeCommandLine(args: readonly string[]): string {
  const kept = args.filter((arg) => arg !== '--overwrite');
  const resuming = kept.some((arg) => arg === '--resume' || arg === '--force-resume');
  return ['volley', ...kept, ...(resuming ? [] : ['--resume'])].map(shellWord).join(' ');
}

/** Whether a run that ended so should print the resume hint: lines were left pending. */
export function shouldHintResume(summary: { pending?: number | undefined }): boolean {
  return (summary.pending ?? 0) > 0;
}
