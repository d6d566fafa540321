/**
 * CPU counters from /proc, read by the runner around each measured window: the server's own CPU
 * (/proc/<pid>/stat) and the whole machine's (/proc/stat), so a run where something else on the
 * shared box was busy can be flagged instead of silently skewing the medians.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
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

/**
 * utime + stime of one process (all its threads), in ms; with `tid`, of that thread only (`tid`
 * = `pid`: the main thread, a Node process's event loop); undefined once it is gone.
 */
export function processCpuMs(pid: number, tid?: number): number | undefined {
  try {
    const path = tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`;
    const stat = readFileSync(path, 'utf8');
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

/**
 * Time one thread spent runnable but waiting for a CPU, in ms (field 2 of
 * /proc/<pid>/task/<tid>/schedstat): on a shared box, what an event loop's utilisation counts as
 * busy without running. Undefined when the kernel keeps no schedstats or the thread is gone.
 */
export function threadRunQueueWaitMs(pid: number, tid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ');
    const waitNs = Number(fields[1]);
    return Number.isFinite(waitNs) ? waitNs / 1e6 : undefined;
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

/**
 * CPU (ms) of this process's children that have exited and been waited for (cutime + cstime of
 * /proc/self/stat): the exact whole-life CPU of a child process, all its threads and its own
 * waited-for children included, read once the child's `exit` event has fired.
 */
export function exitedChildrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 16 and 17 of proc(5); fields[0] is field 3.
  return ((Number(fields[13]) + Number(fields[14])) / CLK_TCK) * 1000;
}

/** Peak resident set (VmHWM) of a live process in MiB; undefined once it is gone. */
export function peakRssMb(pid: number): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? undefined : Number(match[1]) / 1024;
  } catch {
    return undefined;
  }
}

/**
 * CPU (ms) of each live thread of a process, by thread id, from /proc/<pid>/task/<tid>/stat; the
 * main thread's id is the pid. A thread that has exited is no longer listed (its time moves to
 * the process total), so a caller that wants every thread samples this and keeps each id's
 * largest value. Empty once the process is gone.
 */
export function threadCpuMs(pid: number): Map<number, number> {
  const byThread = new Map<number, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return byThread;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      byThread.set(Number(tid), ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1000);
    } catch {
      // The thread exited between the listing and the read.
    }
  }
  return byThread;
}
