/**
 * `volley run --samples N --select all|vote|judge` end to end: the real CLI in a child process
 * against a simulator in this process. The simulator answers identical requests identically, so
 * its `script` hands out each line's answers in arrival order: a line's prompt lists them
 * (`vote:early:yes|Yes.|YES|LONG|LONG` gives the first sample to arrive "yes", and so on).
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { SimRequestLogEntry, Simulator } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { normaliseAnswer } from 'volley';
import { waitFor } from './cli-process.js';
import { parseJsonl, runCli, tempDir } from './helpers.js';

interface Choice {
  index: number;
  message?: { content: string };
  text?: string;
}
type Usage = { prompt_tokens: number; completion_tokens: number; total_tokens: number };
interface ResultRecord {
  id: string;
  custom_id: string;
  response: {
    status_code: number;
    request_id: string;
    body: { choices: Choice[]; usage: Usage };
  };
  error: null;
  volley: {
    samples: number;
    select: string;
    failed: number;
    errors?: Array<{ sample: number; code: string }>;
    usage: Usage;
    selected?: number;
    winner?: string | null;
    decided?: boolean;
    votes?: Record<string, number>;
    cancelled?: number;
    model?: string;
    verdict?: { method: string; parsed?: boolean; reason?: string; raw?: string };
  };
}
interface ErrorRecord {
  custom_id: string;
  response: unknown;
  error: { code: string; message: string; status?: number; retryable: boolean; line: number };
}

/** A long answer: at the simulator's 400 tokens/s it takes a second to generate. */
const LONG = 'maybe '.repeat(400).trim();

/** Per prompt, how many of its requests the script has answered. */
const arrivals = new Map<string, number>();
/** Per prompt, how many of its requests `faultFor` has seen. */
const seen = new Map<string, number>();

function next(counts: Map<string, number>, prompt: string): number {
  const n = counts.get(prompt) ?? 0;
  counts.set(prompt, n + 1);
  return n;
}

// biome-ignore lint/suspicious/noExplicitAny: the script reads the bodies this file sends.
function promptOf(body: any): string {
  return String(body.messages?.at(-1)?.content ?? body.prompt ?? '');
}

// biome-ignore lint/suspicious/noExplicitAny: the script reads the bodies this file sends.
function isJudge(body: any): boolean {
  return (
    body.messages?.[0]?.role === 'system' ||
    String(body.prompt ?? '').includes('--- Response 1 ---')
  );
}

/**
 * The judge's reply: the number of the response that the line's query names with `pick=`
 * (`judge:pick=beta:alpha|beta|gamma`), or nonsense for a `nonsense` query.
 */
function judgeReply(question: string): string {
  const query = /Query:\n(.*?)\n\n--- Response 1 ---/s.exec(question)?.[1] ?? '';
  if (query.includes('nonsense')) return 'banana';
  const wanted = /pick=(\w+)/.exec(query)?.[1];
  for (const match of question.matchAll(/--- Response (\d+) ---\n([^\n]*)/g)) {
    if (match[2] === wanted) return `I choose response ${match[1]}.`;
  }
  return 'banana';
}

// biome-ignore lint/suspicious/noExplicitAny: the script reads the bodies this file sends.
function answer(body: any): string | undefined {
  if (isJudge(body)) return judgeReply(promptOf(body));
  const prompt = promptOf(body);
  const n = next(arrivals, prompt);
  if (prompt.startsWith('all:')) return `sample ${n} of ${prompt}`;
  const list = prompt.split(':').at(-1)?.split('|') ?? [];
  const reply = list[Math.min(n, list.length - 1)];
  return reply === 'LONG' ? `${LONG} ${n}` : reply;
}

let sim: Simulator;

beforeAll(async () => {
  sim = await createSimulator({
    // Every sample of a line reaches the server before any answers: a vote cannot settle
    // before all its samples have arrived, so the log shows which ones it aborted.
    latency: { headersMs: 30, tokensPerSecond: 400 },
    script: ({ body }) => answer(body),
    faultFor: ({ body }) => {
      if (isJudge(body)) return undefined;
      const prompt = promptOf(body);
      if (prompt.includes('poison')) return 'status-400-context-length';
      // `partial` lines: the first sample to arrive fails (and gets no scripted answer).
      if (prompt.includes('partial') && next(seen, prompt) === 0) {
        return 'status-400-context-length';
      }
      return undefined;
    },
  });
});
afterAll(() => sim.close());
beforeEach(() => {
  arrivals.clear();
  seen.clear();
});

