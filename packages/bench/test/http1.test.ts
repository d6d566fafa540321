/**
 * The load generator's HTTP/1.1 client against a raw TCP server that writes each response byte
 * for byte as scripted, split at the awkward places (inside the head, inside a chunk-size line,
 * between CR and LF), so every framing a real server may use is read the way it was sent.
 */
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { ResponseHead } from '../src/http1.js';
import { Http1Pool, serializeRequest } from '../src/http1.js';

interface Outcome {
  head?: ResponseHead;
  body: string;
  error?: string;
  sent: boolean;
}

/** One exchange on `pool`, settled when the client says it is over. */
function exchange(pool: Http1Pool, origin: string, body = '{"x":1}'): Promise<Outcome> {
  return new Promise((resolve) => {
    const outcome: Outcome = { body: '', sent: false };
    pool.dispatch(
      serializeRequest(
        origin,
        '/v1/chat/completions',
        { 'content-type': 'application/json' },
        Buffer.from(body),
      ),
      {
        onSent: () => {
          outcome.sent = true;
        },
        onHead: (head) => {
          outcome.head = head;
        },
        onData: (chunk) => {
          outcome.body += chunk.toString('utf8');
        },
        onComplete: () => resolve(outcome),
        onError: (code) => resolve({ ...outcome, error: code }),
      },
    );
  });
}

/** Writes `parts` one by one with a pause between, so each arrives as its own read. */
async function writeParts(socket: Socket, parts: readonly string[]): Promise<void> {
  for (const part of parts) {
    socket.write(part);
    await sleep(5);
  }
}

