/**
 * The four batch clients of the CLI benchmark and the command line of each, for run.ts and
 * profile.ts: `volley run` in two modes, and the two hand-written clients in contenders/, compiled
 * to plain JS first so they start like the built CLI does (under tsx their start-up would pay for
 * a TypeScript loader the CLI does not).
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const HERE = dirname(fileURLToPath(import.meta.url));
const BENCH_DIR = dirname(HERE);
export const REPO_DIR = dirname(BENCH_DIR);
export const CLI_BIN = join(REPO_DIR, 'packages/cli/bin/volley.js');
/** Under benchmarks/node_modules, so the compiled clients resolve undici, openai and p-limit. */
const BUILD_DIR = join(BENCH_DIR, 'node_modules', '.cache', 'cli-run');

export const CONTENDERS = ['lean-undici', 'volley-async', 'volley-threads', 'openai-sdk'] as const;

export function buildClients(): void {
  mkdirSync(BUILD_DIR, { recursive: true });
  const sources = join(HERE, 'contenders');
  for (const file of readdirSync(sources).filter((name) => name.endsWith('.ts'))) {
    const { outputText } = ts.transpileModule(readFileSync(join(sources, file), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      fileName: file,
    });
    writeFileSync(join(BUILD_DIR, `${basename(file, '.ts')}.mjs`), outputText);
  }
}

export interface ClientRun {
  input: string;
  output: string;
  url: string;
  concurrency: number;
}

/** The node arguments (after `node` and its own flags) that run `contender` once. */
export function clientArgs(contender: string, run: ClientRun): string[] {
  const mode = /^volley-(async|threads)$/.exec(contender)?.[1];
  if (mode !== undefined) {
    return [
      CLI_BIN,
      'run',
      run.input,
      '-o',
      run.output,
      '--base-url',
      run.url,
      '--concurrency',
      String(run.concurrency),
      '--mode',
      mode,
    ];
  }
  if (!(CONTENDERS as readonly string[]).includes(contender))
    throw new Error(`unknown contender ${contender}; known: ${CONTENDERS.join(', ')}`);
  return [
    join(BUILD_DIR, `${contender}.mjs`),
    run.input,
    run.output,
    run.url,
    String(run.concurrency),
  ];
}
