// Preloaded into the coordinator by cluster-batch/run.ts (`node --import`): every 100 ms the main
// thread's cumulative event-loop active and idle time, as one JSON line on the file descriptor
// named by VOLLEY_BENCH_LOOP_FD (a pipe the runner reads), so the runner can take the loop's
// utilisation over the same window as the CPU counters. Nothing of the CLI is changed.
// (No fstat of the descriptor here: on Node 20.20, an fstatSync in a preloaded module broke the
// CLI's later ESM resolution when fd 3 was a pipe.)
import { writeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';

const fd = Number(process.env.VOLLEY_BENCH_LOOP_FD);
if (isMainThread && Number.isInteger(fd) && fd > 2) {
  const timer = setInterval(() => {
    const { active, idle } = performance.eventLoopUtilization();
    try {
      writeSync(fd, `${JSON.stringify({ at: Date.now(), active, idle })}\n`);
    } catch {
      clearInterval(timer); // The runner went away.
    }
  }, 100);
  timer.unref();
}