function chatLine(id: string, prompt: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    custom_id: id,
    method: 'POST',
    url: '/v1/chat/completions',
    body: {
      model: 'volley-sim-1',
      messages: [{ role: 'user', content: prompt }],
      temperature: 0.8,
      max_tokens: 1000,
      ...extra,
    },
  });
}

function completionLine(id: string, prompt: string): string {
  return JSON.stringify({
    custom_id: id,
    method: 'POST',
    url: '/v1/completions',
    body: { model: 'volley-sim-1', prompt, temperature: 0.8, max_tokens: 100 },
  });
}

async function writeLines(path: string, lines: string[]): Promise<void> {
  await writeFile(path, `${lines.join('\n')}\n`);
}

function runArgs(input: string, output: string, ...extra: string[]): string[] {
  return ['run', input, '-o', output, '--base-url', sim.url, '--progress', 'none', ...extra];
}

async function results(path: string): Promise<Map<string, ResultRecord>> {
  const records = parseJsonl(await readFile(path, 'utf8')) as unknown as ResultRecord[];
  const byId = new Map<string, ResultRecord>();
  for (const record of records) {
    expect(byId.has(record.custom_id), `two records for ${record.custom_id}`).toBe(false);
    byId.set(record.custom_id, record);
  }
  return byId;
}

function record(byId: Map<string, ResultRecord>, id: string): ResultRecord {
  const found = byId.get(id);
  if (found === undefined) throw new Error(`no record for ${id}`);
  return found;
}

function contentOf(choice: Choice | undefined): string {
  return choice?.message?.content ?? choice?.text ?? '';
}

