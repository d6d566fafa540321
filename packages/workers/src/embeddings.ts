/**
 * Embedding decode, done in the worker so no JSON array of floats ever crosses a thread: every
 * vector of a response lands in one row-major Float32Array whose buffer is transferred (about
 * 0.2 ms) rather than cloned (about 12 ms for 256×1536, measured in research/perf-lab.md).
 * base64 is decoded straight into that buffer with `Buffer#write`, with no intermediate copy.
 *
 * A base64 response is parsed from its bytes ({@link parseEmbeddingsBody}): decoding the whole
 * body to a UTF-8 string and running `JSON.parse` over ~0.5 MB of base64 text per 64 × 1536
 * response cost more CPU than everything else Volley does for it (35% of the main loop's busy
 * time in `async` mode, plus the garbage); only the small JSON around the vectors is parsed.
 */
import { isAscii } from 'node:buffer';
import type { EmbeddingMatrix } from '@volley/core';

interface EmbeddingItem {
  index?: unknown;
  embedding?: unknown;
}

/** Why a body could not be decoded; the executor turns this into `VOLLEY_ERR_BAD_RESPONSE`. */
export class EmbeddingShapeError extends Error {
  override name = 'EmbeddingShapeError';
}

const isLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function decodeEmbeddings(data: unknown): EmbeddingMatrix {
  if (!Array.isArray(data) || data.length === 0)
    throw new EmbeddingShapeError('"data" is not a non-empty array');
  const items = data as EmbeddingItem[];
  const first = items[0]?.embedding;
  const dimensions =
    typeof first === 'string'
      ? Buffer.byteLength(first, 'base64') >> 2
      : Array.isArray(first)
        ? first.length
        : 0;
  if (dimensions === 0) throw new EmbeddingShapeError('first embedding is empty or missing');
  const count = items.length;
  // Not zero-filled: every row is written below, and a row no item wrote (two items with the
  // same index) is zeroed at the end. A zeroed `new Float32Array` of 64 × 1536 cost ~150 µs, as
  // much as decoding the base64 into it.
  const bytes = Buffer.allocUnsafeSlow(count * dimensions * 4);
  const matrix = new Float32Array(bytes.buffer, 0, count * dimensions);
  let rowsWritten = 0;
  let written: Uint8Array | undefined;
  let serverSentFloats = false;
  for (let i = 0; i < count; i++) {
    const item = items[i] as EmbeddingItem;
    // Servers may return items out of order; `index` says where each one belongs.
    const row = typeof item.index === 'number' && Number.isInteger(item.index) ? item.index : i;
    if (row < 0 || row >= count)
      throw new EmbeddingShapeError(`embedding index ${row} out of range`);
    // In order, item i writes row i; from the first item out of order, rows are tracked.
    if (row !== i) written ??= new Uint8Array(count).fill(1, 0, i);
    if (written === undefined) rowsWritten++;
    else if (written[row] === 0) {
      written[row] = 1;
      rowsWritten++;
    }
    const vector = item.embedding;
    if (typeof vector === 'string') {
      const written = bytes.write(vector, row * dimensions * 4, dimensions * 4, 'base64');
      if (written !== dimensions * 4 || Buffer.byteLength(vector, 'base64') !== dimensions * 4) {
        throw new EmbeddingShapeError(
          `embedding ${row} has ${Buffer.byteLength(vector, 'base64') / 4} dimensions, expected ${dimensions}`,
        );
      }
      // base64 embeddings are little-endian float32.
      if (!isLittleEndian)
        bytes.subarray(row * dimensions * 4, (row + 1) * dimensions * 4).swap32();
    } else if (Array.isArray(vector)) {
      if (vector.length !== dimensions) {
        throw new EmbeddingShapeError(
          `embedding ${row} has ${vector.length} dimensions, expected ${dimensions}`,
        );
      }
      serverSentFloats = true;
      matrix.set(vector as number[], row * dimensions);
    } else {
      throw new EmbeddingShapeError(`embedding ${row} is neither base64 nor a float array`);
    }
  }
  if (rowsWritten < count && written !== undefined) {
    for (let row = 0; row < count; row++)
      if (written[row] === 0) matrix.fill(0, row * dimensions, (row + 1) * dimensions);
  }
  return { data: matrix, dimensions, count, serverSentFloats };
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const KEY_DATA = Buffer.from('data');
const KEY_EMBEDDING = Buffer.from('embedding');

/** The index of the quote closing a JSON string whose content starts at `from`; -1 if none. */
function stringEnd(bytes: Buffer, from: number): number {
  let quote = bytes.indexOf(QUOTE, from);
  while (quote !== -1) {
    let slashes = 0;
    for (let k = quote - 1; k >= from && bytes[k] === BACKSLASH; k--) slashes++;
    if ((slashes & 1) === 0) return quote;
    quote = bytes.indexOf(QUOTE, quote + 1);
  }
  return -1;
}

/** Keys are a few bytes: comparing them here is cheaper than a call into `Buffer#compare`. */
function sameBytes(bytes: Buffer, start: number, end: number, key: Buffer): boolean {
  if (end - start !== key.length) return false;
  for (let k = 0; k < key.length; k++) if (bytes[start + k] !== key[k]) return false;
  return true;
}

/** The UTF-8 text of a body, without a leading byte order mark (as undici's `body.text()`). */
export function bodyText(bytes: Uint8Array): string {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bom = buffer.length > 2 && buffer[0] === 0xef && buffer[1] === 0xbb && buffer[2] === 0xbf;
  return buffer.toString('utf8', bom ? 3 : 0);
}

/**
 * `JSON.parse` of an embeddings response body, from its bytes, without turning the base64
 * vectors into one big string first: a scan of the JSON structure finds every string value at
 * `data[*].embedding` (skipping string contents with `indexOf`, not byte by byte), the text
 * around them (a few KiB) is parsed as JSON with each vector replaced by its ordinal, and each
 * vector then becomes its own string, copied straight from the bytes (`latin1`, a memcpy for
 * base64's ASCII). The result equals `JSON.parse(bodyText(bytes))` (tests check it).
 *
 * Returns undefined when this path does not apply and the caller must parse the text: no base64
 * vector at all (float JSON, an error body), a vector or key written with escapes (`\/`) or
 * holding non-ASCII bytes, or JSON this scan cannot follow (the full parse then says what is
 * wrong with it).
 */
export function parseEmbeddingsBody(bytes: Uint8Array): Record<string, unknown> | undefined {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = buffer.length;
  let i = length > 2 && buffer[0] === 0xef && buffer[1] === 0xbb && buffer[2] === 0xbf ? 3 : 0;
  const ascii = isAscii(buffer);
  // The next backslash at or after the scan position (-1: none left): a vector containing one
  // is written with escapes, which only the full parse undoes.
  let nextBackslash = buffer.indexOf(BACKSLASH, i);
  const hasBackslash = (start: number, end: number): boolean => {
    if (nextBackslash !== -1 && nextBackslash < start)
      nextBackslash = buffer.indexOf(BACKSLASH, start);
    return nextBackslash !== -1 && nextBackslash < end;
  };
  /** Start and end (exclusive) of every vector's base64 text, in order. */
  const ranges: number[] = [];
  const pieces: string[] = [];
  let copied = i;
  /** Open containers, innermost last: true for an object, false for an array. */
  const open: boolean[] = [];
  let expectKey = false;
  /** The key just read, while its value is next: "data" in the root, "embedding" in a data item. */
  let key: 'data' | 'embedding' | undefined;
  /** The root's "data" array is open (as the second container). */
  let inData = false;
  for (; i < length; i++) {
    const byte = buffer[i];
    if (byte === QUOTE) {
      const end = stringEnd(buffer, i + 1);
      if (end === -1) return undefined;
      if (expectKey) {
        if (hasBackslash(i + 1, end)) return undefined;
        key =
          open.length === 1 && sameBytes(buffer, i + 1, end, KEY_DATA)
            ? 'data'
            : inData && open.length === 3 && sameBytes(buffer, i + 1, end, KEY_EMBEDDING)
              ? 'embedding'
              : undefined;
        expectKey = false;
      } else if (key === 'embedding') {
        // inData, in an item object (keys are only read in objects): a base64 vector.
        if (hasBackslash(i + 1, end)) return undefined;
        if (!ascii && !isAscii(buffer.subarray(i + 1, end))) return undefined;
        pieces.push(buffer.toString('utf8', copied, i + 1), String(ranges.length >> 1));
        ranges.push(i + 1, end);
        copied = end;
        key = undefined;
      } else key = undefined;
      i = end;
    } else if (byte === OPEN_OBJECT) {
      open.push(true);
      expectKey = true;
      key = undefined;
    } else if (byte === OPEN_ARRAY) {
      // A float vector: nothing to gain here, the full parse reads it.
      if (key === 'embedding') return undefined;
      if (key === 'data') inData = true;
      open.push(false);
      key = undefined;
    } else if (byte === CLOSE_OBJECT || byte === CLOSE_ARRAY) {
      open.pop();
      if (open.length === 1) inData = false;
      expectKey = false;
      key = undefined;
    } else if (byte === COMMA) {
      expectKey = open.at(-1) === true;
      key = undefined;
    } else if (byte !== COLON && byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09) {
      // The first byte of a number or literal: whatever value that is, it is not the key's.
      key = undefined;
    }
  }
  if (ranges.length === 0) return undefined;
  pieces.push(buffer.toString('utf8', copied, length));
  let body: unknown;
  try {
    body = JSON.parse(pieces.join(''));
  } catch {
    return undefined;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const data = (body as { data?: unknown }).data;
  if (!Array.isArray(data)) return undefined;
  for (const item of data as EmbeddingItem[]) {
    if (typeof item !== 'object' || item === null || typeof item.embedding !== 'string') continue;
    // Every string at data[*].embedding was replaced by its ordinal: nothing else can be there.
    const at = Number(item.embedding) * 2;
    item.embedding = buffer.toString('latin1', ranges[at], ranges[at + 1]);
  }
  return body as Record<string, unknown>;
}
