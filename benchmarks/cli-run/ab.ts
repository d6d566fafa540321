/**
 * Paired A/B of two `volley run` builds (e.g. main and a branch) against one nginx server: runs
 * A and B alternately, `--pairs` times, and prints each one's client CPU µs per line, bytes
 * allocated per line, bytes promoted to the old generation per line and young-generation GC pause
 * (all summed from `--trace-gc-nvp`), then the median B/A ratios of the pairs. On a shared machine
 * the ratio within a pair is the figure to trust, not the absolute numbers.
 *
 *   node --import tsx cli-run/ab.ts --a /work/main --b /work/wt/x [--pairs 5] [--lines 100000]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { optionalInt } from '../shared/matrix.js';
import { startNginx } from '../shared/nginx.js';
import { SIM_CHAT_COMPLETION_JSON } from '../throughput/workload.js';
import { checkBatchOutput, writeBatchInput } from './batch-file.js';

const { values: flags } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string' },
    pairs: { type: 'string' },
    lines: { type: 'string' },
  },
});
if (flags.a === undefined || flags.b === undefined) throw new Error('--a and --b: repo dirs');
const pairs = optionalInt('pairs', flags.pairs) ?? 5;
const lines = optionalInt('lines', flags.lines) ?? 100_000;
const workDir = await mkdtemp(join(tmpdir(), 'volley-bench-cli-ab-'));
const input = join(workDir, 'in.jsonl');
const output = join(workDir, 'out.jsonl');
// Prints the process's own CPU time at exit, on stderr.
const preload = join(workDir, 'cpu-at-exit.mjs');
await writeFile(
  preload,
  [
    "import { writeSync } from 'node:fs';",
    "process.on('exit', () => { const u = process.cpuUsage(); writeSync(2, '\\nCPUUS ' + (u.user + u.system) + '\\n'); });",
    '',
  ].join('\n'),
);
await writeBatchInput(input, lines);
const server = await startNginx(SIM_CHAT_COMPLETION_JSON);

interface Sample {
  cpuUs: number;
  allocBytes: number;
  /** Survived young-generation collections twice: what the old generation must later collect. */
  promotedBytes: number;
  scavengeMs: number;
}

async function once(repo: string): Promise<Sample> {
  // A fresh output: the run's side files (state, lock) go too.
  for (const name of await readdir(workDir)) {
    if (name.startsWith('out.jsonl'))
      await rm(join(workDir, name), { recursive: true, force: true });
  }
  const child = spawn(
    process.execPath,
    [
      '--import',
      preload,
      '--trace-gc-nvp',
      join(repo, 'packages/cli/bin/volley.js'),
      'run',
      input,
      '-o',
      output,
      '--base-url',
      server.url,
      '--concurrency',
      '256',
      '--mode',
      'async',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let text = '';
  child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`${repo} exited ${String(code)}: ${text.slice(-2000)}`);
  const check = await checkBatchOutput(output, lines);
  if (check.ok !== lines) throw new Error(`${repo}: ${check.ok} good records of ${lines}`);
  const cpuUs = Number(/CPUUS (\d+)/.exec(text)?.[1]);
  let allocBytes = 0;
  let promotedBytes = 0;
  let scavengeMs = 0;
  for (const line of text.split('\n')) {
    allocBytes += Number(/\ballocated=(\d+)/.exec(line)?.[1] ?? 0);
    if (!line.includes(' gc=s ')) continue;
    promotedBytes += Number(/\bpromoted=(\d+)/.exec(line)?.[1] ?? 0);
    scavengeMs += Number(/\bpause=([\d.]+)/.exec(line)?.[1] ?? 0);
  }
  return { cpuUs, allocBytes, promotedBytes, scavengeMs };
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};
const cpuRatios: number[] = [];
const allocRatios: number[] = [];
const promotedRatios: number[] = [];
try {
  for (let pair = 0; pair < pairs; pair++) {
    // Alternate which goes first, so a load change within a pair does not favour one side.
    const [first, second] = pair % 2 === 0 ? [flags.a, flags.b] : [flags.b, flags.a];
    const one = await once(first);
    const two = await once(second);
    const [a, b] = pair % 2 === 0 ? [one, two] : [two, one];
    cpuRatios.push(b.cpuUs / a.cpuUs);
    allocRatios.push(b.allocBytes / a.allocBytes);
    promotedRatios.push(b.promotedBytes / a.promotedBytes);
    const show = (s: Sample): string =>
      `${(s.cpuUs / lines).toFixed(1)} µs/line, ${(s.allocBytes / lines / 1024).toFixed(1)} KB/line, promoted ${(s.promotedBytes / lines).toFixed(0)} B/line, scavenges ${s.scavengeMs.toFixed(0)} ms`;
    process.stdout.write(
      `pair ${pair + 1}: A ${show(a)} | B ${show(b)} | B/A CPU ${(b.cpuUs / a.cpuUs).toFixed(3)}, alloc ${(b.allocBytes / a.allocBytes).toFixed(3)}, promoted ${(b.promotedBytes / a.promotedBytes).toFixed(3)}\n`,
    );
  }
  process.stdout.write(
    `median B/A: CPU ${median(cpuRatios).toFixed(3)}, alloc ${median(allocRatios).toFixed(3)}, promoted ${median(promotedRatios).toFixed(3)}\n`,
  );
} finally {
  await server.stop();
  await rm(workDir, { recursive: true, force: true });
}