function sumUsage(usages: Usage[]): Usage {
  return usages.reduce(
    (sum, u) => ({
      prompt_tokens: sum.prompt_tokens + u.prompt_tokens,
      completion_tokens: sum.completion_tokens + u.completion_tokens,
      total_tokens: sum.total_tokens + u.total_tokens,
    }),
    { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
  );
}

function logOf(prompt: string, from: number): SimRequestLogEntry[] {
  return sim.requests
    .slice(from)
    .filter((entry) => !isJudge(entry.body) && promptOf(entry.body) === prompt);
}

describe('volley run --samples --select all', () => {
  it('writes one record per custom_id with every sample’s choices and summed usage, alike in both modes', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const count = 20;
    const lines = Array.from({ length: count }, (_, i) => chatLine(`c-${i}`, `all:chat ${i}`));
    lines.push(completionLine('p-0', 'all:completion'));
    await writeLines(input, lines);
    const byMode: Record<string, Map<string, ResultRecord>> = {};
    for (const mode of ['async', 'threads']) {
      arrivals.clear();
      const output = dir.file(`out-${mode}.jsonl`);
      const tokensBefore = sim.stats().promptTokens;
      const requestsBefore = sim.stats().requests;
      const result = await runCli(
        runArgs(input, output, '--samples', '3', '--mode', mode, '--concurrency', '8', '--json'),
      );
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const summary = JSON.parse(result.stdout) as Record<string, number>;
      expect(summary).toMatchObject({
        total: count + 1,
        succeeded: count + 1,
        sampleCalls: 3 * (count + 1),
      });
      expect(sim.stats().requests - requestsBefore).toBe(3 * (count + 1));
      const byId = await results(output);
      expect(byId.size).toBe(count + 1);
      let promptTokens = 0;
      for (const [id, line] of byId) {
        const prompt = id === 'p-0' ? 'all:completion' : `all:chat ${id.slice(2)}`;
        const { choices, usage } = line.response.body;
        expect(choices.map((choice) => choice.index)).toEqual([0, 1, 2]);
        // Which sample got which answer depends on arrival order; the set does not.
        expect(choices.map(contentOf).sort()).toEqual(
          [0, 1, 2].map((n) => `sample ${n} of ${prompt}`),
        );
        // Each answer is 4 words + the prompt's; the simulator counts one token per word.
        const words = 3 + prompt.split(' ').length;
        expect(usage.completion_tokens).toBe(3 * words);
        expect(usage.prompt_tokens % 3).toBe(0);
        expect(usage.total_tokens).toBe(usage.prompt_tokens + usage.completion_tokens);
        expect(line.volley).toEqual({ samples: 3, select: 'all', failed: 0, usage });
        promptTokens += usage.prompt_tokens;
      }
      // The summed usage is what the server counted, nothing more, nothing less.
      expect(promptTokens).toBe(sim.stats().promptTokens - tokensBefore);
      expect(summary.promptTokens).toBe(promptTokens);
      byMode[mode] = byId;
    }
    const comparable = (line: ResultRecord) =>
      JSON.stringify({
        choices: line.response.body.choices.map(contentOf).sort(),
        usage: line.response.body.usage,
        volley: line.volley,
      });
    for (const [id, line] of byMode.async ?? []) {
      expect(comparable(record(byMode.threads ?? new Map(), id))).toBe(comparable(line));
    }
  }, 60_000);

  it('writes the samples that succeeded, and fails a line whose samples all failed', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeLines(input, [
      chatLine('ok', 'all:fine'),
      chatLine('partial', 'all:partial'),
      chatLine('poisoned', 'all:poison'),
    ]);
    const result = await runCli(runArgs(input, output, '--samples', '3', '--json'));
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ succeeded: 2, failed: 1 });
    const byId = await results(output);
    expect([...byId.keys()].sort()).toEqual(['ok', 'partial']);
    const partial = record(byId, 'partial');
    expect(partial.response.body.choices.map((choice) => choice.index)).toEqual([0, 1]);
    expect(partial.volley).toMatchObject({ samples: 3, failed: 1 });
    expect(partial.volley.errors).toHaveLength(1);
    expect(partial.volley.errors?.[0]?.code).toBe('VOLLEY_ERR_HTTP');
    const errors = parseJsonl(
      await readFile(dir.file('out.errors.jsonl'), 'utf8'),
    ) as unknown as ErrorRecord[];
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      custom_id: 'poisoned',
      error: { code: 'VOLLEY_ERR_HTTP', status: 400, retryable: false, line: 3 },
    });
  });

  it('refuses embedding lines, naming the line and field, and runs the others', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeLines(input, [
      chatLine('chat', 'all:beside an embedding'),
      JSON.stringify({
        custom_id: 'vectors',
        method: 'POST',
        url: '/v1/embeddings',
        body: { model: 'volley-sim-embed-1', input: 'embed me' },
      }),
    ]);
    const result = await runCli(runArgs(input, output, '--samples', '2'));
    expect(result.code).toBe(1);
    expect([...(await results(output)).keys()]).toEqual(['chat']);
    const errors = parseJsonl(
      await readFile(dir.file('out.errors.jsonl'), 'utf8'),
    ) as unknown as ErrorRecord[];
    expect(errors).toHaveLength(1);
    expect(errors[0]?.custom_id).toBe('vectors');
    expect(errors[0]?.error.code).toBe('VOLLEY_INPUT_SAMPLES_UNSUPPORTED');
    expect(errors[0]?.error.message).toMatch(/^line 2: "url" \/v1\/embeddings cannot be sampled/);
  });
});