type Script = (socket: Socket, request: string, connection: number) => unknown;

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** A TCP server answering each complete request (head plus content-length body) with `script`. */
async function serve(
  script: Script,
): Promise<{ origin: string; requests: string[]; connections: () => number }> {
  const requests: string[] = [];
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    const connection = ++connections;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffer = '';
    socket.on('data', (data: Buffer) => {
      buffer += data.toString('latin1');
      const end = buffer.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = Number(/content-length: (\d+)/i.exec(buffer.slice(0, end))?.[1] ?? 0);
      if (buffer.length < end + 4 + length) return;
      const request = buffer.slice(0, end + 4 + length);
      buffer = buffer.slice(end + 4 + length);
      requests.push(request);
      void script(socket, request, connection);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(async () => {
    for (const socket of sockets) socket.destroy();
    server.close();
    await once(server, 'close');
  });
  const { port } = server.address() as AddressInfo;
  return { origin: `http://127.0.0.1:${port}`, requests, connections: () => connections };
}

function newPool(origin: string, idleTimeoutMs = 5000): Http1Pool {
  const pool = new Http1Pool({ origin, idleTimeoutMs, captureHeaders: ['x-volley-sim-timing'] });
  closers.push(() => pool.close());
  return pool;
}

describe('the load generator HTTP/1.1 client', () => {
  it('writes the pre-serialised request and reads a content-length answer split anywhere, reusing the connection', async () => {
    const body = '{"ok":true,"text":"héllo"}';
    const server = await serve((socket) =>
      writeParts(socket, [
        'HTTP/1.1 200 OK\r\nContent-Type: Application/JSON\r\nX-Volley-Sim-Timing: {"ttftMs":1}\r\n',
        `Content-Length: ${Buffer.byteLength(body)}\r`,
        '\n\r\n{"ok":true,',
        body.slice(11),
      ]),
    );
    const pool = newPool(server.origin);
    const first = await exchange(pool, server.origin);
    const second = await exchange(pool, server.origin);
    for (const outcome of [first, second]) {
      expect(outcome.error).toBeUndefined();
      expect(outcome.sent).toBe(true);
      expect(outcome.head?.status).toBe(200);
      expect(outcome.head?.contentType).toBe('application/json');
      expect(outcome.head?.captured.get('x-volley-sim-timing')).toBe('{"ttftMs":1}');
      expect(outcome.body).toBe(body);
    }
    expect(server.connections()).toBe(1);
    const host = new URL(server.origin).host;
    expect(server.requests[0]).toBe(
      `POST /v1/chat/completions HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n{"x":1}`,
    );
  });

  it('de-chunks a chunked answer with extensions and trailers, split inside size lines and CRLFs, after a 100 Continue', async () => {
    const server = await serve((socket) =>
      writeParts(socket, [
        'HTTP/1.1 100 Continue\r\n\r\n',
        'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n',
        '6;ext=1\r\ndata: \r',
        '\n1',
        '0\r\n{"ab":"cdefg"}\n\n\r\n',
        '2\r\n[D\r\n4\r\nONE]\r\n0\r\nx-trailer: 1\r\n',
        '\r\n',
      ]),
    );
    const pool = newPool(server.origin);
    const first = await exchange(pool, server.origin);
    expect(first.error).toBeUndefined();
    expect(first.head?.status).toBe(200);
    expect(first.body).toBe('data: {"ab":"cdefg"}\n\n[DONE]');
    const second = await exchange(pool, server.origin);
    expect(second.body).toBe(first.body);
    expect(server.connections()).toBe(1);
  });

  it('reads an answer delimited by the connection closing, and opens a new connection after it', async () => {
    const server = await serve(async (socket) => {
      await writeParts(socket, ['HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n', 'all ', 'of it']);
      socket.end();
    });
    const pool = newPool(server.origin);
    expect((await exchange(pool, server.origin)).body).toBe('all of it');
    expect((await exchange(pool, server.origin)).body).toBe('all of it');
    expect(server.connections()).toBe(2);
  });

  it("does not reuse a connection past the server's keep-alive timeout, less a margin", async () => {
    const server = await serve((socket) =>
      socket.write('HTTP/1.1 200 OK\r\nkeep-alive: timeout=1\r\ncontent-length: 2\r\n\r\nok'),
    );
    const pool = newPool(server.origin);
    expect((await exchange(pool, server.origin)).body).toBe('ok');
    expect((await exchange(pool, server.origin)).body).toBe('ok');
    expect(server.connections()).toBe(2);
  });

  it('reads an HTTP error with its body and keeps the connection', async () => {
    const server = await serve((socket) =>
      socket.write('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy'),
    );
    const pool = newPool(server.origin);
    const outcome = await exchange(pool, server.origin);
    expect(outcome.head?.status).toBe(503);
    expect(outcome.body).toBe('busy');
    await exchange(pool, server.origin);
    expect(server.connections()).toBe(1);
  });

  it('names each transport failure: closed mid-body, reset before answering, idle too long, refused, garbage', async () => {
    const midBody = await serve(async (socket) => {
      await writeParts(socket, ['HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nsome']);
      socket.destroy();
    });
    const cut = await exchange(newPool(midBody.origin), midBody.origin);
    expect(cut.body).toBe('some');
    expect(cut.error).toBe('UND_ERR_SOCKET');

    const reset = await serve((socket) => socket.resetAndDestroy());
    expect((await exchange(newPool(reset.origin), reset.origin)).error).toBe('ECONNRESET');

    const silent = await serve(() => {});
    const started = Date.now();
    const timedOut = await exchange(newPool(silent.origin, 200), silent.origin);
    expect(timedOut.error).toBe('ETIMEDOUT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);

    const refused = await serve(() => {});
    const port = new URL(refused.origin).port;
    await closers.pop()?.();
    const noServer = `http://127.0.0.1:${port}`;
    const failed = await exchange(newPool(noServer), noServer);
    expect(failed.error).toBe('ECONNREFUSED');
    expect(failed.sent).toBe(false);

    const garbage = await serve((socket) => socket.write('SSH-2.0-OpenSSH\r\n\r\n'));
    expect((await exchange(newPool(garbage.origin), garbage.origin)).error).toBe(
      'HPE_INVALID_RESPONSE',
    );
    const badChunk = await serve((socket) =>
      socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n'),
    );
    expect((await exchange(newPool(badChunk.origin), badChunk.origin)).error).toBe(
      'HPE_INVALID_RESPONSE',
    );
  });

  it('refuses header values that would inject a header, once, when the request is serialised', () => {
    expect(() =>
      serializeRequest('http://h:1', '/p', { 'x-a': 'v\r\nx-b: w' }, Buffer.alloc(0)),
    ).toThrow(/x-a/);
    expect(() => serializeRequest('http://h:1', '/p q', {}, Buffer.alloc(0))).toThrow(/path/);
  });

  it('a closed pool ends exchanges in flight and refuses new ones as aborted', async () => {
    const server = await serve(() => {});
    const pool = newPool(server.origin);
    const pending = exchange(pool, server.origin);
    await sleep(50);
    await pool.close();
    expect((await pending).error).toBe('UND_ERR_ABORTED');
    expect((await exchange(pool, server.origin)).error).toBe('UND_ERR_ABORTED');
  });

  it('cancel closes the socket of an exchange in flight and reports nothing more for it', async () => {
    let serverSaw: Socket | undefined;
    // The first connection never answers; later ones do.
    const server = await serve((socket, _request, connection) => {
      if (connection === 1) serverSaw = socket;
      else socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    });
    const pool = newPool(server.origin);
    const events: string[] = [];
    const request = serializeRequest(server.origin, '/v1/x', {}, Buffer.from('{}'));
    const silent = {
      onSent: () => events.push('sent'),
      onHead: () => events.push('head'),
      onData: () => events.push('data'),
      onComplete: () => events.push('complete'),
      onError: (code: string) => events.push(code),
    };
    const inFlight = pool.dispatch(request, silent);
    await sleep(50);
    expect(serverSaw).toBeDefined();
    const closed = once(serverSaw as Socket, 'close');
    // A cancel naming another exchange (this connection's next one, say) is a no-op.
    inFlight.cancel({ ...silent });
    inFlight.cancel(silent);
    await closed;
    await sleep(20);
    expect(events).toEqual(['sent']);
    // The pool goes on, on a new connection.
    expect((await exchange(pool, server.origin)).body).toBe('ok');
    expect(server.connections()).toBe(2);
  });
});
