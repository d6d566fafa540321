/**
 * A client starved of CPU: while the measured run goes on, the test takes the CPU away from
 * `volley bench` for 25 ms of every 50 (SIGSTOP, then SIGCONT), as a scheduler does to a process
 * that other work crowds out. Busy loops pinned beside it would not do it reliably: the
 * scheduler favours a process that mostly sleeps, and the bench needs only a few percent of a
 * CPU at this rate, so whether it is late depends on the machine. The client-health check must
 * say that the client, not the server, limited the run, and why (its event loop, not a
 * concurrency cap). The other starved case, a tiny concurrency cap under a high rate, is in
 * coordinated-omission.test.ts.
 *
 * The starving starts once the measured run has begun (the first progress line) and lasts 3 s:
 * started earlier it would slow the CLI's start-up instead.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { createSimulator } from '@volley/sim';
import { describe, expect, it } from 'vitest';
import { CLI } from '../helpers.js';

const PERIOD_MS = 50;
const STOPPED_MS = 25;
const STARVE_FOR_MS = 3_000;

/**
 * Stops and resumes `pid` every PERIOD_MS for `forMs`; resolves once it runs freely again, or
 * once the process is gone.
 */
async function starve(pid: number, forMs: number): Promise<void> {
  const signal = (name: NodeJS.Signals): boolean => {
    try {
      return process.kill(pid, name);
    } catch {
      return false; // exited meanwhile
    }
  };
  const end = Date.now() + forMs;
  while (Date.now() < end && signal('SIGSTOP')) {
    await new Promise((resolve) => setTimeout(resolve, STOPPED_MS));
    if (!signal('SIGCONT')) return;
    await new Promise((resolve) => setTimeout(resolve, PERIOD_MS - STOPPED_MS));
  }
}

describe('volley bench with a CPU-starved client', () => {
  it('client health flags the run and blames the client’s event loop', async () => {
    const sim = await createSimulator({ latency: { headersMs: 5 } });
    const bench = spawn(
      process.execPath,
      [
        CLI,
        'bench',
        '--base-url',
        sim.url,
        '--model',
        'volley-sim-1',
        '--random-input-len',
        '16',
        '--random-output-len',
        '4',
        '--no-streaming',
        '--request-rate',
        '2000',
        '--arrival',
        'constant',
        '--num-prompts',
        '8000',
        '--progress',
        'json',
        '--json',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let starving: Promise<void> | undefined;
    try {
      let stdout = '';
      let stderr = '';
      bench.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      createInterface({ input: bench.stderr }).on('line', (line) => {
        stderr += `${line}\n`;
        if (starving === undefined && line.includes('"type":"progress"')) {
          starving = starve(bench.pid as number, STARVE_FOR_MS);
        }
      });
      const [code] = (await once(bench, 'close')) as [number | null];
      expect(code, stderr).toBe(0);
      expect(starving, 'the run printed no progress line').toBeDefined();
      const r = JSON.parse(stdout) as {
        completed: number;
        client_health: {
          client_limited: boolean;
          reasons: string[];
          schedule_lag_p99_ms: number;
          late_fraction: number;
        };
      };
      expect(r.completed).toBe(8000);
      const health = r.client_health;
      expect(health.client_limited).toBe(true);
      expect(health.late_fraction).toBeGreaterThan(0.01);
      expect(health.schedule_lag_p99_ms).toBeGreaterThan(10);
      const reasons = health.reasons.join(' ');
      expect(reasons).toMatch(/event loop could not keep up/);
      expect(reasons).not.toMatch(/the client queued/);
    } finally {
      if (bench.exitCode === null && bench.signalCode === null) {
        bench.kill('SIGCONT');
        bench.kill('SIGKILL');
      }
      await starving;
      await sim.close();
    }
  }, 60_000);
});
