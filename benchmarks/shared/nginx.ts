/**
 * The zero-latency reference server: nginx answering every request with `return 200` of one fixed
 * chat completion (or with one fixed file, for answers too large for its config: a long SSE stream). On 2 cores a Node server eats the core the client needs (`volley sim` spends
 * ~40-60 µs of CPU per request at 0 ms, about as much as the client); nginx spends a fraction of
 * that, so a client's own cost shows. It runs as the current user, not as a daemon and in one
 * process (`master_process off`), so its pid is the one whose CPU the runner reads from /proc, with
 * its config, pid file, logs and temp paths in a temp dir of its own.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SimServer } from '../throughput/processes.js';
import { stopChild } from '../throughput/processes.js';

const SEARCH_DIRS = ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin'];

/**
 * The path of a native tool (nginx, wrk). When it is missing and we run as root, installs the
 * Debian package that has it (`apt-get update && apt-get install -y <package>`); otherwise throws
 * saying how to install it.
 */
export function findOrInstall(binary: string, aptPackage: string): string {
  const find = (): string | undefined =>
    [...(process.env.PATH ?? '').split(':'), ...SEARCH_DIRS]
      .map((dir) => join(dir, binary))
      .find((path) => existsSync(path));
  const found = find();
  if (found !== undefined) return found;
  const how = `apt-get update && apt-get install -y ${aptPackage}`;
  if (process.getuid?.() !== 0) throw new Error(`${binary} is not installed; as root run: ${how}`);
  process.stderr.write(`${binary} is not installed: running ${how}\n`);
  execFileSync('sh', ['-c', how], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  const installed = find();
  if (installed === undefined) throw new Error(`${how} did not install ${binary}`);
  return installed;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * What nginx answers: one short JSON body from its config (`return 200`), or a file of any size
 * with its content type (nginx's config takes strings of a few KB at most).
 */
export type NginxAnswer = string | { file: string; contentType: string };

function location(dir: string, answer: NginxAnswer): string {
  if (typeof answer !== 'string') {
    // The static module refuses POST with 405; the error page sends the file with a 200 instead.
    return `location / {
      root ${dir}/www;
      try_files /answer =404;
      default_type ${answer.contentType};
      error_page 405 =200 /answer;
      add_header x-request-id req_nginx_reference;
    }`;
  }
  // The body goes inside a single-quoted nginx string, where `$` would start a variable.
  if (answer.includes('$')) throw new Error('the nginx body must not contain $');
  const quoted = answer.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
  return `location / {
      default_type application/json;
      add_header x-request-id req_nginx_reference;
      return 200 '${quoted}';
    }`;
}

function config(dir: string, port: number, answer: NginxAnswer): string {
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  # One connection serves a whole run: no reconnects inside a measured window.
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_buffer_size 64k;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    ${location(dir, answer)}
  }
}
`;
}

/**
 * Starts nginx on a free port, answering every path with `answer` (a string: as JSON). The URL
 * it resolves to ends in `/v1`, like `volley sim`'s.
 */
export async function startNginx(answer: NginxAnswer, timeoutMs = 10_000): Promise<SimServer> {
  const binary = findOrInstall('nginx', 'nginx');
  const dir = await mkdtemp(join(tmpdir(), 'volley-bench-nginx-'));
  if (typeof answer !== 'string') {
    await mkdir(join(dir, 'www'));
    await writeFile(join(dir, 'www', 'answer'), answer.file);
  }
  // The port is free when asked but could be taken before nginx binds it: then try another.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    await writeFile(join(dir, 'nginx.conf'), config(dir, port, answer));
    const child = spawn(
      binary,
      ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-2000);
    });
    const started = performance.now();
    while (child.exitCode === null && performance.now() - started < timeoutMs) {
      if (await accepts(port)) {
        if (child.pid === undefined) throw new Error('nginx has no pid');
        return {
          url: `http://127.0.0.1:${port}/v1`,
          pid: child.pid,
          process: child,
          stop: async () => {
            await stopChild(child);
            await rm(dir, { recursive: true, force: true });
          },
        };
      }
      await sleep(20);
    }
    await stopChild(child, 1000);
    if (attempt >= 3) {
      await rm(dir, { recursive: true, force: true });
      throw new Error(`nginx did not start on port ${port}: ${stderr}`);
    }
  }
}
