/**
 * `volley run` end to end: the real CLI in a child process against a simulator started
 * separately (in this test process), with real files.
 */

import { readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Simulator } from '@volley/sim';
import { createSimulator, simulatedChatContent } from '@volley/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchLine, chatBody, parseJsonl, runCli, tempDir, writeBatch } from './helpers.js';

interface OutputLine {
  custom_id: string;
  response: {
    status_code: number;
    request_id: string;
    body: { choices: Array<{ message: { content: string } }>; usage: unknown };
  } | null;
  error: { code: string; message: string; line?: number } | null;
}

describe('volley run', () => {
  let sim: Simulator;

  beforeAll(async () => {
    sim = await createSimulator({
      faultFor: ({ body }) =>
        JSON.stringify(body).includes('poison') ? 'status-400-context-length' : undefined,
    });
  });
  afterAll(() => sim.close());

  it('writes exactly one record per custom_id carrying what the server returned, identically in both modes', async () => {
    await using dir = await tempDir();
    const count = 10_000;
    await writeBatch(dir.file('in.jsonl'), count);
    const bodies: Record<string, string> = {};
    for (const mode of ['async', 'threads']) {
      const out = dir.file(`out-${mode}.jsonl`);
      const result = await runCli([
        'run',
        dir.file('in.jsonl'),
        '-o',
        out,
        '--base-url',
        sim.url,
        '--mode',
        mode,
        '--concurrency',
        '128',
        '--progress',
        'none',
        '--json',
      ]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const summary = JSON.parse(result.stdout) as { succeeded: number; failed: number };
      expect(summary).toMatchObject({ succeeded: count, failed: 0 });
      const lines = parseJsonl(await readFile(out, 'utf8')) as unknown as OutputLine[];
      expect(lines).toHaveLength(count);
      const seen = new Set<string>();
      for (const line of lines) {
        expect(seen.has(line.custom_id)).toBe(false);
        seen.add(line.custom_id);
        expect(line.error).toBeNull();
        expect(line.response?.status_code).toBe(200);
        const index = Number(line.custom_id.slice('req-'.length));
        expect(line.response?.body.choices[0]?.message.content).toBe(
          simulatedChatContent(chatBody(index)).content,
        );
        const key = `${line.custom_id}`;
        const body = JSON.stringify({
          choices: line.response?.body.choices,
          usage: line.response?.body.usage,
        });
        if (mode === 'async') bodies[key] = body;
        else expect(body).toBe(bodies[key]);
      }
      expect(seen.size).toBe(count);
    }
  }, 120_000);

  it('runs on the embedded simulator when no endpoint is configured', async () => {
    await using dir = await tempDir();
    await writeBatch(dir.file('in.jsonl'), 50);
    const result = await runCli([
      'run',
      dir.file('in.jsonl'),
      '-o',
      dir.file('out.jsonl'),
      '--progress',
      'plain',
    ]);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('embedded simulator');
    expect(parseJsonl(await readFile(dir.file('out.jsonl'), 'utf8'))).toHaveLength(50);
  });

  it('reports bad lines and failed requests per line, processes the rest, and exits 1', async () => {
    await using dir = await tempDir();
    const lines = [
      batchLine(0),
      '{"custom_id": "broken", "method": "POST", ',
      JSON.stringify({
        custom_id: 'poisoned',
        method: 'POST',
        url: '/v1/chat/completions',
        body: chatBody(1, { messages: [{ role: 'user', content: 'poison' }] }),
      }),
      batchLine(0),
      JSON.stringify({ custom_id: 'simple', prompt: 'Just a prompt line' }),
      // Accepted with a warning, shown once however many lines carry it.
      JSON.stringify({
        custom_id: 'extra-1',
        method: 'POST',
        url: '/v1/chat/completions',
        body: chatBody(2),
        note: 'x',
      }),
      JSON.stringify({
        custom_id: 'extra-2',
        method: 'POST',
        url: '/v1/chat/completions',
        body: chatBody(3),
        note: 'y',
      }),
    ];
    await writeFile(dir.file('in.jsonl'), `${lines.join('\n')}\n`);
    const result = await runCli([
      'run',
      dir.file('in.jsonl'),
      '-o',
      dir.file('out.jsonl'),
      '-e',
      dir.file('errors.jsonl'),
      '--base-url',
      sim.url,
      '--model',
      'volley-sim-1',
      '--progress',
      'none',
    ]);
    expect(result.code).toBe(1);
    const out = parseJsonl(
      await readFile(dir.file('out.jsonl'), 'utf8'),
    ) as unknown as OutputLine[];
    expect(out.map((line) => line.custom_id).sort()).toEqual([
      'extra-1',
      'extra-2',
      'req-0',
      'simple',
    ]);
    const errors = parseJsonl(
      await readFile(dir.file('errors.jsonl'), 'utf8'),
    ) as unknown as OutputLine[];
    const byId = Object.fromEntries(errors.map((line) => [line.custom_id, line]));
    expect(errors).toHaveLength(3);
    expect(byId['#line-2']?.error?.code).toBe('VOLLEY_INPUT_JSON_TRUNCATED');
    expect(byId['#line-2']?.error?.line).toBe(2);
    expect(byId.poisoned?.error?.code).toBe('VOLLEY_ERR_HTTP');
    expect(byId.poisoned?.response?.status_code).toBe(400);
    expect(byId['req-0']?.error?.code).toBe('VOLLEY_INPUT_DUPLICATE_CUSTOM_ID');
    expect(result.stderr.match(/VOLLEY_INPUT_UNKNOWN_FIELD/g)).toHaveLength(1);
  });

  it('refuses to overwrite an existing output without --overwrite, sending nothing', async () => {
    await using dir = await tempDir();
    await writeBatch(dir.file('in.jsonl'), 5);
    await writeFile(dir.file('out.jsonl'), 'precious\n');
    const before = sim.stats().requests;
    const result = await runCli([
      'run',
      dir.file('in.jsonl'),
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      sim.url,
      '--progress',
      'none',
    ]);
    expect(result.code).toBe(2);
    expect(await readFile(dir.file('out.jsonl'), 'utf8')).toBe('precious\n');
    expect(sim.stats().requests).toBe(before);
  });

  it('refuses outputs that are the same file as each other or the input, however spelled, naming both flags and writing nothing', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const out = dir.file('r.jsonl');
    await writeBatch(input, 3);
    await symlink(dir.path, dir.file('alias'));
    const cases: Array<{ extra: string[]; code: string; flags: RegExp }> = [
      // The retry writer would overwrite the results from byte 0.
      { extra: ['--retry-file', out], code: 'CONFLICT', flags: /--retry-file .*-o\/--output/ },
      // The error records would be deleted with the spill file.
      {
        extra: ['-e', `${out}.volley-spill`, '--order', 'input'],
        code: 'CONFLICT',
        flags: /-o\/--output \(its spill file\).*-e\/--errors/,
      },
      // Other spellings of the results file: relative, with a dot, through a linked directory.
      {
        extra: ['-e', relative(process.cwd(), out)],
        code: 'CONFLICT',
        flags: /-e\/--errors .*-o\/--output/,
      },
      {
        extra: ['-e', join(dir.path, '.', 'r.jsonl')],
        code: 'CONFLICT',
        flags: /-e\/--errors .*-o\/--output/,
      },
      {
        extra: ['-e', dir.file('alias/r.jsonl')],
        code: 'CONFLICT',
        flags: /-e\/--errors .*-o\/--output/,
      },
      { extra: ['-e', `${out}.volley-lock`], code: 'CONFLICT', flags: /its lock file/ },
      {
        extra: ['--retry-file', dir.file('r.errors.jsonl')],
        code: 'CONFLICT',
        flags: /--retry-file .*-o\/--output \(its errors file/,
      },
      {
        extra: ['--retry-file', input],
        code: 'SAME_AS_INPUT',
        flags: /--retry-file names the input/,
      },
    ];
    const requests = sim.stats().requests;
    for (const { extra, code, flags } of cases) {
      const result = await runCli([
        'run',
        input,
        '-o',
        out,
        '--base-url',
        sim.url,
        ...extra,
        '--json',
      ]);
      expect(result.code, extra.join(' ')).toBe(2);
      const error = JSON.parse(result.stdout) as { code: string; message: string };
      expect(error.code, extra.join(' ')).toBe(`VOLLEY_ERR_OUTPUT_${code}`);
      expect(error.message).toMatch(flags);
    }
    expect(sim.stats().requests).toBe(requests);
    expect((await readdir(dir.path)).sort()).toEqual(['alias', 'in.jsonl']);
    expect(await readFile(input, 'utf8')).toContain('req-2');
  });

  it('exits 2 on a missing input without sending anything', async () => {
    await using dir = await tempDir();
    const before = sim.stats().requests;
    const result = await runCli([
      'run',
      dir.file('nope.jsonl'),
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      sim.url,
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/nope\.jsonl/);
    expect(sim.stats().requests).toBe(before);
  });
});

describe('volley run against an endpoint that rejects the key', () => {
  it('stops with exit 3, leaves the lines pending, and never prints the key', async () => {
    const secured = await createSimulator({ apiKey: 'the-right-key-1234' });
    try {
      await using dir = await tempDir();
      await writeBatch(dir.file('in.jsonl'), 200);
      const canary = 'sk-canary-DO-NOT-PRINT-9f8e7d6c';
      const result = await runCli(
        [
          'run',
          dir.file('in.jsonl'),
          '-o',
          dir.file('out.jsonl'),
          '--base-url',
          secured.url,
          '--progress',
          'plain',
          '--json',
        ],
        { OPENAI_API_KEY: canary },
      );
      expect(result.code).toBe(3);
      expect(result.stderr).toMatch(/401/);
      const output = await readFile(dir.file('out.jsonl'), 'utf8');
      expect(parseJsonl(output)).toHaveLength(0);
      const summary = JSON.parse(result.stdout) as { pending: number };
      expect(summary.pending).toBe(200);
      for (const text of [result.stdout, result.stderr, output]) expect(text).not.toContain(canary);
    } finally {
      await secured.close();
    }
  });
});
