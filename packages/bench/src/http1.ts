/**
 * A minimal HTTP/1.1 client for load generation: keep-alive connections, one request in flight
 * per connection, each request written as one pre-serialised buffer, responses framed by
 * `content-length`, `chunked` or connection close and handed over as raw body bytes.
 *
 * Why not undici: a load generator must cost less per request than the server it measures, and
 * on a 2-core machine it shares the CPU with that server. Against a zero-latency `volley sim`,
 * a closed loop of bare `undici.Pool#dispatch` calls cost 16.9 µs of CPU per request
 * (`Client` per lane 14.9 µs) where autocannon, with its fixed request bytes and no request
 * object, costs 14, and a socket writing fixed bytes 8 (2026-12-07, benchmarks/bench-cmd).
 * undici builds a request object, validates and re-serialises the headers, arms its timers and
 * writes head and body separately for every request; none of that changes between two requests
 * of a benchmark. What undici does that this does not: pipelining, HTTP/2, proxies, redirects,
 * retries, request bodies other than a buffer, all of which a benchmark must not use anyway.
 *
 *   dispatch(request, exchange)
 *     idle connection (LIFO, still inside the server's keep-alive) ─┐
 *     or a new one (unlimited: a cap would queue and hide it)   ────┴► write(bytes) ─► onSent
 *   socket data ─► head (status, headers) ─► onHead ─► body bytes ─► onData ... ─► onComplete
 *   socket error, close before the end, idle past the timeout ─► onError(code)
 *   dispatch(...).cancel(exchange) (a hedge's loser) ─► socket destroyed, no further callback
 */

import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/** What the caller learns about one exchange; every callback fires at most once except onData. */
export interface Exchange {
  /** Just before the request's bytes are written to the socket. */
  onSent(): void;
  /** The final (non-1xx) response head. */
  onHead(head: ResponseHead): void;
  /** Body bytes as they arrive, de-chunked; valid only during the call (copy what you keep). */
  onData(chunk: Buffer): void;
  onComplete(): void;
  /** A transport failure, named by a Node error code (`ECONNRESET`, `ETIMEDOUT`, ...). */
  onError(code: string): void;
}

/** A request in flight, as {@link Http1Pool.dispatch} returns it. */
export interface InFlight {
  /**
   * Destroys the connection if it still carries `exchange` (a hedge's loser): the server sees the
   * client go away, and `exchange` hears nothing more. A no-op once the exchange has ended.
   */
  cancel(exchange: Exchange): void;
}

/** Returned for a dispatch on a closed pool: its exchange already ends with an error. */
const NOT_IN_FLIGHT: InFlight = { cancel() {} };

/** The parts of a response head a benchmark reads. */
export interface ResponseHead {
  status: number;
  /** `content-type`, lower-cased; empty when absent. */
  contentType: string;
  /** Values of the headers named in {@link Http1PoolOptions.captureHeaders}, by lower-cased name. */
  captured: ReadonlyMap<string, string>;
}

/** Options of {@link Http1Pool}. */
export interface Http1PoolOptions {
  /** `http://host:port` or `https://host:port`. */
  origin: string;
  /** No byte for this long while a request is in flight (connect, head, between body chunks): `ETIMEDOUT`. */
  idleTimeoutMs: number;
  /** Reuse a connection idle at most this long when the server sent no `keep-alive: timeout`. */
  keepAliveMs?: number;
  /** Response headers whose value the exchange should see (lower-case names). */
  captureHeaders?: readonly string[];
}

/** Largest response head accepted; a server sending more is broken or hostile. */
const MAX_HEAD_BYTES = 64 * 1024;
/**
 * A server's `keep-alive: timeout=N` is shortened by this much before a connection is reused
 * near its end (undici's keepAliveTimeoutThreshold): a request written as the server closes the
 * socket would fail through no fault of the server.
 */
const KEEP_ALIVE_MARGIN_MS = 1000;
/** A response this client cannot read: a transport error, as undici's parser errors are. */
const BAD_RESPONSE = 'HPE_INVALID_RESPONSE';
/** Shared by every head that captured nothing (most of them). */
const NONE: ReadonlyMap<string, string> = new Map();
/** The idle limit passed while a request was in flight. */
export const TIMEOUT = 'ETIMEDOUT';
const HEAD_END = Buffer.from('\r\n\r\n');

