/**
 * The live line in a real pseudo-terminal (`script` from util-linux) sized 80 and 160 columns,
 * drawn by a real `volley run` against a simulator with latency: a bar, elapsed<remaining, the
 * rate, and no frame wider than the terminal; at 160 columns more counters.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { Simulator } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, tempDir, writeBatch } from './helpers.js';

const hasScript =
  process.platform === 'linux' &&
  spawnSync('script', ['-qfec', 'true', '/dev/null'], { stdio: 'ignore' }).status === 0;

let sim: Simulator;
beforeAll(async () => {
  // 400 lines at concurrency 32, 150 ms each: about 2 s, a dozen frames at the 200 ms default.
  sim = await createSimulator({ latency: { headersMs: 150 } });
});
afterAll(() => sim.close());

/** Runs `volley run` in a pty of `columns` x 24; resolves with the raw bytes it displayed. */
function runInPty(
  columns: number,
  args: string[],
): Promise<{ code: number | null; screen: string }> {
  const command = `stty cols ${columns} rows 24; "${process.execPath}" "${CLI}" ${args.map((a) => `"${a}"`).join(' ')}`;
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', command, '/dev/null'], {
      env: { PATH: process.env.PATH ?? '', TERM: 'xterm-256color' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let screen = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (screen += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, screen }));
  });
}

/**
 * The frames of the live line as the terminal shows them: every escape sequence (erase line,
 * cursor up, colour) ends a piece of text, so what is left between them is what one row shows.
 */
function frames(screen: string): string[] {
  return (
    screen
      // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences
      .split(/\u001b\[[0-9;?]*[A-Za-z]|\r|\n/)
      .filter((piece) => piece.startsWith('volley ') && / \d+\/400 /.test(piece))
  );
}

describe.skipIf(!hasScript)('the live line in a real terminal', () => {
  it.each([80, 160])(
    'at %i columns: bar, elapsed<remaining and rate, no frame wider than the terminal',
    async (columns) => {
      await using dir = await tempDir();
      await writeBatch(dir.file('in.jsonl'), 400);
      const { code, screen } = await runInPty(columns, [
        'run',
        dir.file('in.jsonl'),
        '-o',
        dir.file('out.jsonl'),
        '--base-url',
        sim.url,
        '--concurrency',
        '32',
      ]);
      expect(code).toBe(0);
      // With colour on, the label is bold: the frames are read with the codes taken out.
      // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences
      const shown = frames(screen.replace(/\u001b\[(1|22|2|31|32|33|39)m/g, ''));
      expect(shown.length).toBeGreaterThanOrEqual(3);
      for (const frame of shown) {
        expect([...frame].length, frame).toBeLessThan(columns);
        // The bar, done/total, elapsed<remaining and the rate are in every frame.
        expect(frame).toMatch(
          /^volley \d+\.\d% \|[█▏▎▍▌▋▊▉ ]+\| \d+\/400 \[\d\d:\d\d<(\d\d:\d\d|\?), \S+ req\/s\]/,
        );
      }
      // Once the rate is known, a remaining time in digits.
      expect(shown.some((f) => /<\d\d:\d\d, \d[\d,.]* req\/s\]/.test(f))).toBe(true);
      expect(shown.some((f) => f.includes('errors 0'))).toBe(true);
      if (columns >= 160) {
        expect(shown.some((f) => /in flight \d+/.test(f))).toBe(true);
        expect(shown.some((f) => /retries \d+/.test(f))).toBe(true);
        expect(shown.some((f) => /tok\/s in \S+ out \S+/.test(f))).toBe(true);
      } else {
        // The less useful counters are the ones left out at 80 columns.
        expect(shown.some((f) => f.includes('tok/s'))).toBe(false);
      }
      expect(screen).toContain('volley summary');
    },
    30_000,
  );
});
