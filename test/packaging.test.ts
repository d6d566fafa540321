/**
 * The published package as a user gets it. scripts/pack-all.ts packs the tarball (and fails on
 * publint, attw or a file that should not ship); plain `npm i <tarball>` installs it into a new
 * project in the temp folder, outside the repository, where nothing of the workspace resolves.
 * There the command runs a 100-line batch against the embedded simulator, the library's types
 * check under a strict tsconfig (with the repository's TypeScript), and the package README's
 * example runs, from ESM and from CommonJS.
 *
 * Third-party dependencies come from the npm registry (`--prefer-offline`: the npm cache serves
 * them after the first run). Everything is written under one mkdtemp folder, so parallel test
 * files and parallel runs never share a path.
 */
import { spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const requireFromRoot = createRequire(join(ROOT, 'package.json'));
const TSC = requireFromRoot.resolve('typescript/bin/tsc');
const TSX_LOADER = pathToFileURL(requireFromRoot.resolve('tsx')).href;

/** The README example this test runs, as a user would paste it. */
async function readmeExample(): Promise<string> {
  const readme = await readFile(join(ROOT, 'packages/volley/README.md'), 'utf8');
  const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  if (block === undefined) throw new Error('packages/volley/README.md has no ```ts example');
  return block;
}

/**
 * The environment of a user's shell: this test's Node first on PATH (so `npx` and the bin's
 * `#!/usr/bin/env node` run the Node under test), and none of the npm_* variables pnpm sets for
 * its scripts, which would make npm act as if inside the workspace.
 */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.toLowerCase().startsWith('npm_') && key.toLowerCase() !== 'npm_config_registry') {
      continue;
    }
    if (key === 'NODE_OPTIONS' || key.startsWith('VITEST') || key === 'OPENAI_BASE_URL') continue;
    env[key] = value;
  }
  env.PATH = [dirname(process.execPath), process.env.PATH ?? ''].join(delimiter);
  return env;
}

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], cwd: string, timeoutMs = 120_000): Ran {
  const result = spawnSync(command, args, {
    cwd,
    env: userEnv(),
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  if (result.error !== undefined) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function expectSuccess(ran: Ran, what: string): void {
  if (ran.status !== 0) {
    throw new Error(
      `${what} exited ${ran.status}\n--- stdout\n${ran.stdout}\n--- stderr\n${ran.stderr}`,
    );
  }
}

let project: string;
let packOutput: string;

beforeAll(async () => {
  project = await mkdtemp(join(tmpdir(), 'volley-install-'));
  const tarballs = join(project, 'tarballs');
  const packed = run(
    process.execPath,
    ['--import', 'tsx', 'scripts/pack-all.ts', '--out', tarballs],
    ROOT,
  );
  expectSuccess(packed, 'scripts/pack-all.ts');
  packOutput = packed.stdout;

  const rootManifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
    devDependencies: Record<string, string>;
  };
  await writeFile(
    join(project, 'package.json'),
    `${JSON.stringify({ name: 'volley-install-check', private: true, type: 'module' }, null, 2)}\n`,
  );
  const files = (await readdir(tarballs)).filter((name) => name.endsWith('.tgz'));
  const installed = run(
    'npm',
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      ...files.map((name) => `./tarballs/${name}`),
      // What every TypeScript project on Node has; the same range as the repository's.
      `@types/node@${rootManifest.devDependencies['@types/node']}`,
    ],
    project,
    180_000,
  );
  expectSuccess(installed, 'npm install');
}, 240_000);

afterAll(async () => {
  if (project !== undefined) await rm(project, { recursive: true, force: true });
});

describe('the packed volley package, installed with npm outside the repository', () => {
  it('passed publint and attw, and holds only what it needs', async () => {
    expect(packOutput).toMatch(/publint: [\s\S]*All good!/);
    expect(packOutput).toMatch(/attw: [\s\S]*No problems found/);
    const pkg = join(project, 'node_modules', 'volley');
    const manifest = await readFile(join(pkg, 'package.json'), 'utf8');
    expect(manifest).not.toMatch(/workspace:|catalog:|@volley\//);
    const shipped = (await readdir(pkg, { recursive: true })).sort();
    expect(shipped).toEqual(
      expect.arrayContaining(['LICENSE', 'README.md', 'dist/worker-entry.js']),
    );
    expect(
      shipped.filter((file) => /\.map$|tsbuildinfo|\.test\.|(^|\/)(src|test)\//.test(file)),
    ).toEqual([]);
  });

  it('npx volley run writes one record per line of a 100-line batch (embedded simulator)', async () => {
    await copyFile(join(ROOT, 'examples/chat.jsonl'), join(project, 'chat.jsonl'));
    const input = (await readFile(join(project, 'chat.jsonl'), 'utf8')).trim().split('\n');
    expect(input).toHaveLength(100);

    // --no: the bin installed here, never a package fetched from the registry.
    const ran = run(
      'npx',
      [
        '--no',
        'volley',
        'run',
        'chat.jsonl',
        '-o',
        'results.jsonl',
        '--progress',
        'none',
        '--json',
      ],
      project,
    );
    expectSuccess(ran, 'npx volley run');
    expect(JSON.parse(ran.stdout)).toMatchObject({ exitCode: 0, succeeded: 100, failed: 0 });
    const records = (await readFile(join(project, 'results.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { custom_id: string; response: { status_code: number } });
    expect(records).toHaveLength(100);
    const ids = input.map((line) => (JSON.parse(line) as { custom_id: string }).custom_id);
    expect(new Set(records.map((record) => record.custom_id))).toEqual(new Set(ids));
    expect(records.every((record) => record.response.status_code === 200)).toBe(true);

    const version = run('npx', ['--no', '--', 'volley', '--version'], project);
    const manifest = JSON.parse(
      await readFile(join(project, 'node_modules/volley/package.json'), 'utf8'),
    ) as { version: string };
    expect(version.stdout.trim()).toBe(manifest.version);
  }, 60_000);

  it('type-checks a strict TypeScript project and runs the README example in both modes', async () => {
    const example = await readmeExample();
    await writeFile(join(project, 'example.mts'), example);
    // The worker-thread entry is bundled apart from the library: threads mode must find it.
    await writeFile(
      join(project, 'threads.mts'),
      example.replace(
        'createVolley({ logger: false })',
        "createVolley({ logger: false, mode: 'threads' })",
      ),
    );
    // The types are real, not `any`: a misspelt option must be an error, or the directive is.
    await writeFile(
      join(project, 'typo.mts'),
      [
        "import { createVolley } from 'volley';",
        '// @ts-expect-error: concurrency is misspelt',
        'await createVolley({ concurency: 4 });',
        '',
      ].join('\n'),
    );
    const compilerOptions = {
      target: 'es2023',
      lib: ['es2023'],
      module: 'nodenext',
      moduleResolution: 'nodenext',
      types: ['node'],
      strict: true,
      noUncheckedIndexedAccess: true,
      exactOptionalPropertyTypes: true,
      noEmit: true,
      // The shipped declarations are checked too, as in a project that does not skip them.
      skipLibCheck: false,
    };
    await writeFile(
      join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions, include: ['example.mts', 'threads.mts', 'typo.mts'] }),
    );
    expectSuccess(run(process.execPath, [TSC, '-p', 'tsconfig.json'], project), 'tsc');

    for (const file of ['example.mts', 'threads.mts']) {
      const ran = run(process.execPath, ['--import', TSX_LOADER, file], project);
      expectSuccess(ran, file);
      expect(ran.stdout).toMatch(/3 outcomes/);
      expect(ran.stdout).toMatch(/\[ 'optimist', 'pessimist' \]/);
    }
  }, 180_000);

  it('loads with require() from CommonJS', async () => {
    await writeFile(
      join(project, 'check.cjs'),
      [
        "const { createVolley, isVolleyError } = require('volley');",
        'createVolley({ logger: false }).then(async (volley) => {',
        "  const reply = await volley.chat({ messages: [{ role: 'user', content: 'hi' }] });",
        '  console.log(typeof isVolleyError, reply.object);',
        '  await volley.close();',
        '});',
      ].join('\n'),
    );
    const ran = run(process.execPath, ['check.cjs'], project);
    expectSuccess(ran, 'check.cjs');
    expect(ran.stdout.trim()).toBe('function chat.completion');
  });
});
