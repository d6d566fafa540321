import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunConfig, RunState } from '../src/run/state.js';
import {
  configHash,
  displayEndpoint,
  newRunId,
  readRunState,
  writeRunState,
} from '../src/run/state.js';
import { useTempDir } from './helpers/temp-files.js';

const tempDir = useTempDir();

const config: RunConfig = {
  endpoints: ['http://a:1/v1', 'http://b:2/v1'],
  model: 'm',
  maxLineBytes: 1024,
  allowedModels: [],
  maxPromptTokens: null,
  sampling: null,
};

function state(): RunState {
  return {
    version: 1,
    tool: 'volley',
    runId: newRunId(),
    createdAt: 'now',
    updatedAt: 'now',
    status: 'running',
    order: 'completion',
    config: { hash: configHash(config), endpoints: config.endpoints, model: 'm' },
    input: { path: 'in.jsonl', size: 1, mtimeMs: 1 },
    files: { results: 'r', errors: 'e', retry: null, spill: 's' },
    counts: { succeeded: 0, failed: 0, invalid: 0, pending: 1 },
    committed: { results: 0, errors: 0, retry: 0, spill: 0 },
  };
}

describe('configHash', () => {
  it('changes with what decides results, not with endpoint order or credentials', () => {
    const hash = configHash(config);
    expect(configHash({ ...config, endpoints: ['http://b:2/v1', 'http://a:1/v1'] })).toBe(hash);
    expect(
      configHash({ ...config, endpoints: ['http://user:sk-123@a:1/v1', 'http://b:2/v1'] }),
    ).toBe(hash);
    expect(configHash({ ...config, model: 'other' })).not.toBe(hash);
    expect(configHash({ ...config, maxLineBytes: 2048 })).not.toBe(hash);
    expect(configHash({ ...config, endpoints: ['http://c:3/v1'] })).not.toBe(hash);
  });

  it('changes with the sampling, and stays what earlier versions wrote without it', () => {
    const hash = configHash(config);
    // The canonical form of a run without sampling, as hashed before sampling existed.
    const earlier = {
      endpoints: ['http://a:1/v1', 'http://b:2/v1'],
      model: 'm',
      maxLineBytes: 1024,
      allowedModels: [],
      maxPromptTokens: null,
    };
    expect(hash).toBe(createHash('sha256').update(JSON.stringify(earlier)).digest('hex'));
    const vote = { samples: 5, select: 'vote', judgeModel: null, judgeInstructions: null } as const;
    const sampled = configHash({ ...config, sampling: vote });
    expect(sampled).not.toBe(hash);
    expect(configHash({ ...config, sampling: { ...vote, samples: 3 } })).not.toBe(sampled);
    expect(configHash({ ...config, sampling: { ...vote, select: 'all' } })).not.toBe(sampled);
    expect(
      configHash({ ...config, sampling: { ...vote, select: 'judge', judgeModel: 'judge-1' } }),
    ).not.toBe(configHash({ ...config, sampling: { ...vote, select: 'judge' } }));
  });

  it('displays endpoints without credentials or query strings', () => {
    expect(displayEndpoint('https://user:secret@host:8443/v1?api-key=k')).toBe(
      'https://host:8443/v1',
    );
  });
});

describe('the state file', () => {
  it('round-trips through an atomic, owner-only write', async () => {
    const path = join(await tempDir(), 'out.jsonl.volley-state.json');
    const written = state();
    await writeRunState(path, written);
    await writeRunState(path, { ...written, status: 'interrupted' });
    expect(await readRunState(path)).toEqual({ ...written, status: 'interrupted' });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readFile(path, 'utf8')).not.toContain('sk-');
  });

  it('is absent, or refused when it is not one (VOLLEY_ERR_RESUME_STATE_INVALID)', async () => {
    const dir = await tempDir();
    expect(await readRunState(join(dir, 'none'))).toBeUndefined();
    await writeFile(join(dir, 'bad'), '{"tool":"other"}');
    await expect(readRunState(join(dir, 'bad'))).rejects.toMatchObject({
      code: 'VOLLEY_ERR_RESUME_STATE_INVALID',
      exitCode: 2,
    });
  });
});