describe('volley run --samples --select vote', () => {
  it('writes the most common answer with its tally, stopping early and aborting the rest', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    const early = 'vote:early:yes|Yes.|**YES**|LONG|LONG';
    const majority = 'vote:majority:Positive|positive.|negative|POSITIVE|negative';
    const tie = 'vote:tie:red|blue|green|green|red';
    const partial = 'vote:partial:x|x|x|y';
    await writeLines(input, [
      chatLine('early', early),
      chatLine('majority', majority),
      chatLine('tie', tie),
      chatLine('partial', partial),
    ]);
    const logStart = sim.requests.length;
    const result = await runCli(
      runArgs(input, output, '--samples', '5', '--select', 'vote', '--json'),
    );
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout) as Record<string, number>;
    expect(summary).toMatchObject({ succeeded: 4, failed: 0, sampleCalls: 20 });
    const byId = await results(output);

    const settled = (line: ResultRecord): number =>
      Object.values(line.volley.votes ?? {}).reduce((a, b) => a + b, 0) +
      line.volley.failed +
      (line.volley.cancelled ?? 0);
    const chosenAnswer = (line: ResultRecord): string | undefined =>
      normaliseAnswer(contentOf(line.response.body.choices[0]));

    // Three quick "yes" settle it; the two long answers are aborted at the server.
    const earlyLine = record(byId, 'early');
    expect(earlyLine.volley).toMatchObject({
      samples: 5,
      select: 'vote',
      winner: 'yes',
      decided: true,
      votes: { yes: 3 },
      cancelled: 2,
      failed: 0,
    });
    expect(chosenAnswer(earlyLine)).toBe('yes');
    expect(earlyLine.response.body.choices).toHaveLength(1);
    // Usage counts the three samples that completed.
    expect(earlyLine.volley.usage.completion_tokens).toBe(3);
    await waitFor(() => logOf(early, logStart).filter((entry) => entry.aborted).length === 2);
    const earlyLog = logOf(early, logStart);
    expect(earlyLog).toHaveLength(5);
    expect(earlyLog.filter((entry) => !entry.aborted)).toHaveLength(3);

    const majorityLine = record(byId, 'majority');
    expect(majorityLine.volley).toMatchObject({ winner: 'positive', decided: true });
    expect(majorityLine.volley.votes?.positive).toBe(3);
    expect(settled(majorityLine)).toBe(5);
    expect(chosenAnswer(majorityLine)).toBe('positive');

    // A 2-2-1 tie: the answer of the earliest sample among the tied ones, marked undecided.
    const tieLine = record(byId, 'tie');
    expect(tieLine.volley).toMatchObject({
      decided: false,
      votes: { red: 2, green: 2, blue: 1 },
      cancelled: 0,
    });
    expect(['red', 'green']).toContain(tieLine.volley.winner);
    expect(chosenAnswer(tieLine)).toBe(tieLine.volley.winner);

    // The failed sample is no vote; the other four decide.
    const partialLine = record(byId, 'partial');
    expect(partialLine.volley).toMatchObject({ winner: 'x', failed: 1 });
    expect(partialLine.volley.votes?.x).toBe(3);
    expect(partialLine.volley.errors?.[0]?.code).toBe('VOLLEY_ERR_HTTP');
    expect(settled(partialLine)).toBe(5);
  });
});

describe('volley run --samples --select judge', () => {
  it("writes the judge's pick, falls back to the first sample on nonsense, and counts the judge", async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeLines(input, [
      chatLine('beta', 'judge:pick=beta:alpha|beta|gamma'),
      chatLine('gamma', 'judge:pick=gamma:alpha|beta|gamma'),
      completionLine('completion', 'judge:pick=beta:alpha|beta|gamma (completion)'),
      chatLine('nonsense', 'judge:nonsense:alpha|beta|gamma'),
    ]);
    const logStart = sim.requests.length;
    const tokensBefore = sim.stats().promptTokens;
    const result = await runCli(
      runArgs(
        input,
        output,
        '--samples',
        '3',
        '--select',
        'judge',
        '--judge-model',
        'volley-sim-judge',
        '--json',
      ),
    );
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout) as Record<string, number>;
    expect(summary).toMatchObject({ succeeded: 4, sampleCalls: 16 });
    const byId = await results(output);

    for (const id of ['beta', 'gamma', 'completion']) {
      const line = record(byId, id);
      expect(contentOf(line.response.body.choices[0])).toBe(id === 'gamma' ? 'gamma' : 'beta');
      expect(line.volley).toMatchObject({
        samples: 3,
        select: 'judge',
        model: 'volley-sim-judge',
        verdict: { method: 'judge', parsed: true },
      });
      expect(line.volley.verdict?.raw).toMatch(/^I choose response [123]\.$/);
    }
    const nonsense = record(byId, 'nonsense');
    expect(nonsense.volley).toMatchObject({
      selected: 0,
      verdict: { method: 'judge', parsed: false, reason: 'unparseable', raw: 'banana' },
    });

    // The judge calls went to the judge model, on the line's own endpoint.
    const judges = sim.requests.slice(logStart).filter((entry) => isJudge(entry.body));
    expect(judges).toHaveLength(4);
    expect(judges.map((entry) => (entry.body as { model: string }).model)).toEqual(
      Array(4).fill('volley-sim-judge'),
    );
    expect(judges.map((entry) => entry.path).sort()).toEqual([
      '/v1/chat/completions',
      '/v1/chat/completions',
      '/v1/chat/completions',
      '/v1/completions',
    ]);
    // Each record's usage covers its samples and its judge: together, all the server counted.
    const lines = [...byId.values()];
    for (const line of lines) {
      expect(line.volley.usage.prompt_tokens).toBeGreaterThan(
        3 * line.response.body.usage.prompt_tokens,
      );
    }
    const total = sumUsage(lines.map((line) => line.volley.usage));
    expect(total.prompt_tokens).toBe(sim.stats().promptTokens - tokensBefore);
    expect(summary.promptTokens).toBe(total.prompt_tokens);
  });
});

