/**
 * The NumPy `.npy` header (format version 1.0) for a C-order float32 matrix.
 *
 *   \x93NUMPY  1  0  HEADER_LEN (u16 LE)  {'descr': '<f4', 'fortran_order': False, 'shape': (N, D), }  spaces  \n
 *   └──────────────────────── always NPY_HEADER_BYTES (128) bytes ────────────────────────────────────────────┘
 *
 * The header has a fixed size so that the row count can be rewritten in place as rows are
 * appended (and after a resume) without moving the data. 128 bytes keep the data 64-byte aligned,
 * as NumPy requires of version 1.0 files, and leave room for any 64-bit shape.
 */

/** Bytes before the first row. */
export const NPY_HEADER_BYTES = 128;

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const PREAMBLE_BYTES = MAGIC.length + 4; // magic, version (2 bytes), header length (u16)

/** The header of a `rows × dimensions` little-endian float32 matrix in C order. */
export function npyHeader(rows: number, dimensions: number): Buffer {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${dimensions}), }`;
  const textBytes = NPY_HEADER_BYTES - PREAMBLE_BYTES;
  if (dict.length + 1 > textBytes) throw new RangeError(`shape ${rows}×${dimensions} too large`);
  const header = Buffer.alloc(NPY_HEADER_BYTES, 0x20);
  MAGIC.copy(header, 0);
  header[6] = 1; // major version
  header[7] = 0; // minor version
  header.writeUInt16LE(textBytes, 8);
  header.write(dict, PREAMBLE_BYTES, 'latin1');
  header[NPY_HEADER_BYTES - 1] = 0x0a;
  return header;
}

/**
 * The shape in a header this module wrote; undefined if `bytes` is not such a header (a file
 * Volley did not write, or one cut short before its header was whole).
 */
export function parseNpyHeader(
  bytes: Uint8Array,
): { rows: number; dimensions: number } | undefined {
  if (bytes.length < NPY_HEADER_BYTES) return undefined;
  const header = Buffer.from(bytes.buffer, bytes.byteOffset, NPY_HEADER_BYTES);
  if (!header.subarray(0, MAGIC.length).equals(MAGIC) || header[6] !== 1 || header[7] !== 0) {
    return undefined;
  }
  if (header.readUInt16LE(8) !== NPY_HEADER_BYTES - PREAMBLE_BYTES) return undefined;
  const text = header.toString('latin1', PREAMBLE_BYTES);
  const match =
    /^\{'descr': '<f4', 'fortran_order': False, 'shape': \((\d+), (\d+)\), \} *\n$/.exec(text);
  if (match === null) return undefined;
  return { rows: Number(match[1]), dimensions: Number(match[2]) };
}
