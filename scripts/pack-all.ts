/**
 * Packs what a user installs: one tarball, `volley`, holding the library (`import { createVolley }
 * from 'volley'`, with its types) and the `volley` command. Build first (`pnpm pack-all` does).
 *
 *   node --import tsx scripts/pack-all.ts [--out dist-packages]
 *
 * The internal workspace packages (@volley/core, workers, sim, cli) are bundled into it, not
 * published: see "Packaging" in packages/volley/README.md for why. Rollup joins the built `dist/`
 * of every workspace package reached from the entries into ES modules that share chunks (one copy
 * of each module, so `instanceof VolleyError` holds between the library and the command), and
 * rollup-plugin-dts does the same for the declarations. Third-party packages stay dependencies,
 * with the ranges the workspace declares (`catalog:` resolved). A worker-thread entry that the code
 * finds with `new URL('./x.js', import.meta.url)` is bundled as its own entry beside the chunk
 * that names it, so Piscina still finds it.
 *
 * Then it checks the tarball and fails on any problem: only the expected files, no workspace
 * protocol or import of an internal package left, every external import declared, and publint and
 * @arethetypeswrong/cli clean. It prints the file list and sizes.
 */

import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Plugin, RollupOutput } from 'rollup';
import { rollup } from 'rollup';
import { dts } from 'rollup-plugin-dts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name: string): string => join(ROOT, 'node_modules', '.bin', name);

/** The published package takes its name, version and metadata from this workspace package. */
const LIBRARY = 'volley';
/** ...and its `bin` (and the module the bin loads) from this one. */
const COMMAND = '@volley/cli';

interface Manifest {
  name: string;
  version: string;
  description?: string;
  license?: string;
  engines?: Record<string, string>;
  exports?: Record<string, string | Record<string, string>>;
  bin?: Record<string, string>;
  dependencies?: Record<string, string>;
}

