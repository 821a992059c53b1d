// Keys and their encoding (PROTOCOL.md section 2).
//
// A public key travels as Encode(PK) = 0x05 || u (33 bytes). Decoding
// accepts exactly one encoding per key: type byte 0x05, length 33, and a
// canonical u < p (so bit 255 is clear). Group membership is NOT checked
// here; small-order keys are caught by the all-zero DH check (dh below) and,
// for identity keys, by XEdDSA verification.

import { concat, equal, hex, intLE, isAllZero } from './bytes.mjs';
import { Kind, fail } from './errors.mjs';
import { BASE_U, randomBytes, x25519 } from './primitives.mjs';

export const KEY_TYPE = 0x05;
export const ENCODED_KEY_LEN = 33;
export const PRIVATE_KEY_LEN = 32;
export const P = 2n ** 255n - 19n;

/** A decoded, canonical X25519 public key. Compare keys with equals. */
export class PublicKey {
  /** @param {Uint8Array} u the 32-byte little-endian u-coordinate, u < p */
  constructor(u) {
    this.u = Uint8Array.from(u);
    this.encoded = concat(Uint8Array.of(KEY_TYPE), this.u);
  }

  /** Decodes Encode(PK); throws bad_key on any other input. */
  static decode(bytes) {
    if (!(bytes instanceof Uint8Array) || bytes.length !== ENCODED_KEY_LEN) fail(Kind.badKey);
    if (bytes[0] !== KEY_TYPE) fail(Kind.badKey);
    const u = bytes.subarray(1);
    if (intLE(u) >= P) fail(Kind.badKey); // also rejects bit 255 set
    return new PublicKey(u);
  }

  equals(other) {
    return other instanceof PublicKey && equal(this.encoded, other.encoded);
  }

  toString() {
    return hex(this.encoded);
  }
}

/** An X25519 key pair. The private key is kept raw; clamping happens on use. */
export class KeyPair {
  constructor(priv) {
    if (!(priv instanceof Uint8Array) || priv.length !== PRIVATE_KEY_LEN) fail(Kind.badKey);
    this.priv = Uint8Array.from(priv);
    this.pub = new PublicKey(x25519(this.priv, BASE_U));
  }

  static generate() {
    return new KeyPair(randomBytes(PRIVATE_KEY_LEN));
  }

  /** The given private key, or a fresh one when it is null/undefined. */
  static fromOptional(priv) {
    return priv == null ? KeyPair.generate() : new KeyPair(priv);
  }

  // Keep private keys out of console.log / JSON output.
  toJSON() {
    return { pub: hex(this.pub.encoded), priv: 'REDACTED' };
  }

  [Symbol.for('nodejs.util.inspect.custom')]() {
    return `KeyPair(pub=${hex(this.pub.encoded)}, priv=REDACTED)`;
  }
}

// The five canonical u-coordinates of small order on Curve25519 or its
// twist (PROTOCOL.md 2.3): X25519 sends them to zero under every clamped key.
const SMALL_ORDER_U = new Set([
  0n,
  1n,
  P - 1n,
  325606250916557431795983626356110631294008115727848805560023387167927233504n,
  39382357235489614581723060781553021112529911719440698176882885853963445705823n,
]);

/** Whether a decoded public key is one of the five small-order points. */
export function isSmallOrder(pub) {
  return SMALL_ORDER_U.has(intLE(pub.u));
}

/** DH(a, B) of PROTOCOL.md 2.3: X25519, and an all-zero output is bad_key. */
export function dh(priv, pub) {
  const out = x25519(priv, pub.u);
  if (isAllZero(out)) fail(Kind.badKey);
  return out;
}
