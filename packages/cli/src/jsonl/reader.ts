/**
 * JSONL input: byte-level line framing and file-level checks.
 *
 * Framing is done on `\n` bytes, not with node:readline, because readline also splits on `\r`
 * and on U+2028/U+2029, which may legally appear raw inside JSON strings; and it decodes with
 * U+FFFD replacement, which would silently change prompts. Here every line is decoded strictly
 * and anything wrong becomes an {@link InputIssue} with a stable code, a line number and a byte
 * offset.
 *
 *   fs chunk (64 KiB) ─► split on 0x0A ─► line parts (≤ maxLineBytes + 1 held) ─► strict decode
 *                                   └─► over the cap: only a byte count and an 80-byte head kept
 */

import { isUtf8 } from 'node:buffer';
import { createReadStream, constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { addAbortSignal } from 'node:stream';
import type {
  CliErrorCode,
  EmbedInputIssueCode,
  FILE_ISSUE_CODES,
  InputIssueCode,
} from '../codes.js';
import { makeSnippet } from '../text.js';

/** One problem with one input line. Tests and tools match on `code`, never on `message`. */
export interface InputIssue {
  /** Stable `VOLLEY_INPUT_*` code, from the catalog (codes.ts). */
  code: InputIssueCode | EmbedInputIssueCode;
  /** Human readable, names the field: `line 12: "custom_id" must be a non-empty string`. */
  message: string;
  /** 1-based physical line number, counting blank lines, as editors show it. */
  lineNo: number;
  /** Byte offset of the start of the line in the input. */
  offset: number;
  /** At most 80 characters of the line, control characters escaped. */
  snippet: string;
  /**
   * The custom_id the line's error record is written under: its own when it had a valid one
   * before the problem was found, else the placeholder `#line-<n>` (set by `parseBatchLine` and
   * `parseLine`; framing issues from the reader leave it unset).
   */
  customId?: string;
}

/** A framed, strictly decoded line, ready for `parseBatchLine`. */
export interface RawTextLine {
  lineNo: number;
  /** Byte offset of the line start (of the BOM, on line 1). */
  offset: number;
  /** Bytes in the line, excluding the `\n` but including any `\r` and BOM. */
  bytes: number;
  text: string;
}

/** A line that could not be framed or decoded (too long, invalid UTF-8). */
export interface RawIssueLine {
  lineNo: number;
  offset: number;
  bytes: number;
  issue: InputIssue;
}

/** What {@link readJsonlLines} yields. Blank lines yield nothing; they are counted in the stats. */
export type RawLine = RawTextLine | RawIssueLine;

/** Counters the reader keeps up to date while it runs; pass your own via `options.stats`. */
export interface ReaderStats {
  /** Physical lines seen, blank ones included. */
  lines: number;
  /** Lines that were empty or only spaces and tabs (after removing `\r`), not yielded. */
  blankLines: number;
  /** Lines yielded as {@link RawIssueLine}. */
  issues: number;
  /** Bytes read so far: against the file size, a progress measure before the total is known. */
  bytesRead: number;
}

/** Options of {@link readJsonlLines}. */
export interface ReadJsonlOptions {
  /** Longest line kept, in bytes (excluding `\n` and a trailing `\r`). Default 8 MiB. */
  maxLineBytes?: number;
  /** Aborting destroys the underlying stream; the generator then throws `signal.reason`. */
  signal?: AbortSignal;
  /**
   * The file's first bytes, already read by {@link inspectInput}: they are framed first and the
   * file is read from just after them, so the check's sample is not read twice.
   */
  head?: Uint8Array | undefined;
  /** Updated in place as lines are read; also the generator's return value. */
  stats?: ReaderStats;
  /** The stream `'-'` reads. Default `process.stdin`; tests inject their own. */
  stdin?: Readable;
}

/** Default of `maxLineBytes`: far above any real prompt line, far below memory trouble. */
export const DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024;

/** A problem with the input file as a whole, found before any request is sent. */
export interface FileIssue {
  code: keyof typeof FILE_ISSUE_CODES;
  message: string;
  path: string;
}

/** Error thrown by {@link readJsonlLines} when reading fails mid-way (EIO, EACCES, EISDIR...). */
export class InputReadError extends Error {
  override readonly name = 'InputReadError';
  /** Always `VOLLEY_ERR_INPUT_READ`. */
  readonly code = 'VOLLEY_ERR_INPUT_READ' satisfies CliErrorCode;
  readonly path: string;
  /** The OS error code (`EIO`, `EISDIR`, ...), when there is one. */
  readonly osCode: string | undefined;

  constructor(path: string, cause: unknown) {
    const osCode = errnoCode(cause);
    super(
      `cannot read input ${JSON.stringify(path)}${osCode === undefined ? '' : ` (${osCode})`}`,
      {
        cause,
      },
    );
    this.path = path;
    this.osCode = osCode;
  }
}

const LF = 0x0a;
const CR = 0x0d;
// Enough bytes for an 80-character snippet of mostly ASCII text.
const SNIPPET_HEAD_BYTES = 160;
const CHUNK_BYTES = 64 * 1024;

/**
 * Reads a JSONL file (or stdin for `'-'`) line by line, with memory bounded by one read chunk plus
 * `maxLineBytes`. The generator pulls: it reads the next chunk only when the consumer asks for the
 * next line, so the consumer's pace is the reader's pace.
 *
 * - Lines are framed on `\n` bytes only; one trailing `\r` is removed (CRLF). A bare `\r` is not a
 *   line break: a CR-only file is one line, which `inspectInputFile` refuses up front
 *   (`VOLLEY_INPUT_FILE_CR_LINE_ENDINGS`) and which otherwise ends as `VOLLEY_INPUT_LINE_TOO_LONG`
 *   or a JSON error.
 * - A UTF-8 BOM is removed from line 1 only; elsewhere it stays, for the parser to report.
 * - Blank lines (empty, or spaces and tabs only) yield nothing and count in `stats.blankLines`;
 *   line numbers still count them so that messages match what an editor shows.
 * - A final line without `\n` is still a line.
 *
 * Read errors throw {@link InputReadError}; an abort throws `signal.reason`.
 *
 * @example
 * const stats = { lines: 0, blankLines: 0, issues: 0, bytesRead: 0 };
 * for await (const line of readJsonlLines('batch.jsonl', { stats })) {
 *   if ('issue' in line) report(line.issue);
 *   else handle(parseBatchLine(line, defaults));
 * }
 */
export async function* readJsonlLines(
  source: string,
  options: ReadJsonlOptions = {},
): AsyncGenerator<RawLine, ReaderStats, undefined> {
  const stats = options.stats ?? { lines: 0, blankLines: 0, issues: 0, bytesRead: 0 };
  for await (const batch of readJsonlBatches(source, { ...options, stats })) {
    for (const line of batch) yield line;
  }
  return stats;
}

/**
 * {@link readJsonlLines}, one read chunk's lines at a time (never an empty batch): the same lines,
 * checks, stats and errors, for the loops that run on every line of a big file. An async generator
 * step costs promises and a result object: over the benchmark's chat lines readJsonlLines makes
 * ~990 B of garbage a line, this ~360 B (the line's text and record; issue 12). Memory stays
 * bounded by one chunk (plus `maxLineBytes`).
 *
 * @example
 * for await (const batch of readJsonlBatches('batch.jsonl', { stats })) {
 *   for (const line of batch) handle(line);
 * }
 */
export async function* readJsonlBatches(
  source: string,
  options: ReadJsonlOptions = {},
): AsyncGenerator<RawLine[], ReaderStats, undefined> {
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  if (!Number.isSafeInteger(maxLineBytes) || maxLineBytes < 1) {
    throw new RangeError(`maxLineBytes must be a positive integer, got ${maxLineBytes}`);
  }
  const stats = options.stats ?? { lines: 0, blankLines: 0, issues: 0, bytesRead: 0 };
  const { signal } = options;
  signal?.throwIfAborted();

  const isStdin = source === '-';
  const head = isStdin ? undefined : options.head;
  const stream: Readable = isStdin
    ? (options.stdin ?? process.stdin)
    : createReadStream(source, { highWaterMark: CHUNK_BYTES, start: head?.length ?? 0 });
  if (signal !== undefined) addAbortSignal(signal, stream);
  const framer = new LineFramer(maxLineBytes);

  // Leaving the loop early must not destroy process.stdin: others may still read or inspect it.
  const rest = stream.iterator({ destroyOnReturn: !isStdin });
  const chunks = head === undefined || head.length === 0 ? rest : prepend(Buffer.from(head), rest);
  try {
    for await (const chunk of chunks) {
      const buf: Buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
      stats.bytesRead += buf.length;
      const lines: RawLine[] = [];
      framer.frameChunk(buf, lines, stats);
      if (lines.length > 0) yield lines;
    }
    if (framer.pending()) {
      const line = framer.endLine(false, stats);
      if (line !== undefined) yield [line];
    }
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw new InputReadError(source, err);
  } finally {
    if (!isStdin) stream.destroy();
  }
  return stats;
}

/** `first`, then what `rest` yields; returning early returns `rest` too (destroying its stream). */
async function* prepend(
  first: Buffer,
  rest: AsyncIterable<Buffer | string>,
): AsyncGenerator<Buffer | string, void, undefined> {
  yield first;
  yield* rest;
}

/**
 * Accumulates the bytes of the current line. Once the line exceeds the cap, its parts are dropped
 * and only the byte count grows: a 50 MB line costs no more memory than a short one.
 */
class LineFramer {
  private parts: Buffer[] = [];
  private partBytes = 0;
  private lineBytes = 0;
  private oversized = false;
  private head: Buffer | undefined;
  private lineNo = 0;
  private offset = 0;
  // One decoder for all lines: decode() without `stream` resets its state on each call.
  // ignoreBOM keeps a BOM in the text (the default would silently strip one at the start of
  // every line); line 1's BOM is removed by hand below.
  private readonly decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  // True while frameChunk frames whole lines of a chunk that isUtf8 passed.
  private chunkIsUtf8 = false;

  private readonly maxLineBytes: number;

  constructor(maxLineBytes: number) {
    this.maxLineBytes = maxLineBytes;
  }

  pending(): boolean {
    return this.lineBytes > 0;
  }

  /** Frames one read chunk: its complete lines go to `lines`, a trailing part stays pending. */
  frameChunk(buf: Buffer, lines: RawLine[], stats: ReaderStats): void {
    let pos = 0;
    const lastNl = buf.lastIndexOf(LF);
    // The whole lines of the chunk are checked as UTF-8 in one native pass, so each is decoded
    // without a view of its own and without the fatal decoder (which needs one); only a chunk
    // with a bad byte somewhere takes the line-by-line path that finds it. The range starts after
    // the first `\n` when a line is pending: its part here may begin inside a character.
    const wholeFrom = this.pending() ? buf.indexOf(LF) + 1 : 0;
    this.chunkIsUtf8 = lastNl > wholeFrom && isUtf8(buf.subarray(wholeFrom, lastNl));
    while (pos < buf.length) {
      const nl = buf.indexOf(LF, pos);
      if (nl !== -1 && !this.pending()) {
        // The usual case: the whole line is in this chunk, nothing to gather.
        const line = this.wholeLine(buf, pos, nl, stats);
        pos = nl + 1;
        if (line !== undefined) lines.push(line);
        continue;
      }
      const end = nl === -1 ? buf.length : nl;
      this.append(buf, pos, end);
      if (nl === -1) break;
      pos = nl + 1;
      const line = this.endLine(true, stats);
      if (line !== undefined) lines.push(line);
    }
    this.chunkIsUtf8 = false;
  }

  append(buf: Buffer, start: number, end: number): void {
    const n = end - start;
    if (n === 0) return;
    this.lineBytes += n;
    if (this.oversized) return;
    // `maxLineBytes + 1` so that a line of exactly maxLineBytes plus its `\r` is still kept.
    if (this.partBytes + n > this.maxLineBytes + 1) {
      this.oversized = true;
      const kept = Buffer.concat([...this.parts, buf.subarray(start, end)].slice(0, 2));
      this.head = Buffer.from(kept.subarray(0, SNIPPET_HEAD_BYTES));
      this.parts = [];
      this.partBytes = 0;
      return;
    }
    this.parts.push(buf.subarray(start, end));
    this.partBytes += n;
  }

  endLine(hadNewline: boolean, stats: ReaderStats): RawLine | undefined {
    const bytes = this.lineBytes;
    const { oversized, head, parts, partBytes } = this;
    this.parts = [];
    this.partBytes = 0;
    this.lineBytes = 0;
    this.oversized = false;
    this.head = undefined;
    if (oversized) {
      const offset = this.offset;
      const lineNo = this.next(bytes, hadNewline, stats);
      stats.issues++;
      return tooLong(lineNo, offset, bytes, this.maxLineBytes, head ?? Buffer.alloc(0));
    }
    const buf = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, partBytes);
    return this.decodeLine(buf, 0, buf.length, bytes, hadNewline, stats, false);
  }

  /**
   * A line that lies whole in `buf` (from `start` to its `\n` at `end`) while nothing is
   * pending: the same as `append` then `endLine`, without gathering parts.
   */
  wholeLine(buf: Buffer, start: number, end: number, stats: ReaderStats): RawLine | undefined {
    const bytes = end - start;
    if (bytes > this.maxLineBytes + 1) {
      const offset = this.offset;
      const lineNo = this.next(bytes, true, stats);
      stats.issues++;
      const head = Buffer.from(buf.subarray(start, start + SNIPPET_HEAD_BYTES));
      return tooLong(lineNo, offset, bytes, this.maxLineBytes, head);
    }
    return this.decodeLine(buf, start, end, bytes, true, stats, this.chunkIsUtf8);
  }

  /** Counts a line and moves the offset past it; returns its number. */
  private next(bytes: number, hadNewline: boolean, stats: ReaderStats): number {
    this.offset += bytes + (hadNewline ? 1 : 0);
    stats.lines++;
    return ++this.lineNo;
  }

  /** Decodes the line `buf[start, end)`; `checked`: those bytes are known to be valid UTF-8. */
  private decodeLine(
    buf: Buffer,
    lineStart: number,
    lineEnd: number,
    bytes: number,
    hadNewline: boolean,
    stats: ReaderStats,
    checked: boolean,
  ): RawLine | undefined {
    const offset = this.offset;
    const lineNo = this.next(bytes, hadNewline, stats);
    let start = lineStart;
    let end = lineEnd;
    if (end > start && buf[end - 1] === CR) end--;
    if (lineNo === 1 && end - start >= 3 && buf[start] === 0xef && buf[start + 1] === 0xbb) {
      if (buf[start + 2] === 0xbf) start += 3;
    }
    if (end - start > this.maxLineBytes) {
      stats.issues++;
      return tooLong(lineNo, offset, bytes, this.maxLineBytes, buf.subarray(start, end));
    }
    if (isBlank(buf, start, end)) {
      stats.blankLines++;
      return undefined;
    }
    // toString keeps a BOM as U+FEFF, like the decoder with ignoreBOM.
    if (checked) return { lineNo, offset, bytes, text: buf.toString('utf8', start, end) };
    const line = buf.subarray(start, end);
    let text: string;
    try {
      text = this.decoder.decode(line);
    } catch {
      stats.issues++;
      const bad = firstInvalidUtf8(line);
      return {
        lineNo,
        offset,
        bytes,
        issue: {
          code: 'VOLLEY_INPUT_INVALID_UTF8',
          message: `line ${lineNo}: invalid UTF-8 at byte ${bad} of the line (file offset ${offset + bad}); re-encode the file as UTF-8`,
          lineNo,
          offset,
          snippet: snippetFromBytes(line.subarray(Math.max(0, bad - 20))),
        },
      };
    }
    return { lineNo, offset, bytes, text };
  }
}