/**
 * Serialises one request: request line, `host`, the given headers, `content-length`, body.
 * Header names and values are checked here, once, so the hot path never re-validates.
 *
 * @example
 * const bytes = serializeRequest('http://127.0.0.1:8000', '/v1/chat/completions',
 *   { 'content-type': 'application/json' }, Buffer.from('{"model":"m"}'));
 */
export function serializeRequest(
  origin: string,
  path: string,
  headers: Record<string, string>,
  body: Buffer,
): Buffer {
  if (!/^\/[\u0021-\u00ff]*$/.test(path)) throw new TypeError(`invalid request path: ${path}`);
  let head = `POST ${path} HTTP/1.1\r\nhost: ${new URL(origin).host}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (lower === 'host' || lower === 'content-length' || lower === 'transfer-encoding') continue;
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name))
      throw new TypeError(`invalid header name: ${name}`);
    if (/[\r\n\0]/.test(value)) throw new TypeError(`invalid value of header ${name}`);
    head += `${name}: ${value}\r\n`;
  }
  head += `content-length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

/**
 * Keep-alive connections to one origin, as many as there are requests in flight.
 *
 * @example
 * const pool = new Http1Pool({ origin: 'http://127.0.0.1:8000', idleTimeoutMs: 60_000 });
 * pool.dispatch(serializeRequest(origin, '/v1/models', {}, Buffer.alloc(0)), exchange);
 * await pool.close();
 */
export class Http1Pool {
  readonly #host: string;
  readonly #port: number;
  readonly #tls: boolean;
  readonly #idleTimeoutMs: number;
  readonly #keepAliveMs: number;
  readonly #capture: ReadonlySet<string>;
  /** Free connections, most recently used last. */
  readonly #idle: Connection[] = [];
  readonly #all = new Set<Connection>();
  readonly #readBuffer = Buffer.allocUnsafe(64 * 1024);
  #closed = false;

  constructor(options: Http1PoolOptions) {
    const url = new URL(options.origin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new TypeError(`unsupported protocol ${url.protocol}`);
    this.#tls = url.protocol === 'https:';
    this.#host = url.hostname.replace(/^\[|\]$/g, '');
    this.#port = url.port === '' ? (this.#tls ? 443 : 80) : Number(url.port);
    this.#idleTimeoutMs = options.idleTimeoutMs;
    this.#keepAliveMs = options.keepAliveMs ?? 30_000;
    this.#capture = new Set(options.captureHeaders ?? []);
  }

  /** Sends `request` (from {@link serializeRequest}) on a free connection, or a new one. */
  dispatch(request: Buffer, exchange: Exchange): InFlight {
    if (this.#closed) {
      queueMicrotask(() => exchange.onError('UND_ERR_ABORTED'));
      return NOT_IN_FLIGHT;
    }
    const now = performance.now();
    let connection = this.#idle.pop();
    while (connection !== undefined && !connection.reusableAt(now)) {
      connection.destroy();
      connection = this.#idle.pop();
    }
    if (connection === undefined) connection = this.#open();
    connection.send(request, exchange);
    return connection;
  }

  /** Destroys every connection; exchanges in flight end with `UND_ERR_ABORTED`. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const connection of this.#all) connection.destroy();
    this.#all.clear();
    this.#idle.length = 0;
  }

  #open(): Connection {
    let connection: Connection | undefined;
    const socket = this.#tls
      ? tlsConnect({
          host: this.#host,
          port: this.#port,
          ALPNProtocols: ['http/1.1'],
          // SNI takes host names only (an IP address there is deprecated, DEP0123).
          ...(isIP(this.#host) === 0 ? { servername: this.#host } : {}),
        })
      : netConnect({
          host: this.#host,
          port: this.#port,
          // Reads land in one buffer the pool reuses, with no stream machinery and no 'data'
          // event: the read path cost ~2 µs per request less (2026-12-07). Safe because a read
          // is fully handled (copied or decoded) before the next one on this thread.
          onread: {
            buffer: this.#readBuffer,
            callback: (bytes: number, buffer: Uint8Array): boolean => {
              connection?.read(buffer.subarray(0, bytes) as Buffer);
              return true;
            },
          },
        });
    if (this.#tls) socket.on('data', (chunk: Buffer) => connection?.read(chunk));
    socket.setNoDelay(true);
    socket.setTimeout(this.#idleTimeoutMs);
    connection = new Connection(socket, this.#tls, this.#keepAliveMs, this.#capture, {
      free: (c) => {
        if (this.#closed) c.destroy();
        else this.#idle.push(c);
      },
      gone: (c) => {
        this.#all.delete(c);
        const i = this.#idle.indexOf(c);
        if (i !== -1) this.#idle.splice(i, 1);
      },
    });
    this.#all.add(connection);
    return connection;
  }
}

interface Owner {
  free(connection: Connection): void;
  gone(connection: Connection): void;
}

/** Where the response parser is. */
const S = {
  head: 0,
  length: 1,
  chunkSize: 2,
  chunkData: 3,
  chunkEnd: 4,
  trailers: 5,
  untilClose: 6,
} as const;

/** The value of an ASCII digit byte; NaN for anything else. */
function digit(byte: number | undefined): number {
  return byte !== undefined && byte >= 48 && byte <= 57 ? byte - 48 : Number.NaN;
}

/** Whether the bytes at `at` spell `name` (lower-case) in any case. */
function nameIs(bytes: Buffer, at: number, name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    let c = bytes[at + i] as number;
    if (c >= 65 && c <= 90) c += 32;
    if (c !== name.charCodeAt(i)) return false;
  }
  return true;
}

/** The trimmed value of the header line whose colon is at `colon`. */
function headerValue(bytes: Buffer, colon: number, lineEnd: number): string {
  return bytes.toString('latin1', colon + 1, lineEnd).trim();
}

/** One socket and the response it is reading. */
class Connection implements InFlight {
  readonly #socket: Socket;
  readonly #owner: Owner;
  readonly #defaultKeepAliveMs: number;
  readonly #capture: ReadonlySet<string>;
  #connected = false;
  #pending: Buffer | undefined;
  #exchange: Exchange | undefined;
  #state: number = S.head;
  #head: Buffer | undefined;
  /** The start of a chunk-size or trailer line split across reads. */
  #line = '';
  /** Body bytes left in the current `content-length` body or chunk. */
  #left = 0;
  #keepAlive = true;
  #keepAliveMs: number;
  #idleSince = 0;
  #gotBytes = false;
  #dead = false;

  constructor(
    socket: Socket,
    tls: boolean,
    defaultKeepAliveMs: number,
    capture: ReadonlySet<string>,
    owner: Owner,
  ) {
    this.#socket = socket;
    this.#owner = owner;
    this.#defaultKeepAliveMs = defaultKeepAliveMs;
    this.#keepAliveMs = defaultKeepAliveMs;
    this.#capture = capture;
    socket.once(tls ? 'secureConnect' : 'connect', () => {
      this.#connected = true;
      const pending = this.#pending;
      this.#pending = undefined;
      if (pending !== undefined) this.#write(pending);
    });
    socket.on('timeout', () => {
      if (this.#exchange !== undefined) this.#fail(TIMEOUT);
      else this.destroy();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => this.#fail(error.code ?? 'EPROTO'));
    socket.on('close', () => {
      if (this.#state === S.untilClose && this.#exchange !== undefined) this.#complete();
      else this.#fail(this.#gotBytes ? 'UND_ERR_SOCKET' : 'ECONNRESET');
    });
  }

  /** True while the server's keep-alive window has room for another request. */
  reusableAt(now: number): boolean {
    return !this.#dead && now - this.#idleSince < this.#keepAliveMs;
  }

  send(request: Buffer, exchange: Exchange): void {
    this.#exchange = exchange;
    this.#state = S.head;
    this.#line = '';
    this.#gotBytes = false;
    if (this.#connected) this.#write(request);
    else this.#pending = request;
  }

  destroy(): void {
    if (this.#dead) return;
    this.#fail('UND_ERR_ABORTED');
  }

  cancel(exchange: Exchange): void {
    if (this.#exchange !== exchange) return;
    // Forgotten before the socket goes, so its 'close' reports to nobody.
    this.#exchange = undefined;
    this.#fail('UND_ERR_ABORTED');
  }

  #write(request: Buffer): void {
    this.#exchange?.onSent();
    this.#socket.write(request);
  }

  #fail(code: string): void {
    const exchange = this.#exchange;
    this.#exchange = undefined;
    if (!this.#dead) {
      this.#dead = true;
      this.#socket.destroy();
      this.#owner.gone(this);
    }
    exchange?.onError(code);
  }

  #complete(): void {
    const exchange = this.#exchange as Exchange;
    this.#exchange = undefined;
    this.#head = undefined;
    if (this.#keepAlive && !this.#dead) {
      this.#idleSince = performance.now();
      this.#owner.free(this);
    } else if (!this.#dead) {
      this.#dead = true;
      this.#socket.destroy();
      this.#owner.gone(this);
    }
    exchange.onComplete();
  }

  /**
   * Bytes read from the socket. `chunk` may be the pool's shared read buffer: nothing here or in
   * an exchange's onData keeps it past the call (body bytes are decoded or copied at once).
   */
  read(chunk: Buffer): void {
    if (this.#exchange === undefined) {
      // Bytes nobody asked for (no pipelining here): the connection cannot be trusted.
      this.#fail(BAD_RESPONSE);
      return;
    }
    this.#gotBytes = true;
    const exchange = this.#exchange;
    let at = 0;
    // Stops when the exchange ends (its onComplete may already have sent the next request here).
    while (at < chunk.length && this.#exchange === exchange) {
      switch (this.#state) {
        case S.head:
          at = this.#readHead(chunk, at);
          break;
        case S.length: {
          const n = Math.min(this.#left, chunk.length - at);
          this.#left -= n;
          this.#exchange.onData(chunk.subarray(at, at + n));
          at += n;
          if (this.#left === 0) this.#complete();
          break;
        }
        case S.chunkSize: {
          const line = this.#readLine(chunk, at);
          if (line === undefined) return;
          at = line.next;
          const size = Number.parseInt(line.text, 16);
          if (!/^[0-9a-fA-F]+\s*(;.*)?$/.test(line.text) || !Number.isSafeInteger(size)) {
            this.#fail(BAD_RESPONSE);
            return;
          }
          this.#left = size;
          this.#state = size === 0 ? S.trailers : S.chunkData;
          break;
        }
        case S.chunkData: {
          const n = Math.min(this.#left, chunk.length - at);
          this.#left -= n;
          if (n > 0) this.#exchange.onData(chunk.subarray(at, at + n));
          at += n;
          if (this.#left === 0) this.#state = S.chunkEnd;
          break;
        }
        case S.chunkEnd:
        case S.trailers: {
          const line = this.#readLine(chunk, at);
          if (line === undefined) return;
          at = line.next;
          if (this.#state === S.chunkEnd) {
            if (line.text !== '') {
              this.#fail(BAD_RESPONSE);
              return;
            }
            this.#state = S.chunkSize;
          } else if (line.text === '') {
            this.#complete();
          }
          break;
        }
        case S.untilClose:
          this.#exchange.onData(at === 0 ? chunk : chunk.subarray(at));
          at = chunk.length;
          break;
      }
    }
    // Bytes past the end of a response (no pipelining here): the connection cannot be trusted.
    if (at < chunk.length && !this.#dead) this.#fail(BAD_RESPONSE);
  }

  /** A line ending in LF (chunk sizes, trailers); undefined until its end has arrived. */
  #readLine(chunk: Buffer, at: number): { text: string; next: number } | undefined {
    const nl = chunk.indexOf(10, at);
    if (nl === -1) {
      this.#line += chunk.toString('latin1', at);
      if (this.#line.length > MAX_HEAD_BYTES) this.#fail(BAD_RESPONSE);
      return undefined;
    }
    let text = this.#line + chunk.toString('latin1', at, nl);
    this.#line = '';
    if (text.endsWith('\r')) text = text.slice(0, -1);
    return { text, next: nl + 1 };
  }

  /** Reads the response head; returns where the body starts in `chunk`, or its end if incomplete. */
  #readHead(chunk: Buffer, at: number): number {
    const carried = this.#head;
    const bytes =
      carried === undefined ? chunk.subarray(at) : Buffer.concat([carried, chunk.subarray(at)]);
    const end = bytes.indexOf(HEAD_END);
    if (end === -1) {
      if (bytes.length > MAX_HEAD_BYTES) this.#fail(BAD_RESPONSE);
      else this.#head = Buffer.from(bytes);
      return chunk.length;
    }
    this.#head = undefined;
    const consumed = end + 4 - (carried?.length ?? 0);
    // `HTTP/1.x SSS`: read by position from the bytes. The head is scanned as bytes and only the
    // values read become strings: the string-per-line version was the largest JS cost per request.
    const code = digit(bytes[9]) * 100 + digit(bytes[10]) * 10 + digit(bytes[11]);
    if (
      end < 12 ||
      !nameIs(bytes, 0, 'http/1.') ||
      !(code >= 100 && code < 600) ||
      (bytes[12] as number) > 32
    ) {
      this.#fail(BAD_RESPONSE);
      return chunk.length;
    }
    if (code < 200) {
      // 100 Continue, 103 Early Hints: the real answer follows on the same connection.
      if (code === 101) this.#fail(BAD_RESPONSE);
      return at + consumed;
    }
    let length = -1;
    let chunked = false;
    let close = bytes[7] === 48; // HTTP/1.0
    let contentType = '';
    let captured = NONE;
    this.#keepAliveMs = this.#defaultKeepAliveMs;
    for (let from = bytes.indexOf(10) + 1; from > 0 && from < end; ) {
      const lineStart = from;
      const next = bytes.indexOf(10, from);
      const lineEnd = next === -1 || next > end ? end : bytes[next - 1] === 13 ? next - 1 : next;
      from = next + 1;
      const colon = bytes.indexOf(58, lineStart);
      if (colon === -1 || colon >= lineEnd) continue;
      switch (colon - lineStart) {
        case 14:
          if (nameIs(bytes, lineStart, 'content-length')) {
            const digits = headerValue(bytes, colon, lineEnd);
            length = /^\d+$/.test(digits) ? Number(digits) : Number.NaN;
            continue;
          }
          break;
        case 17:
          if (nameIs(bytes, lineStart, 'transfer-encoding')) {
            chunked = /(^|,)\s*chunked\s*$/i.test(headerValue(bytes, colon, lineEnd));
            continue;
          }
          break;
        case 10:
          if (nameIs(bytes, lineStart, 'connection')) {
            const v = headerValue(bytes, colon, lineEnd);
            if (/\bclose\b/i.test(v)) close = true;
            else if (/\bkeep-alive\b/i.test(v)) close = false;
            continue;
          }
          if (nameIs(bytes, lineStart, 'keep-alive')) {
            const timeout = /\btimeout=(\d+)/i.exec(headerValue(bytes, colon, lineEnd));
            if (timeout !== null)
              this.#keepAliveMs = Math.min(
                this.#defaultKeepAliveMs,
                Number(timeout[1]) * 1000 - KEEP_ALIVE_MARGIN_MS,
              );
            continue;
          }
          break;
        case 12:
          if (nameIs(bytes, lineStart, 'content-type')) {
            contentType = headerValue(bytes, colon, lineEnd).toLowerCase();
            continue;
          }
          break;
      }
      for (const name of this.#capture) {
        if (name.length === colon - lineStart && nameIs(bytes, lineStart, name)) {
          captured = new Map([...captured, [name, headerValue(bytes, colon, lineEnd)]]);
        }
      }
    }
    if (Number.isNaN(length)) {
      this.#fail(BAD_RESPONSE);
      return chunk.length;
    }
    this.#keepAlive = !close;
    (this.#exchange as Exchange).onHead({ status: code, contentType, captured });
    if (this.#exchange === undefined) return chunk.length;
    if (code === 204 || code === 304 || (!chunked && length === 0)) {
      this.#complete();
    } else if (chunked) {
      this.#state = S.chunkSize;
    } else if (length > 0) {
      this.#state = S.length;
      this.#left = length;
    } else {
      this.#state = S.untilClose;
      this.#keepAlive = false;
    }
    return at + consumed;
  }
}