interface WorkspacePackage {
  dir: string;
  manifest: Manifest;
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

async function readWorkspace(): Promise<Map<string, WorkspacePackage>> {
  const packages = new Map<string, WorkspacePackage>();
  for (const entry of await readdir(join(ROOT, 'packages'), { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const dir = join(ROOT, 'packages', entry.name);
    const manifest = await readJson<Manifest>(join(dir, 'package.json'));
    packages.set(manifest.name, { dir, manifest });
  }
  return packages;
}

/**
 * The default catalog of pnpm-workspace.yaml: the `catalog:` block of `name: range` lines. Only
 * that shape is read; anything else in the block is an error rather than a silent guess.
 */
function parseCatalog(yaml: string): Map<string, string> {
  const catalog = new Map<string, string>();
  const lines = yaml.split('\n');
  const start = lines.findIndex((line) => /^catalog:\s*$/.test(line));
  if (start < 0) return catalog;
  for (const line of lines.slice(start + 1)) {
    if (/^\s*(#.*)?$/.test(line)) continue;
    if (!/^\s/.test(line)) break;
    const match =
      /^\s+(?:"([^"]+)"|'([^']+)'|([^\s:'"]+)):\s*(?:"([^"]+)"|'([^']+)'|(\S+))\s*$/.exec(line);
    const name = match?.[1] ?? match?.[2] ?? match?.[3];
    const range = match?.[4] ?? match?.[5] ?? match?.[6];
    if (name === undefined || range === undefined) {
      throw new Error(`pnpm-workspace.yaml: cannot read the catalog line ${JSON.stringify(line)}`);
    }
    catalog.set(name, range);
  }
  return catalog;
}

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`; `node:fs` → undefined. */
function packageNameOf(specifier: string): string | undefined {
  if (specifier.startsWith('node:') || specifier.startsWith('.') || specifier.startsWith('/')) {
    return undefined;
  }
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

function entryFile(pkg: WorkspacePackage, condition: 'default' | 'types'): string {
  const root = pkg.manifest.exports?.['.'];
  const target = typeof root === 'string' ? root : root?.[condition];
  if (target === undefined) {
    throw new Error(`${pkg.manifest.name}: package.json exports["."] has no "${condition}"`);
  }
  return join(pkg.dir, target);
}

function packageOfFile(workspace: Map<string, WorkspacePackage>, file: string): string | undefined {
  for (const [name, pkg] of workspace) {
    if (file.startsWith(pkg.dir + sep)) return name;
  }
  return undefined;
}

/**
 * Resolves workspace package names to their built entry (`default` for code, `types` for
 * declarations) and marks every other bare specifier external.
 */
function workspaceResolver(
  workspace: Map<string, WorkspacePackage>,
  condition: 'default' | 'types',
): Plugin {
  return {
    name: 'volley-workspace',
    resolveId(source) {
      const name = packageNameOf(source);
      if (source.startsWith('node:')) return { id: source, external: true };
      if (name === undefined) return null;
      const pkg = workspace.get(name);
      if (pkg === undefined) return { id: source, external: true };
      if (source !== name) throw new Error(`deep import of a workspace package: ${source}`);
      return entryFile(pkg, condition);
    },
  };
}

const WORKER_URL = /new URL\(\s*(['"])(\.\/[^'"]+\.js)\1\s*,\s*import\.meta\.url\s*\)/g;

/**
 * Bundles each file the code locates with `new URL('./x.js', import.meta.url)` (the Piscina worker
 * entry) as an entry of its own, named as it is named in the code. Chunks are written to the same
 * folder as entries (see chunkFileNames), so the URL still points at it from any chunk.
 */
function urlEntries(): Plugin {
  const emitted = new Map<string, string>();
  return {
    name: 'volley-url-entries',
    transform(code, id) {
      for (const match of code.matchAll(WORKER_URL)) {
        const fileName = (match[2] as string).slice(2);
        const target = resolve(dirname(id), fileName);
        const previous = emitted.get(fileName);
        if (previous !== undefined && previous !== target) {
          throw new Error(`two files are located as ./${fileName}: ${previous} and ${target}`);
        }
        if (previous === undefined) {
          emitted.set(fileName, target);
          this.emitFile({ type: 'chunk', id: target, fileName });
        }
      }
      return null;
    },
  };
}

interface Bundled {
  /** Workspace packages whose code was bundled. */
  reached: Set<string>;
  /** Packages imported (statically or dynamically) by the output. */
  imported: Set<string>;
  files: string[];
}

async function bundleCode(
  workspace: Map<string, WorkspacePackage>,
  entries: Record<string, string>,
  outDir: string,
): Promise<Bundled> {
  const warnings: string[] = [];
  const build = await rollup({
    input: entries,
    plugins: [workspaceResolver(workspace, 'default'), urlEntries()],
    onwarn(warning) {
      warnings.push(`${warning.code ?? 'WARNING'}: ${warning.message}`);
    },
    // The code keeps every module's side effects (logger set-up, worker start-up) as written.
    treeshake: { moduleSideEffects: true },
  });
  const { output } = await build.write({
    dir: outDir,
    format: 'es',
    entryFileNames: '[name].js',
    chunkFileNames: '[name]-[hash].js',
    sourcemap: false,
  });
  await build.close();
  if (warnings.length > 0) throw new Error(`rollup warned:\n${warnings.join('\n')}`);

  // A chunk's imports name the other chunks by file name, and the externals by specifier.
  const files = new Set(output.map((item) => item.fileName));
  const reached = new Set<string>();
  const imported = new Set<string>();
  for (const chunk of output) {
    if (chunk.type !== 'chunk') continue;
    for (const id of chunk.moduleIds) {
      const name = packageOfFile(workspace, id);
      if (name !== undefined) reached.add(name);
    }
    for (const id of [...chunk.imports, ...chunk.dynamicImports]) {
      if (files.has(id)) continue;
      const name = packageNameOf(id);
      if (name !== undefined) imported.add(name);
    }
  }
  await checkUrlTargets(output, outDir);
  return { reached, imported, files: [...files] };
}

/** Every `new URL('./x.js', import.meta.url)` in the output must name a file that is there. */
async function checkUrlTargets(output: RollupOutput['output'], outDir: string): Promise<void> {
  const names = new Set(output.map((item) => item.fileName));
  for (const chunk of output) {
    if (chunk.type !== 'chunk') continue;
    for (const match of chunk.code.matchAll(WORKER_URL)) {
      if (!names.has(join(dirname(chunk.fileName), match[2] as string))) {
        throw new Error(`${chunk.fileName} locates ${match[2]}, which is not in ${outDir}`);
      }
    }
  }
}

async function bundleTypes(
  workspace: Map<string, WorkspacePackage>,
  input: string,
  outFile: string,
): Promise<Set<string>> {
  const build = await rollup({
    input,
    plugins: [workspaceResolver(workspace, 'types'), dts({ respectExternal: true })],
    onwarn(warning) {
      throw new Error(`rollup-plugin-dts: ${warning.message}`);
    },
  });
  const { output } = await build.write({ file: outFile, format: 'es' });
  await build.close();
  const imported = new Set<string>();
  for (const chunk of output) {
    if (chunk.type !== 'chunk') continue;
    for (const id of chunk.imports) {
      const name = packageNameOf(id);
      if (name !== undefined) imported.add(name);
    }
  }
  return imported;
}

/**
 * The third-party dependencies of the bundled workspace packages, with `catalog:` resolved. Two
 * packages asking for different ranges of one dependency is an error: the bundle has one copy.
 */
function externalDependencies(
  workspace: Map<string, WorkspacePackage>,
  reached: Iterable<string>,
  catalog: Map<string, string>,
): Record<string, string> {
  const dependencies = new Map<string, { range: string; from: string }>();
  for (const name of reached) {
    const pkg = workspace.get(name) as WorkspacePackage;
    for (const [dep, spec] of Object.entries(pkg.manifest.dependencies ?? {})) {
      if (workspace.has(dep)) continue;
      if (spec.startsWith('workspace:')) throw new Error(`${name}: ${dep} is not in the workspace`);
      const range = spec === 'catalog:' || spec === 'catalog:default' ? catalog.get(dep) : spec;
      if (range === undefined || range.startsWith('catalog:')) {
        throw new Error(`${name}: ${dep}@${spec} is not in the default catalog`);
      }
      const seen = dependencies.get(dep);
      if (seen !== undefined && seen.range !== range) {
        throw new Error(`${dep}: ${seen.from} wants ${seen.range}, ${name} wants ${range}`);
      }
      dependencies.set(dep, { range, from: name });
    }
  }
  return Object.fromEntries(
    [...dependencies]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([dep, { range }]) => [dep, range]),
  );
}

/** Every reached workspace package must declare the same `engines`: the tarball has one. */
function sharedEngines(
  workspace: Map<string, WorkspacePackage>,
  reached: Iterable<string>,
): Record<string, string> {
  const library = workspace.get(LIBRARY) as WorkspacePackage;
  const engines = library.manifest.engines;
  if (engines?.node === undefined) throw new Error(`${LIBRARY}: package.json has no engines.node`);
  for (const name of reached) {
    const other = (workspace.get(name) as WorkspacePackage).manifest.engines;
    if (JSON.stringify(other) !== JSON.stringify(engines)) {
      throw new Error(
        `${name}: engines ${JSON.stringify(other)} differ from ${LIBRARY}'s ${JSON.stringify(engines)}`,
      );
    }
  }
  return engines;
}

