/**
 * `volley run --resume`: kill -9 at random moments, then resume, and every line ends with exactly
 * one whole record carrying what the server returned. Also what resuming refuses (a changed
 * configuration, changed lines, a live lock) and what it retries (transient failures only).
 *
 * The long version (20 runs of 10,000 lines) is scripts/kill-resume-harness.ts.
 */
import {
  appendFile,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  truncate,
  writeFile,
} from 'node:fs/promises';
import type { Simulator } from '@volley/sim';
import { createSimulator, simulatedChatContent } from '@volley/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkBatchOutput } from './cli-batch-check.js';
import { countLines, startCli, waitFor } from './cli-process.js';
import { batchLine, chatBody, parseJsonl, runCli, tempDir, writeBatch } from './helpers.js';

let sim: Simulator;
let flaky = true;

beforeAll(async () => {
  sim = await createSimulator({
    latency: { headersMs: 4 },
    logCapacity: 50_000,
    faultFor: ({ body }) => {
      const text = JSON.stringify(body);
      if (text.includes('poison')) return 'status-400-context-length';
      if (flaky && text.includes('flaky')) return 'status-503';
      return undefined;
    },
  });
});
afterAll(() => sim.close());

function runArgs(input: string, output: string, ...extra: string[]): string[] {
  return ['run', input, '-o', output, '--base-url', sim.url, '--progress', 'none', ...extra];
}

