/**
 * `volley bench` and `volley bench compare` as a user runs them: the built CLI in a child
 * process against a simulator on port 0, with real files.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { createSimulator } from '@volley/sim';
import { describe, expect, it } from 'vitest';
import { batchLine, runCli, tempDir } from '../helpers.js';

const SMALL = [
  '--num-prompts',
  '12',
  '--random-input-len',
  '16',
  '--random-output-len',
  '8',
  '--progress',
  'none',
];

describe('volley bench (CLI)', () => {
  it('with no --base-url benchmarks the embedded simulator, says so, and writes JSON, CSV and HTML', async () => {
    await using dir = await tempDir();
    const result = await runCli([
      'bench',
      ...SMALL,
      '--request-rate',
      '30',
      '--goodput',
      'ttft:2000',
      'e2el:5000',
      '--metric-percentiles',
      '50,90,99',
      '--result-filename',
      dir.file('r.json'),
      '--csv',
      dir.file('r.csv'),
      '--html',
      dir.file('r.html'),
      '--json',
    ]);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/no --base-url, so this benchmarks the embedded simulator/);
    const doc = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(doc.schema).toBe('volley-bench-result');
    expect(doc.schema_version).toBe(1);
    expect(doc.kind).toBe('run');
    expect(doc.embedded_simulator).toBe(true);
    expect(doc.completed).toBe(12);
    // vLLM's field names for what means the same.
    for (const field of [
      'request_throughput',
      'output_throughput',
      'total_token_throughput',
      'median_ttft_ms',
      'p90_tpot_ms',
      'p99_itl_ms',
      'mean_e2el_ms',
      'request_goodput',
    ]) {
      expect(typeof doc[field], field).toBe('number');
    }
    const saved = JSON.parse(await readFile(dir.file('r.json'), 'utf8')) as Record<string, unknown>;
    expect(saved.completed).toBe(12);
    const csv = (await readFile(dir.file('r.csv'), 'utf8')).trim().split('\n');
    expect(csv.length).toBe(2);
    expect(csv[0]).toMatch(/^label,load_model,request_rate/);
    expect(await readFile(dir.file('r.html'), 'utf8')).toMatch(/<canvas|uPlot/);
  }, 90_000);

  it('reads OPENAI_API_KEY and never writes it anywhere', async () => {
    await using dir = await tempDir();
    const key = 'sk-bench-secret-0123456789';
    const sim = await createSimulator({ apiKey: key });
    try {
      const ok = await runCli(
        [
          'bench',
          '--base-url',
          sim.url,
          ...SMALL,
          '--save-detailed',
          '--result-filename',
          dir.file('ok.json'),
          '--json',
        ],
        { OPENAI_API_KEY: key },
      );
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.stdout).completed).toBe(12);
      // With a wrong key even /v1/models is refused, so the model is given.
      const wrong = await runCli(
        ['bench', '--base-url', sim.url, '--model', 'volley-sim-1', ...SMALL, '--json'],
        { OPENAI_API_KEY: 'sk-wrong-key-98765' },
      );
      const doc = JSON.parse(wrong.stdout) as {
        failed: number;
        errors: { by_class: Record<string, number> };
      };
      expect(doc.failed).toBe(12);
      expect(doc.errors.by_class.http_401).toBe(12);
      for (const text of [
        ok.stdout,
        ok.stderr,
        wrong.stdout,
        wrong.stderr,
        await readFile(dir.file('ok.json'), 'utf8'),
      ]) {
        expect(text).not.toContain(key);
        expect(text).not.toContain('sk-wrong-key-98765');
      }
    } finally {
      await sim.close();
    }
  }, 90_000);

  it("compare shows differences and tests them with Welch's t when runs were repeated", async () => {
    await using dir = await tempDir();
    const fast = await createSimulator({ latency: { headersMs: 20, tokensPerSecond: 200 } });
    const slow = await createSimulator({ latency: { headersMs: 120, tokensPerSecond: 200 } });
    try {
      for (const [sim, name] of [
        [fast, 'a.json'],
        [slow, 'b.json'],
      ] as const) {
        const r = await runCli([
          'bench',
          '--base-url',
          sim.url,
          ...SMALL,
          '--max-concurrency',
          '2',
          '--repetitions',
          '3',
          '--result-filename',
          dir.file(name),
        ]);
        expect(r.code).toBe(0);
      }
      const text = await runCli(['bench', 'compare', dir.file('a.json'), dir.file('b.json')]);
      expect(text.code).toBe(0);
      expect(text.stdout).toMatch(/Welch's t-test/);
      const json = await runCli([
        'bench',
        'compare',
        dir.file('a.json'),
        dir.file('b.json'),
        '--json',
      ]);
      const cmp = JSON.parse(json.stdout) as {
        metrics: Array<{
          metric: string;
          significant: boolean | null;
          direction: string;
          repetitions: { a: number; b: number };
        }>;
      };
      const ttft = cmp.metrics.find((m) => m.metric === 'median_ttft_ms');
      expect(ttft?.repetitions).toEqual({ a: 3, b: 3 });
      expect(ttft?.significant).toBe(true);
      expect(ttft?.direction).toBe('worse');
    } finally {
      await fast.close();
      await slow.close();
    }
  }, 120_000);

  it('sends a Batch file given as the dataset, and names a bad line', async () => {
    await using dir = await tempDir();
    const sim = await createSimulator();
    try {
      const good = [0, 1, 2, 3].map((i) => batchLine(i)).join('\n');
      await writeFile(dir.file('good.jsonl'), `${good}\n`);
      const r = await runCli([
        'bench',
        '--base-url',
        sim.url,
        '--dataset-name',
        'batch',
        '--dataset-path',
        dir.file('good.jsonl'),
        '--num-prompts',
        '8',
        '--progress',
        'none',
        '--json',
      ]);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).completed).toBe(8);
      await writeFile(dir.file('bad.jsonl'), `${batchLine(0)}\n{"custom_id": 3}\n`);
      const bad = await runCli([
        'bench',
        '--base-url',
        sim.url,
        '--dataset-name',
        'batch',
        '--dataset-path',
        dir.file('bad.jsonl'),
        '--progress',
        'none',
      ]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/line 2/);
    } finally {
      await sim.close();
    }
  }, 60_000);

  it('refuses bad flags with exit code 2 before sending anything', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--goodput', 'latency:5'], /KEY:VALUE/],
      [['--dataset-name', 'custom'], /needs --dataset-path/],
      [['--slo-search', 'rate'], /needs SLOs/],
      [['--sweep-rate', '1,2', '--sweep-concurrency', '1,2'], /choose one/],
      [['--no-streaming', '--goodput', 'ttft:100'], /need streaming/],
      [['--request-rate', '-3'], /positive number/],
      [['--base-url', 'http://192.0.2.1:8000/v1'], /would be sent in clear/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(['bench', ...args, '--progress', 'none'], {
        OPENAI_API_KEY: 'sk-test-clear',
      });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
  }, 60_000);
});
