// Byte-string helpers shared by every module. Byte strings are Uint8Array
// throughout; hex is lowercase, as in PROTOCOL.md section 9.1.

const HEX_RE = /^(?:[0-9a-f]{2})*$/;

/** Lowercase hex of a byte string. */
export function hex(bytes) {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/**
 * Parses strict lowercase hex (even length, 0-9a-f only). Returns null for
 * anything else, so callers decide which error that is.
 */
export function unhex(text) {
  if (typeof text !== 'string' || !HEX_RE.test(text)) return null;
  return new Uint8Array(Buffer.from(text, 'hex'));
}

/** Like unhex, for constants written in source code: throws on bad input. */
export function h(text) {
  const b = unhex(text.replace(/\s+/g, ''));
  if (b === null) throw new Error(`bad hex constant: ${text}`);
  return b;
}

export function concat(...parts) {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function u32be(n) {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`not a u32: ${n}`);
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, false);
  return out;
}

export function readU32be(bytes, offset) {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(offset, false);
}

/** Byte equality that does not stop at the first difference. */
export function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export function isAllZero(bytes) {
  let acc = 0;
  for (const x of bytes) acc |= x;
  return acc === 0;
}

export function utf8(text) {
  return new TextEncoder().encode(text);
}

/** n bytes of value v. */
export function filled(n, v) {
  return new Uint8Array(n).fill(v);
}

/** The integer whose little-endian encoding is `bytes`. */
export function intLE(bytes) {
  let x = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) x = (x << 8n) | BigInt(bytes[i]);
  return x;
}

/** LE32(n): the 32-byte little-endian encoding of 0 <= n < 2^256. */
export function le32(n) {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

/** Overwrites a byte string with zeros (best effort: JS may hold copies). */
export function wipe(bytes) {
  if (bytes) bytes.fill(0);
}
