/**
 * A real HTTP gateway on port 0 in front of the simulator, for tests of what a client puts on the
 * wire: it records every request's target and headers, refuses (401) those `check` rejects, and
 * forwards the rest to the simulator with the path under `prefix` mapped to `/v1`, the way Azure
 * OpenAI's `/openai/deployments/<name>` or a corporate gateway's path maps to the model server.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { createServer, request } from 'node:http';

export interface SeenRequest {
  method: string;
  /** The request target as sent: path and query. */
  target: string;
  headers: IncomingHttpHeaders;
}

export interface Gateway {
  /** `http://127.0.0.1:<port><prefix>`: the base URL a client is given (add a query if wanted). */
  readonly url: string;
  readonly seen: SeenRequest[];
  close(): Promise<void>;
}

/**
 * Starts a gateway. `check` returns why a request is refused, or undefined to forward it; a
 * refusal's body echoes the credential headers received, as careless proxies do, so tests can
 * check a client never repeats them.
 */
export async function startGateway(
  simUrl: string,
  prefix: string,
  check: (seen: SeenRequest) => string | undefined,
): Promise<Gateway> {
  const sim = new URL(simUrl);
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const entry: SeenRequest = {
      method: req.method ?? '',
      target: req.url ?? '',
      headers: req.headers,
    };
    seen.push(entry);
    const path = entry.target.split('?')[0] ?? '';
    const refusal = path.startsWith(`${prefix}/`)
      ? check(entry)
      : `path ${path} is not under ${prefix}`;
    if (refusal !== undefined) {
      const echo = `${refusal}; got authorization=${String(req.headers.authorization)} api-key=${String(req.headers['api-key'])}`;
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: echo, type: 'invalid_request_error' } }));
      req.resume();
      return;
    }
    const upstream = request(
      {
        host: sim.hostname,
        port: sim.port,
        method: req.method,
        path: `/v1${path.slice(prefix.length)}`,
        headers: { 'content-type': 'application/json' },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}${prefix}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