function tooLong(
  lineNo: number,
  offset: number,
  bytes: number,
  max: number,
  head: Buffer,
): RawIssueLine {
  return {
    lineNo,
    offset,
    bytes,
    issue: {
      code: 'VOLLEY_INPUT_LINE_TOO_LONG',
      message: `line ${lineNo}: ${bytes} bytes is over the ${max}-byte line limit; skipped`,
      lineNo,
      offset,
      snippet: snippetFromBytes(head),
    },
  };
}

function isBlank(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const byte = buf[i];
    if (byte !== 0x20 && byte !== 0x09) return false;
  }
  return true;
}

/**
 * Byte index of the first invalid UTF-8 sequence (overlongs, surrogates and code points above
 * U+10FFFF count as invalid, as for TextDecoder), or `buf.length` if there is none. Only called
 * after a failed decode, so it need not be fast.
 */
export function firstInvalidUtf8(buf: Uint8Array): number {
  let i = 0;
  while (i < buf.length) {
    const n = utf8SequenceLength(buf, i);
    if (n === 0) return i;
    i += n;
  }
  return buf.length;
}

/** Length of the valid UTF-8 sequence at `i`, or 0 if the bytes there are not one. */
function utf8SequenceLength(buf: Uint8Array, i: number): number {
  const b0 = buf[i] ?? 0;
  if (b0 < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean => {
    const b = buf[i + k];
    return b !== undefined && b >= lo && b <= hi;
  };
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if (b0 === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (b0 >= 0xe1 && b0 <= 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (b0 === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (b0 >= 0xf1 && b0 <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (b0 === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

/** Like {@link makeSnippet}, for raw bytes: invalid UTF-8 shows as `\xNN`, never as U+FFFD. */
export function snippetFromBytes(buf: Uint8Array): string {
  let text = '';
  let i = 0;
  const limit = Math.min(buf.length, SNIPPET_HEAD_BYTES);
  while (i < limit) {
    const n = utf8SequenceLength(buf, i);
    if (n === 0 || i + n > limit) {
      // A marker the escaper leaves alone; the \xNN form is what the user sees.
      text += `\\x${(buf[i] ?? 0).toString(16).padStart(2, '0')}`;
      i += 1;
    } else {
      text += Buffer.from(buf.buffer, buf.byteOffset + i, n).toString('utf8');
      i += n;
    }
  }
  // Cut bytes beyond the head: mark the cut even when the decoded head fits in 80 characters.
  return makeSnippet(buf.length > limit ? `${text}\u2026` : text);
}

const SAMPLE_BYTES = 64 * 1024;
const COMPRESSED_MAGIC: ReadonlyArray<{ name: string; magic: readonly number[] }> = [
  { name: 'zip', magic: [0x50, 0x4b, 0x03, 0x04] },
  { name: 'zstd', magic: [0x28, 0xb5, 0x2f, 0xfd] },
  { name: 'xz', magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] },
  { name: 'bzip2', magic: [0x42, 0x5a, 0x68] },
];

/**
 * Checks the input as a whole before anything is sent: it exists, is a regular readable file, is
 * not empty, and its first 64 KiB look like UTF-8 text with `\n` line endings. Returns undefined
 * when the file may be read. `'-'` (stdin) is only refused when it is an interactive terminal.
 *
 * The file is opened once (O_NONBLOCK, so a FIFO cannot hang the open) and classified from that
 * descriptor, not from a separate stat of the path that could race with a rename.
 *
 * @example
 * const problem = await inspectInputFile(path);
 * if (problem) { console.error(problem.message); process.exitCode = 2; return; }
 */
export async function inspectInputFile(
  path: string,
  options: { stdin?: { isTTY?: boolean } } = {},
): Promise<FileIssue | undefined> {
  return (await inspectInput(path, options)).issue;
}

/** What {@link inspectInput} found: a problem, or the bytes it read to look for one. */
export interface InputInspection {
  issue?: FileIssue;
  /**
   * The first bytes of a file that passed (up to 64 KiB): pass them to the preflight pass's
   * {@link readJsonlLines} as `head`, so the input is read once per pass and no more.
   */
  head?: Buffer;
}

/** {@link inspectInputFile}, also handing over the sample it read (see {@link InputInspection}). */
export async function inspectInput(
  path: string,
  options: { stdin?: { isTTY?: boolean } } = {},
): Promise<InputInspection> {
  const issue = (code: FileIssue['code'], detail: string): InputInspection => ({
    issue: { code, message: `${JSON.stringify(path)}: ${detail}`, path },
  });
  if (path === '-') {
    const stdin = options.stdin ?? process.stdin;
    return stdin.isTTY === true
      ? issue('VOLLEY_INPUT_FILE_STDIN_TTY', 'stdin is a terminal; pipe or redirect a JSONL file')
      : {};
  }

  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(
      path,
      fsConstants.O_RDONLY | fsConstants.O_NONBLOCK | (fsConstants.O_NOCTTY ?? 0),
    );
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      return issue('VOLLEY_INPUT_FILE_NOT_FOUND', 'no such file');
    }
    // Opening a Unix socket fails with ENXIO; the stat shows what it is.
    if (code === 'ENXIO') {
      return issue('VOLLEY_INPUT_FILE_NOT_REGULAR', 'is a socket, not a regular file');
    }
    if (code === 'EISDIR') return issue('VOLLEY_INPUT_FILE_IS_DIRECTORY', 'is a directory');
    return issue('VOLLEY_INPUT_FILE_UNREADABLE', `cannot be opened (${code ?? String(err)})`);
  }
  try {
    const st = await handle.stat();
    if (st.isDirectory()) return issue('VOLLEY_INPUT_FILE_IS_DIRECTORY', 'is a directory');
    if (!st.isFile()) {
      const kind = st.isFIFO()
        ? 'a FIFO (named pipe)'
        : st.isSocket()
          ? 'a socket'
          : st.isCharacterDevice() || st.isBlockDevice()
            ? 'a device'
            : 'not a regular file';
      return issue(
        'VOLLEY_INPUT_FILE_NOT_REGULAR',
        `is ${kind}; it cannot be re-read on resume, so pipe it to "-" instead`,
      );
    }
    if (st.size === 0) return issue('VOLLEY_INPUT_FILE_EMPTY', 'is empty');

    const sample = Buffer.alloc(Math.min(SAMPLE_BYTES, st.size));
    let filled = 0;
    while (filled < sample.length) {
      const { bytesRead } = await handle.read(sample, filled, sample.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    const problem = classifySample(sample.subarray(0, filled), filled >= st.size);
    return problem === undefined
      ? { head: sample.subarray(0, filled) }
      : issue(problem.code, problem.detail);
  } catch (err) {
    return issue(
      'VOLLEY_INPUT_FILE_UNREADABLE',
      `cannot be read (${errnoCode(err) ?? String(err)})`,
    );
  } finally {
    await handle.close();
  }
}

/**
 * Classifies the first bytes of a file. `complete` says the sample is the whole file (then an
 * all-blank sample means an empty input).
 */
export function classifySample(
  s: Buffer,
  complete: boolean,
): { code: FileIssue['code']; detail: string } | undefined {
  const startsWith = (magic: readonly number[]): boolean => magic.every((b, i) => s[i] === b);
  if (startsWith([0x1f, 0x8b])) {
    return {
      code: 'VOLLEY_INPUT_FILE_GZIP',
      detail: 'is gzip-compressed; decompress it first (e.g. zcat file.gz | volley run -)',
    };
  }
  for (const { name, magic } of COMPRESSED_MAGIC) {
    if (startsWith(magic)) {
      return { code: 'VOLLEY_INPUT_FILE_COMPRESSED', detail: `is ${name} data, not JSONL text` };
    }
  }
  // UTF-32 LE's BOM starts like UTF-16 LE's; both are refused with the same advice.
  if (
    startsWith([0xff, 0xfe]) ||
    startsWith([0xfe, 0xff]) ||
    startsWith([0x00, 0x00, 0xfe, 0xff])
  ) {
    return {
      code: 'VOLLEY_INPUT_FILE_UTF16',
      detail: 'is UTF-16/UTF-32 (byte order mark); re-encode it as UTF-8',
    };
  }
  if (looksLikeUtf16WithoutBom(s)) {
    return {
      code: 'VOLLEY_INPUT_FILE_UTF16',
      detail: 'looks like UTF-16 (every other byte is NUL); re-encode it as UTF-8',
    };
  }

  let nul = 0;
  let control = 0;
  let lf = 0;
  let strayCr = false;
  let blank = true;
  const bom = startsWith([0xef, 0xbb, 0xbf]) ? 3 : 0;
  for (let i = bom; i < s.length; i++) {
    const b = s[i] as number;
    if (b === 0) nul++;
    else if (b === LF) lf++;
    else if (b === CR) {
      // A CR followed by anything but LF (end of sample excepted) is a bare-CR line ending.
      if (i + 1 < s.length && s[i + 1] !== LF) strayCr = true;
    } else if ((b < 0x20 && b !== 0x09) || b === 0x7f) control++;
    if (blank && b !== 0x20 && b !== 0x09 && b !== LF && b !== CR) blank = false;
  }
  if (nul > 0) {
    return { code: 'VOLLEY_INPUT_FILE_BINARY', detail: 'contains NUL bytes; not a text file' };
  }
  // Raw control bytes are never valid in JSON text; a few are a bad line, many a binary file.
  if (control > 8 && control / s.length > 0.01) {
    return {
      code: 'VOLLEY_INPUT_FILE_BINARY',
      detail: `has ${control} control bytes in its first ${s.length} bytes; not a text file`,
    };
  }
  if (blank && complete) {
    return { code: 'VOLLEY_INPUT_FILE_EMPTY', detail: 'holds only blank lines' };
  }
  if (lf === 0 && strayCr) {
    return {
      code: 'VOLLEY_INPUT_FILE_CR_LINE_ENDINGS',
      detail: 'uses bare CR line endings; convert them to LF (e.g. tr "\\r" "\\n")',
    };
  }
  return undefined;
}

function looksLikeUtf16WithoutBom(s: Buffer): boolean {
  // ASCII text in UTF-16 has a NUL in every other byte: "{\0"\0..." (LE) or "\0{\0"..." (BE).
  const n = Math.min(s.length, 1024) & ~1;
  if (n < 4) return false;
  let evenZero = 0;
  let oddZero = 0;
  for (let i = 0; i < n; i += 2) {
    if (s[i] === 0) evenZero++;
    if (s[i + 1] === 0) oddZero++;
  }
  const half = n / 2;
  return (
    (oddZero / half > 0.4 && evenZero / half < 0.05) ||
    (evenZero / half > 0.4 && oddZero / half < 0.05)
  );
}

function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const { code } = err as { code: unknown };
    if (typeof code === 'string') return code;
  }
  return undefined;
}
