/**
 * Does `volley run` keep resident memory flat over a million lines, in both order modes?
 *
 *   node --import tsx scripts/memory-soak.ts [--lines 1000000] [--order completion,input]
 *
 * The simulator runs in this process (no latency, a small request log); the CLI is a child
 * process (build first). RSS and its high-water mark are sampled from /proc/<pid>/status every
 * 200 ms, with progress taken from the simulator's request count. Reports RSS at 25%, 50%, 75%
 * and 100% of progress, the growth from 25% to 100% (the target is under 10%), and peak RSS.
 */

import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createSimulator } from '../packages/sim/dist/index.js';
import { batchLine, CLI } from '../test/helpers.js';

const { values } = parseArgs({
  options: {
    lines: { type: 'string', default: '1000000' },
    order: { type: 'string', default: 'completion,input' },
    concurrency: { type: 'string', default: '64' },
  },
});
const lines = Number(values.lines);

async function writeInput(path: string): Promise<void> {
  const out = createWriteStream(path);
  for (let i = 0; i < lines; i++) {
    if (!out.write(`${batchLine(i)}\n`)) {
      await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
  }
  await new Promise<void>((resolve, reject) =>
    out.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
}

async function memory(pid: number): Promise<{ rssKb: number; hwmKb: number } | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string): number =>
      Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

const sim = await createSimulator({ logCapacity: 1000, logBodies: false });
const dir = await mkdtemp(join(tmpdir(), 'volley-soak-'));
const reports: unknown[] = [];
try {
  const input = join(dir, 'in.jsonl');
  await writeInput(input);
  for (const order of values.order.split(',')) {
    const output = join(dir, `out-${order}.jsonl`);
    const before = sim.stats().requests;
    const started = performance.now();
    const child = spawn(
      process.execPath,
      [
        CLI,
        'run',
        input,
        '-o',
        output,
        '--base-url',
        sim.url,
        '--progress',
        'none',
        '--order',
        order,
        '--concurrency',
        values.concurrency,
        '--json',
      ],
      { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    const exited = new Promise<number | null>((resolve) =>
      child.on('close', (code) => resolve(code)),
    );
    const samples: Array<{ progress: number; rssKb: number; hwmKb: number; ms: number }> = [];
    let running = true;
    void exited.then(() => {
      running = false;
    });
    while (running) {
      const mem = await memory(child.pid ?? -1);
      if (mem !== undefined) {
        samples.push({
          progress: (sim.stats().requests - before) / lines,
          ...mem,
          ms: Math.round(performance.now() - started),
        });
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const code = await exited;
    const at = (p: number): number => {
      const sample = samples.find((s) => s.progress >= p) ?? samples[samples.length - 1];
      return sample?.rssKb ?? 0;
    };
    // "100%": the last sample while requests were still being answered (after that the process
    // is exiting and its figures are no longer about the run).
    const last =
      [...samples].reverse().find((s) => s.progress >= 0.99) ?? samples[samples.length - 1];
    const rss25 = at(0.25);
    const rss100 = last?.rssKb ?? 0;
    const report = {
      order,
      lines,
      exitCode: code,
      wallMs: Math.round(performance.now() - started),
      summary: stdout === '' ? null : (JSON.parse(stdout) as { succeeded: number }).succeeded,
      rssMb: {
        at25: +(rss25 / 1024).toFixed(1),
        at50: +(at(0.5) / 1024).toFixed(1),
        at75: +(at(0.75) / 1024).toFixed(1),
        at100: +(rss100 / 1024).toFixed(1),
        peak: +(Math.max(...samples.map((s) => s.hwmKb)) / 1024).toFixed(1),
      },
      growth25to100Percent: +(((rss100 - rss25) / rss25) * 100).toFixed(1),
      samples: samples.length,
    };
    process.stderr.write(`${JSON.stringify(report)}\n`);
    reports.push(report);
    await rm(output, { force: true });
  }
  process.stdout.write(`${JSON.stringify({ node: process.version, reports }, null, 2)}\n`);
} finally {
  await sim.close();
  await rm(dir, { recursive: true, force: true });
}
