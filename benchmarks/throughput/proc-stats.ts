/**
 * CPU counters from /proc, read by the runner around each measured window: the server's own CPU
 * (/proc/<pid>/stat) and the whole machine's (/proc/stat), so a run where something else on the
 * shared box was busy can be flagged instead of silently skewing the medians.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';

/** Clock ticks per second of the /proc counters; 100 on every common Linux, asked once anyway. */
export const CLK_TCK = ((): number => {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(value) && value > 0 ? value : 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of one process (all its threads), in ms; undefined once it is gone. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: fields resume after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of proc(5); fields[0] is field 3.
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) / CLK_TCK) * 1000;
  } catch {
    return undefined;
  }
}

export interface SystemCpu {
  /** Ticks spent running anything (user, nice, system, irq, softirq). */
  busy: number;
  /** Ticks the hypervisor gave to someone else: noise we cannot see as a process. */
  steal: number;
  total: number;
}

export function systemCpu(): SystemCpu | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const [
      ,
      user = 0,
      nice = 0,
      system = 0,
      idle = 0,
      iowait = 0,
      irq = 0,
      softirq = 0,
      steal = 0,
    ] = line.trim().split(/\s+/).map(Number);
    const busy = user + nice + system + irq + softirq;
    return { busy, steal, total: busy + idle + iowait + steal };
  } catch {
    return undefined;
  }
}

/** Cores in use over an interval, from two /proc/stat samples. */
export function systemCores(
  before: SystemCpu,
  after: SystemCpu,
  cores: number,
): { busyCores: number; stealCores: number } {
  const total = after.total - before.total;
  if (total <= 0) return { busyCores: 0, stealCores: 0 };
  return {
    busyCores: ((after.busy - before.busy) / total) * cores,
    stealCores: ((after.steal - before.steal) / total) * cores,
  };
}

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  totalMemGiB: number;
  node: string;
  platform: string;
  kernel: string;
  git: { revision: string; short: string; dirty: boolean };
  clkTck: number;
}

function git(args: string[], cwd: string): string {
  try {
    return execFileSync('git', args, {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return '';
  }
}

export function machineInfo(repoDir: string): MachineInfo {
  const revision = git(['rev-parse', 'HEAD'], repoDir) || 'unknown';
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    totalMemGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    kernel: readFirstLine('/proc/sys/kernel/osrelease') ?? 'unknown',
    // The packages run from dist/, which may be built from uncommitted work: say so.
    git: {
      revision,
      short: revision.slice(0, 7),
      dirty: git(['status', '--porcelain'], repoDir) !== '',
    },
    clkTck: CLK_TCK,
  };
}

function readFirstLine(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').split('\n', 1)[0];
  } catch {
    return undefined;
  }
}

export function loadAverage(): [number, number, number] {
  const [one = 0, five = 0, fifteen = 0] = loadavg();
  return [round2(one), round2(five), round2(fifteen)];
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}
