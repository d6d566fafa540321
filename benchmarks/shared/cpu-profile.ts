/**
 * Reads a V8 CPU profile (`.cpuprofile`, from the inspector or `node --cpu-prof`) and ranks where
 * the time went, for throughput/profile.ts and cli-run/profile.ts.
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

  const location = (frame: CallFrame): string => {
    if (frame.url === '') return '(native)';
    const path = frame.url.startsWith('file://') ? fileURLToPath(frame.url) : frame.url;
    const shown = path.startsWith(REPO_DIR) ? relative(REPO_DIR, path) : path;
    // pnpm store paths are long and say little beyond the package name.
    return `${shown.replace(/^.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, '')}:${frame.lineNumber + 1}`;
  };

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