function run(command: string, args: string[], cwd: string): string {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8' });
  if (result.error !== undefined) throw result.error;
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} exited ${result.status}:\n${result.stdout}${result.stderr}`,
    );
  }
  return result.stdout;
}

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  files: Array<{ path: string; size: number }>;
}

/** What a tarball may hold; anything else (maps, tests, tsbuildinfo, sources) fails the pack. */
const ALLOWED_FILES = [
  /^package\.json$/,
  /^README\.md$/,
  /^LICENSE$/,
  /^bin\/[\w-]+\.js$/,
  /^dist\/[\w-]+\.js$/,
  /^dist\/index\.d\.ts$/,
];

async function checkTarballFiles(stage: string, packed: PackResult): Promise<void> {
  const problems: string[] = [];
  for (const file of packed.files) {
    if (!ALLOWED_FILES.some((pattern) => pattern.test(file.path))) {
      problems.push(`unexpected file ${file.path}`);
    }
    if (/\.(js|ts)$/.test(file.path)) {
      const text = await readFile(join(stage, file.path), 'utf8');
      // A workspace package name left in shipped code or types cannot resolve for a user.
      const internal = /(?:from\s+|import\s*\(\s*)['"](@volley\/[^'"]+)['"]/.exec(text);
      if (internal) problems.push(`${file.path} imports ${internal[1]}`);
    }
  }
  for (const required of ['package.json', 'README.md', 'LICENSE', 'dist/index.d.ts']) {
    if (!packed.files.some((file) => file.path === required)) problems.push(`${required} missing`);
  }
  const manifest = await readFile(join(stage, 'package.json'), 'utf8');
  if (/"(workspace|catalog):/.test(manifest)) problems.push('package.json keeps a pnpm protocol');
  if (problems.length > 0) throw new Error(`${packed.filename}:\n  ${problems.join('\n  ')}`);
}

function formatSize(bytes: number): string {
  return bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} kB` : `${bytes} B`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: 'string', default: 'dist-packages' } } });
  const outDir = resolve(values.out);
  const workspace = await readWorkspace();
  const library = workspace.get(LIBRARY);
  const command = workspace.get(COMMAND);
  if (library === undefined || command === undefined) {
    throw new Error(`the workspace has no ${LIBRARY} or ${COMMAND} package`);
  }
  const catalog = parseCatalog(await readFile(join(ROOT, 'pnpm-workspace.yaml'), 'utf8'));

  const stage = await mkdtemp(join(tmpdir(), 'volley-pack-'));
  try {
    // The bin files load `../dist/<name>.js`: that name becomes the command's entry.
    const binFiles = Object.entries(command.manifest.bin ?? {});
    const entries: Record<string, string> = { index: entryFile(library, 'default') };
    await mkdir(join(stage, 'bin'), { recursive: true });
    for (const [, file] of binFiles) {
      const text = await readFile(join(command.dir, file), 'utf8');
      const loads = [...text.matchAll(/['"]\.\.\/dist\/([\w-]+)\.js['"]/g)].map((m) => m[1]);
      if (loads.length !== 1) throw new Error(`${file} must load exactly one ../dist/<name>.js`);
      const name = loads[0] as string;
      entries[name] = join(command.dir, 'dist', `${name}.js`);
      await copyFile(join(command.dir, file), join(stage, 'bin', file.split('/').pop() as string));
    }

    const code = await bundleCode(workspace, entries, join(stage, 'dist'));
    const typeImports = await bundleTypes(
      workspace,
      entryFile(library, 'types'),
      join(stage, 'dist', 'index.d.ts'),
    );

    const dependencies = externalDependencies(workspace, code.reached, catalog);
    for (const name of [...code.imported, ...typeImports]) {
      if (!(name in dependencies)) {
        throw new Error(`the bundle imports ${name}, which no bundled package depends on`);
      }
    }
    const manifest = {
      name: library.manifest.name,
      version: library.manifest.version,
      description: library.manifest.description,
      license: library.manifest.license,
      type: 'module',
      engines: sharedEngines(workspace, code.reached),
      sideEffects: false,
      exports: {
        '.': { types: './dist/index.d.ts', default: './dist/index.js' },
        './package.json': './package.json',
      },
      main: './dist/index.js',
      types: './dist/index.d.ts',
      bin: Object.fromEntries(
        binFiles.map(([name, file]) => [name, `bin/${file.split('/').pop() as string}`]),
      ),
      files: ['dist', 'bin'],
      dependencies,
    };
    await writeFile(join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await copyFile(join(library.dir, 'README.md'), join(stage, 'README.md'));
    await copyFile(join(ROOT, 'LICENSE'), join(stage, 'LICENSE'));

    await mkdir(outDir, { recursive: true });
    // An older version's tarball left beside the new one would make `npm i <dir>/*.tgz` install
    // two copies of the package.
    const stale = new RegExp(`^${manifest.name}-\\d.*\\.tgz$`);
    for (const name of await readdir(outDir)) {
      if (stale.test(name)) await rm(join(outDir, name));
    }
    const packed = (
      JSON.parse(
        run('npm', ['pack', '--json', '--pack-destination', outDir, stage], stage),
      ) as PackResult[]
    )[0] as PackResult;
    await checkTarballFiles(stage, packed);
    const tarball = join(outDir, packed.filename);

    // publint reads the staged folder (it packs it with npm itself); attw reads the tarball, with
    // every rule but one: the package is ESM by design, and `require('volley')` works through
    // Node's require(esm) on every Node that `engines` admits (20.19+), which attw's TypeScript
    // (5.6) predates, so its CJS-resolves-to-ESM rule would flag it regardless.
    const publint = run(bin('publint'), ['run', stage, '--strict', '--pack', 'npm'], stage);
    const attw = run(
      bin('attw'),
      [
        tarball,
        '--ignore-rules',
        'cjs-resolves-to-esm',
        '--no-definitely-typed',
        '--format',
        'ascii',
      ],
      stage,
    );

    console.log(
      `${relative(ROOT, tarball) || tarball}  ${formatSize(packed.size)} packed, ${formatSize(packed.unpackedSize)} unpacked`,
    );
    for (const file of packed.files)
      console.log(`  ${formatSize(file.size).padStart(9)}  ${file.path}`);
    console.log(`  bundled: ${[...code.reached].sort().join(', ')}`);
    console.log(
      `  dependencies: ${Object.entries(dependencies)
        .map(([d, r]) => `${d}@${r}`)
        .join(', ')}`,
    );
    console.log(`publint: ${publint.trim().split('\n').join('\n  ')}`);
    console.log(`attw: ${attw.trim().split('\n').join('\n  ')}`);
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

await main();
