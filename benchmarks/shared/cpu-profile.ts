/**
 * Reads a V8 CPU profile (`.cpuprofile`, from the inspector or `node --cpu-prof`) and ranks where
 * the time went, for throughput/profile.ts and cli-run/profile.ts; and a sampled allocation
 * profile (`.heapprofile`, from `HeapProfiler.startSampling`) and ranks where the bytes were
 * allocated, for throughput/profile.ts --heap.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Where a frame's code lives, relative to `repoDir`, as `path:line`. */
function frameLocation(frame: CallFrame, repoDir: string): string {
  if (frame.url === '') return '(native)';
  const path = frame.url.startsWith('file://') ? fileURLToPath(frame.url) : frame.url;
  const shown = path.startsWith(repoDir) ? relative(repoDir, path) : path;
  // pnpm store paths are long and say little beyond the package name.
  return `${shown.replace(/^.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, '')}:${frame.lineNumber + 1}`;
}

interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}

/**
 * The functions that allocated the most bytes in one sampled allocation profile, as Markdown, with
 * bytes per request when `requests` is given. Self bytes: what the function itself allocated, not
 * its callees.
 */
export function summarizeHeapProfile(
  profilePath: string,
  options: { repoDir: string; top: number; requests?: number; promoted?: boolean },
): string {
  const what = options.promoted === true ? 'outlived young-generation GC' : 'allocated';
  const { head } = JSON.parse(readFileSync(profilePath, 'utf8')) as { head: HeapNode };
  const selfBytes = new Map<string, number>();
  let total = 0;
  const visit = (node: HeapNode): void => {
    if (node.selfSize > 0) {
      const key = `${node.callFrame.functionName || '(anonymous)'} | ${frameLocation(node.callFrame, options.repoDir)}`;
      selfBytes.set(key, (selfBytes.get(key) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const child of node.children) visit(child);
  };
  visit(head);
  const { requests } = options;
  const mib = (bytes: number): string => (bytes / 1048576).toFixed(1);
  // The bytes-per-request column only when the request count is known.
  const perRequest = (bytes: number): string =>
    requests === undefined ? '' : ` | ${(bytes / requests).toFixed(0)}`;
  let text = `\nprofile: ${relative(process.cwd(), profilePath)}\n${what}: ${mib(total)} MiB (sampled)`;
  if (requests !== undefined) text += `, ${(total / requests).toFixed(0)} B per request`;
  text += `\n\nTop ${options.top} functions by bytes ${what} (self)\n\n`;
  text +=
    requests === undefined
      ? '| % | MiB | function | location |\n|---:|---:|---|---|\n'
      : '| % | MiB | B/req | function | location |\n|---:|---:|---:|---|---|\n';
  const ranked = [...selfBytes.entries()].sort((a, b) => b[1] - a[1]).slice(0, options.top);
  for (const [key, bytes] of ranked)
    text += `| ${((bytes / total) * 100).toFixed(1)} | ${mib(bytes)}${perRequest(bytes)} | ${key} |\n`;
  return text;
}

/**
 * The top self-time functions of one V8 CPU profile as Markdown: overall, within packages/<name>/dist,
 * and by file (idle left out: the loop waiting on the network is not a cost). Paths are shown
 * relative to `repoDir`.
 */
export function summarizeProfile(
  profilePath: string,
  options: { repoDir: string; top: number },
): string {
  const { repoDir: REPO_DIR, top } = options;
  let text = '';
  const write = (chunk: string): void => {
    text += chunk;
  };
  const profile = JSON.parse(readFileSync(profilePath, 'utf8')) as CpuProfile;
  const frames = new Map<number, CallFrame>(profile.nodes.map((node) => [node.id, node.callFrame]));

  const location = (frame: CallFrame): string => frameLocation(frame, REPO_DIR);

  // Sample i lasts until sample i+1 (DevTools' convention): weight it by the next time delta.
  const selfMicros = new Map<string, number>();
  let totalMicros = 0;
  let idleMicros = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const frame = frames.get(profile.samples[i] ?? -1);
    const micros = profile.timeDeltas[i + 1] ?? 0;
    if (frame === undefined) continue;
    totalMicros += micros;
    if (frame.functionName === '(idle)') idleMicros += micros;
    const key = `${frame.functionName || '(anonymous)'}\t${location(frame)}`;
    selfMicros.set(key, (selfMicros.get(key) ?? 0) + micros);
  }

  // Idle is the loop waiting on the network: not a cost, so it is left out of the rankings.
  const ranked = [...selfMicros.entries()]
    .filter(([key]) => !key.startsWith('(idle)\t'))
    .sort((a, b) => b[1] - a[1]);
  const busyMicros = totalMicros - idleMicros;
  const table = (title: string, rows: Array<[string, number]>, byFile = false): void => {
    const head = byFile
      ? '| self % of busy | self ms | file |\n|---:|---:|---|'
      : '| self % of busy | self ms | function | location |\n|---:|---:|---|---|';
    write(`\n${title}\n\n${head}\n`);
    for (const [key, micros] of rows.slice(0, top)) {
      const [name, where] = key.split('\t');
      const cells = byFile ? name : `${name} | ${where}`;
      write(
        `| ${((micros / busyMicros) * 100).toFixed(1)} | ${(micros / 1000).toFixed(0)} | ${cells} |\n`,
      );
    }
  };

  write(
    `\nprofile: ${relative(process.cwd(), profilePath)}\nsampled ${(totalMicros / 1000).toFixed(0)} ms on this thread, ${(idleMicros / 1000).toFixed(0)} ms idle (${((idleMicros / totalMicros) * 100).toFixed(1)}%); percentages are of the busy time.\n`,
  );
  table(`Top ${top} self-time functions (all code)`, ranked);
  table(
    `Top ${top} self-time functions in packages/*/dist`,
    ranked.filter(([key]) => /\tpackages\/[^/]+\/dist\//.test(key)),
  );
  const byFile = new Map<string, number>();
  for (const [key, micros] of ranked) {
    const where = key.split('\t')[1] ?? '';
    const file = where.replace(/:\d+$/, '');
    const group = /^packages\/[^/]+\/dist\//.test(file)
      ? file
      : file.startsWith('node:')
        ? 'node: internals'
        : file.includes('undici/')
          ? 'undici (npm)'
          : file === '(native)'
            ? '(native: GC, writev, microtasks, program...)'
            : file;
    byFile.set(group, (byFile.get(group) ?? 0) + micros);
  }
  table(
    'Self time by file',
    [...byFile.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([file, micros]) => [`${file}\t`, micros] as [string, number]),
    true,
  );
  return text;
}