/** A seeded generator, so a failure can be replayed with the same kill points. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe.each(['completion', 'input'] as const)('kill -9 and --resume (--order %s)', (order) => {
  it('loses, duplicates and tears nothing across three kills of a 2,000-line run', async () => {
    await using dir = await tempDir();
    const count = 2000;
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeBatch(input, count);
    const random = seeded(order === 'input' ? 7 : 3);
    const requestsBefore = sim.stats().requests;
    let killedWith = 0;
    for (let kill = 0; kill < 3; kill++) {
      const written = await countLines(output);
      // A random point in what is left, so each kill lands mid-run.
      const target = written + 1 + Math.floor(random() * (count - written) * 0.6);
      const cli = startCli(
        runArgs(input, output, '--order', order, '--concurrency', '32', '--resume'),
      );
      await waitFor(
        async () => (await countLines(output)) >= target || cli.child.exitCode !== null,
      );
      cli.child.kill('SIGKILL');
      const result = await cli.exited;
      if (result.signal === 'SIGKILL') killedWith++;
      const lock = await stat(`${output}.volley-lock`).catch(() => undefined);
      if (result.signal === 'SIGKILL') expect(lock).toBeDefined(); // kill -9 cannot clean up
    }
    expect(killedWith).toBeGreaterThanOrEqual(2);
    const final = await runCli(runArgs(input, output, '--order', order, '--resume', '--json'));
    expect(final.code).toBe(0);
    expect(final.stderr).toMatch(/stale lock/);
    const check = await checkBatchOutput(count, output, dir.file('out.errors.jsonl'));
    expect(check).toMatchObject({ lost: 0, duplicated: 0, torn: 0, mismatched: 0, errors: 0 });
    if (order === 'input') expect(check.outOfOrder).toBe(0);
    // Only what was in flight (or finished but not yet written) at each kill is paid twice.
    const resent = sim.stats().requests - requestsBefore - count;
    expect(resent).toBeLessThanOrEqual(3 * 64);
    await expect(stat(`${output}.volley-spill`)).rejects.toMatchObject({ code: 'ENOENT' });
  }, 60_000);
});

describe('volley run --resume', () => {
  it('retries transient failures, keeps permanent ones, and rewrites the retry file', async () => {
    await using dir = await tempDir();
    const lines: string[] = [];
    for (let i = 0; i < 20; i++) {
      const content = i % 7 === 3 ? 'flaky' : i % 9 === 4 ? 'poison' : `fine ${i}`;
      lines.push(
        JSON.stringify({
          custom_id: `req-${i}`,
          method: 'POST',
          url: '/v1/chat/completions',
          body: chatBody(i, { messages: [{ role: 'user', content }] }),
        }),
      );
    }
    // A convenience line without a custom_id fails too: its retry line gets `line-21` written in.
    lines.push(JSON.stringify({ prompt: 'flaky convenience', model: 'volley-sim-1' }));
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeFile(input, `${lines.join('\n')}\n`);
    flaky = true;
    try {
      const first = await runCli(runArgs(input, output, '--max-retries', '0', '--json'));
      expect(first.code).toBe(1);
      const errors = parseJsonl(await readFile(dir.file('out.errors.jsonl'), 'utf8')) as Array<{
        custom_id: string;
        error: { code: string; status: number; attempts: number; retryable: boolean; line: number };
      }>;
      const flakyIds = ['req-3', 'req-10', 'req-17', 'line-21'];
      const poisonIds = ['req-4', 'req-13'];
      expect(errors.map((e) => e.custom_id).sort()).toEqual([...flakyIds, ...poisonIds].sort());
      for (const e of errors) {
        const isFlaky = flakyIds.includes(e.custom_id);
        expect(e.error).toMatchObject({
          status: isFlaky ? 503 : 400,
          attempts: 1,
          retryable: isFlaky,
        });
        const line = e.custom_id === 'line-21' ? 21 : Number(e.custom_id.slice('req-'.length)) + 1;
        expect(e.error.line).toBe(line);
      }
      const retry = (await readFile(dir.file('out.retry.jsonl'), 'utf8')).trim().split('\n');
      expect(retry).toHaveLength(6);
      expect(retry).toContain(lines[3]);
      expect(retry.find((l) => l.includes('flaky convenience'))).toMatch(
        /^\{"custom_id":"line-21",/,
      );

      flaky = false;
      const before = sim.stats().requests;
      const second = await runCli(runArgs(input, output, '--resume', '--json'));
      expect(second.code).toBe(1); // the poisoned lines still failed (in the earlier run)
      expect(sim.stats().requests - before).toBe(flakyIds.length); // poison is not re-sent
      const results = parseJsonl(await readFile(output, 'utf8'));
      expect(results.map((r) => r.custom_id)).toEqual(expect.arrayContaining(flakyIds));
      expect(results).toHaveLength(21 - poisonIds.length);
      const kept = parseJsonl(await readFile(dir.file('out.errors.jsonl'), 'utf8'));
      expect(kept.map((e) => e.custom_id).sort()).toEqual([...poisonIds].sort());
      const retried = (await readFile(dir.file('out.retry.jsonl'), 'utf8')).trim().split('\n');
      expect(retried).toEqual([lines[4], lines[13]]);
      const summary = JSON.parse(second.stdout) as { alreadyDone: number; succeeded: number };
      expect(summary).toMatchObject({ alreadyDone: 17, succeeded: 4 });
    } finally {
      flaky = true;
    }
  });

  it('refuses a changed configuration unless --force-resume, and sends nothing when refusing', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeBatch(input, 10);
    expect((await runCli(runArgs(input, output))).code).toBe(0);
    await writeBatch(input, 20); // ten more lines to do
    const before = sim.stats().requests;
    const refused = await runCli(runArgs(input, output, '--resume', '--model', 'other', '--json'));
    expect(refused.code).toBe(2);
    expect(JSON.parse(refused.stdout)).toMatchObject({ code: 'VOLLEY_ERR_RESUME_CONFIG_CHANGED' });
    expect(sim.stats().requests).toBe(before);
    const forced = await runCli(
      runArgs(input, output, '--force-resume', '--model', 'other', '--json'),
    );
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ succeeded: 10, alreadyDone: 10 });
    expect(await checkBatchOutput(20, output)).toMatchObject({ lost: 0, duplicated: 0 });
  });

  it('refuses when a finished line changed; --force-resume keeps its earlier result', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeBatch(input, 10);
    expect((await runCli(runArgs(input, output))).code).toBe(0);
    const original = await readFile(input, 'utf8');
    await writeFile(input, original.replace('fact number 5 about', 'fact number 5 regarding'));
    const before = sim.stats().requests;
    const refused = await runCli(runArgs(input, output, '--resume', '--json'));
    expect(refused.code).toBe(2);
    expect(JSON.parse(refused.stdout)).toMatchObject({ code: 'VOLLEY_ERR_RESUME_CHANGED_LINES' });
    expect(refused.stderr).toMatch(/line 6/);
    expect(sim.stats().requests).toBe(before);
    const forced = await runCli(runArgs(input, output, '--force-resume'));
    expect(forced.code).toBe(0);
    expect(sim.stats().requests).toBe(before);
    // The earlier answer stands, once.
    expect(await checkBatchOutput(10, output)).toMatchObject({
      lost: 0,
      duplicated: 0,
      mismatched: 0,
    });
  });

  it('cuts a torn tail left by a kill in the middle of a write, and redoes that line', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeBatch(input, 50);
    expect((await runCli(runArgs(input, output))).code).toBe(0);
    const text = await readFile(output, 'utf8');
    // Drop the last whole record and leave the first half of it, as a torn write would.
    const lastStart = text.lastIndexOf('\n', text.length - 2) + 1;
    await truncate(output, Buffer.byteLength(text.slice(0, lastStart)) + 40);
    const resumed = await runCli(runArgs(input, output, '--resume', '--json'));
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(/repaired the results file: cut a torn tail of 40 bytes/);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ succeeded: 1, alreadyDone: 49 });
    expect(await checkBatchOutput(50, output)).toMatchObject({ lost: 0, duplicated: 0, torn: 0 });
  });

  it('refuses a results file with an unreadable record in the middle (edited, not torn)', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeBatch(input, 5);
    expect((await runCli(runArgs(input, output))).code).toBe(0);
    const lines = (await readFile(output, 'utf8')).split('\n');
    lines.splice(2, 0, 'not a record');
    await writeFile(output, lines.join('\n'));
    const refused = await runCli(runArgs(input, output, '--resume', '--json'));
    expect(refused.code).toBe(2);
    expect(JSON.parse(refused.stdout)).toMatchObject({ code: 'VOLLEY_ERR_RESUME_CORRUPT' });
  });

  it('refuses an output replaced by a symlink before --resume as a fresh run does: exit 2, VOLLEY_ERR_OUTPUT_SYMLINK, nothing touched', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeBatch(input, 20);
    expect((await runCli(runArgs(input, output))).code).toBe(0);
    // The results moved elsewhere, a link in their place, and a torn tail a resume would cut.
    const elsewhere = dir.file('elsewhere.jsonl');
    await rename(output, elsewhere);
    await appendFile(elsewhere, '{"id":"batch_req_torn');
    await symlink(elsewhere, output);
    const target = await readFile(elsewhere);
    const requests = sim.stats().requests;

    const resumed = await runCli(runArgs(input, output, '--resume', '--json'));
    const fresh = await runCli(runArgs(input, output, '--overwrite', '--json'));
    for (const result of [resumed, fresh]) {
      expect(result.code).toBe(2);
      expect(JSON.parse(result.stdout)).toMatchObject({
        code: 'VOLLEY_ERR_OUTPUT_SYMLINK',
        message: `output path is a symbolic link: ${JSON.stringify(output)}`,
      });
      expect(result.stderr).not.toMatch(/ELOOP: too many/);
    }
    expect(await readFile(elsewhere)).toEqual(target);

    // The errors file likewise (a resume rewrites it when it drops records).
    await rm(output);
    await rename(elsewhere, output);
    await truncate(output, target.length - '{"id":"batch_req_torn'.length);
    const errors = dir.file('out.errors.jsonl');
    await rm(errors, { force: true });
    await symlink(dir.file('other.jsonl'), errors);
    const linkedErrors = await runCli(runArgs(input, output, '--resume', '--json'));
    expect(linkedErrors.code).toBe(2);
    expect(JSON.parse(linkedErrors.stdout)).toMatchObject({ code: 'VOLLEY_ERR_OUTPUT_SYMLINK' });
    expect(sim.stats().requests).toBe(requests);
  });

  it('lets one run write an output at a time', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeBatch(input, 3000);
    const first = startCli(runArgs(input, output, '--concurrency', '4'));
    await waitFor(async () => (await countLines(output)) > 0);
    const second = await runCli(runArgs(input, output, '--resume', '--json'));
    expect(second.code).toBe(2);
    expect(JSON.parse(second.stdout)).toMatchObject({ code: 'VOLLEY_ERR_OUTPUT_LOCKED' });
    first.child.kill('SIGINT');
    expect((await first.exited).code).toBe(130);
    await expect(stat(`${output}.volley-lock`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('processes lines added to the input since the run finished, and nothing else', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeBatch(input, 5);
    expect((await runCli(runArgs(input, output))).code).toBe(0);
    await appendFile(input, `${batchLine(5)}\n${batchLine(6)}\n`);
    const resumed = await runCli(runArgs(input, output, '--resume', '--json'));
    expect(JSON.parse(resumed.stdout)).toMatchObject({ succeeded: 2, alreadyDone: 5, pending: 0 });
    const records = parseJsonl(await readFile(output, 'utf8')) as Array<{
      custom_id: string;
      response: { body: { choices: Array<{ message: { content: string } }> } };
    }>;
    expect(records.map((r) => r.custom_id)).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `req-${i}`));
    expect(records[6]?.response.body.choices[0]?.message.content).toBe(
      simulatedChatContent(chatBody(6)).content,
    );
  });

  it('--overwrite starts over; without it an earlier run is never truncated', async () => {
    await using dir = await tempDir();
    const input = dir.file('in.jsonl');
    const output = dir.file('out.jsonl');
    await writeBatch(input, 5);
    expect((await runCli(runArgs(input, output))).code).toBe(0);
    const refused = await runCli(runArgs(input, output, '--json'));
    expect(refused.code).toBe(2);
    expect(JSON.parse(refused.stdout)).toMatchObject({ code: 'VOLLEY_ERR_OUTPUT_EXISTS' });
    expect(await countLines(output)).toBe(5);
    const again = await runCli(runArgs(input, output, '--overwrite', '--json'));
    expect(JSON.parse(again.stdout)).toMatchObject({ succeeded: 5, alreadyDone: 0 });
    expect(await countLines(output)).toBe(5);
  });
});
