/**
 * `auto` mode: the main-loop actor and a pool of worker threads side by side, each request sent to
 * whichever suits it. Both report to the same sink, so the supervisor sees one dispatcher.
 *
 *   dispatch(requests) --route(request)--> 'async'   --> inline dispatcher (main loop)
 *                                      \-> 'threads' --> thread dispatcher (Piscina)
 */
import type { Dispatcher, WorkerStats, WorkRequest } from '@volley/core';

export type Route = 'async' | 'threads';

export interface RoutingDispatcherOptions {
  async: Dispatcher;
  threads: Dispatcher;
  route: (request: WorkRequest) => Route;
}

export function createRoutingDispatcher(options: RoutingDispatcherOptions): Dispatcher {
  const { route } = options;
  const targets = [options.async, options.threads] as const;
  return {
    kind: 'threads',
    dispatch(requests) {
      const toThreads: WorkRequest[] = [];
      const toLoop: WorkRequest[] = [];
      for (const request of requests)
        (route(request) === 'threads' ? toThreads : toLoop).push(request);
      if (toLoop.length > 0) options.async.dispatch(toLoop);
      if (toThreads.length > 0) options.threads.dispatch(toThreads);
    },
    cancel(ids) {
      // Attempt ids are unique across both: the one holding the attempt aborts it.
      for (const target of targets) target.cancel(ids);
    },
    async stats(): Promise<WorkerStats[]> {
      return (await Promise.all(targets.map((target) => target.stats()))).flat();
    },
    async close() {
      await Promise.all(targets.map((target) => target.close()));
    },
    async destroy() {
      await Promise.all(targets.map((target) => target.destroy()));
    },
  };
}