describe('volley run --samples, refusals', () => {
  it('refuses to resume with different sampling, and resumes with the same', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeLines(input, [chatLine('a', 'all:resume a'), chatLine('b', 'all:resume b')]);
    expect((await runCli(runArgs(input, output, '--samples', '2'))).code).toBe(0);
    await writeLines(input, [
      chatLine('a', 'all:resume a'),
      chatLine('b', 'all:resume b'),
      chatLine('c', 'all:resume c'),
    ]);
    const before = sim.stats().requests;
    for (const flags of [['--samples', '3'], ['--samples', '2', '--select', 'vote'], []]) {
      const refused = await runCli(runArgs(input, output, '--resume', '--json', ...flags));
      expect(refused.code).toBe(2);
      expect(JSON.parse(refused.stdout)).toMatchObject({
        code: 'VOLLEY_ERR_RESUME_CONFIG_CHANGED',
      });
      expect(refused.stderr).toContain('--samples 2 --select all');
    }
    expect(sim.stats().requests).toBe(before);
    const resumed = await runCli(runArgs(input, output, '--resume', '--samples', '2', '--json'));
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ succeeded: 1, alreadyDone: 2 });
    expect(sim.stats().requests - before).toBe(2);
    const byId = await results(output);
    expect([...byId.keys()].sort()).toEqual(['a', 'b', 'c']);
  });

  it.each([
    [['--select', 'vote'], '--select vote needs --samples 2 or more'],
    [['--samples', '1', '--select', 'judge'], '--select judge needs --samples 2 or more'],
    [['--samples', '3', '--judge-model', 'j'], 'apply to --select judge only, not --select all'],
    [['--samples', '0'], "option '--samples <n>' argument '0' is invalid"],
    [['--samples', '500'], '--samples is at most 128'],
    [['--samples', '2', '--select', 'best'], "argument 'best' is invalid"],
  ])('refuses %j with exit 2, sending nothing', async (flags, message) => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    await writeLines(input, [chatLine('a', 'all:refused')]);
    const before = sim.stats().requests;
    const result = await runCli(runArgs(input, dir.file('out.jsonl'), ...flags));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(sim.stats().requests).toBe(before);
  });

  it('--dry-run estimates every sample and the judge', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    await writeLines(input, [chatLine('a', 'all:estimate a'), chatLine('b', 'all:estimate b')]);
    const estimate = async (...flags: string[]) => {
      const result = await runCli(['run', input, '--dry-run', '--json', ...flags]);
      expect(result.code).toBe(0);
      return JSON.parse(result.stdout) as { promptTokens: number; maxCompletionTokens: number };
    };
    const one = await estimate();
    const all = await estimate('--samples', '4');
    expect(all.promptTokens).toBe(4 * one.promptTokens);
    expect(all.maxCompletionTokens).toBe(4 * one.maxCompletionTokens);
    const judged = await estimate('--samples', '4', '--select', 'judge');
    expect(judged.promptTokens).toBeGreaterThan(
      all.promptTokens + one.promptTokens + 4 * one.maxCompletionTokens,
    );
    expect(judged.maxCompletionTokens).toBe(all.maxCompletionTokens + 2 * 16);
  });
});
