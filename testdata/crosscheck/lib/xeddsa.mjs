// XEdDSA on edwards25519 with SHA-512 (PROTOCOL.md section 3).
//
// sign is the XEdDSA specification's xeddsa_sign with the nonce input Z
// passed in, so that known-answer tests are deterministic. verify applies
// exactly the twelve steps of PROTOCOL.md 3.2, including libsignal's
// convention of carrying the Edwards sign bit in bit 7 of signature byte 63.

import { ed25519 } from '@noble/curves/ed25519.js';
import { concat, equal, filled, intLE, le32 } from './bytes.mjs';
import { PublicKey, P } from './keys.mjs';
import { clamp, sha512 } from './primitives.mjs';

const Point = ed25519.Point;
export const Q = Point.CURVE().n; // 2^252 + 27742317777372353535851937790883648493

const mod = (a, m) => ((a % m) + m) % m;

function modPow(base, exp, m) {
  let result = 1n;
  base = mod(base, m);
  while (exp > 0n) {
    if (exp & 1n) result = (result * base) % m;
    base = (base * base) % m;
    exp >>= 1n;
  }
  return result;
}

/** s·B for a scalar that may be 0 (noble's multiply wants 1 <= s < q). */
function baseMul(s) {
  s = mod(s, Q);
  return s === 0n ? Point.ZERO : Point.BASE.multiply(s);
}

/** SHA-512 of the concatenated parts, reduced mod q. */
function hashToScalar(...parts) {
  return mod(intLE(sha512(concat(...parts))), Q);
}

const NONCE_PREFIX = concat(Uint8Array.of(0xfe), filled(31, 0xff));

/** XEdDSA-Sign(k, M, Z), spec-exact: the signature's bit 7 of byte 63 is 0. */
export function sign(priv, msg, z) {
  if (priv.length !== 32) throw new RangeError('xeddsa: private key must be 32 bytes');
  if (z.length !== 64) throw new RangeError('xeddsa: Z must be 64 bytes');
  const k = intLE(clamp(priv));
  const E = baseMul(k).toBytes();
  const negate = (E[31] >> 7) === 1;
  const a = negate ? mod(-k, Q) : mod(k, Q);
  const A = Uint8Array.from(E);
  A[31] &= 0x7f; // the encoding of a·B: same y, sign bit 0
  const r = hashToScalar(NONCE_PREFIX, le32(a), msg, z);
  const R = baseMul(r).toBytes();
  const h = hashToScalar(R, A, msg);
  const s = mod(r + h * a, Q);
  return concat(R, le32(s));
}

/**
 * libsignal's signer (PROTOCOL.md 3.3), for tests of verify only: no
 * negation, the clamped key bytes in the nonce hash, and the public point's
 * sign bit stored in bit 7 of byte 63.
 */
export function signLibsignalStyle(priv, msg, z) {
  const kBytes = clamp(priv);
  const a = mod(intLE(kBytes), Q);
  const A = baseMul(a).toBytes();
  const r = hashToScalar(NONCE_PREFIX, kBytes, msg, z);
  const R = baseMul(r).toBytes();
  const h = hashToScalar(R, A, msg);
  const sig = concat(R, le32(mod(r + h * a, Q)));
  sig[63] |= A[31] & 0x80;
  return sig;
}

/**
 * XEdDSA-Verify(PK, M, sig) of PROTOCOL.md 3.2. pk is the 33-byte encoding;
 * returns a boolean and never throws on bad input.
 */
export function verify(pk, msg, sig) {
  try {
    return verifySteps(pk, msg, sig);
  } catch {
    return false; // belt and braces: no input may make verification throw
  }
}

function verifySteps(pk, msg, sig) {
  if (!(sig instanceof Uint8Array) || sig.length !== 64) return false; // 1
  let key;
  try {
    key = PublicKey.decode(pk); // 2: length, type byte, u < p
  } catch {
    return false;
  }
  const u = intLE(key.u);
  if (u === P - 1n) return false; // 3: y = (u-1)/(u+1) undefined

  const signBit = sig[63] >> 7; // 4
  const sBytes = Uint8Array.from(sig.subarray(32));
  sBytes[31] &= 0x7f;
  const s = intLE(sBytes);
  if (s >= Q) return false; // 5: canonical s only

  const y = mod((u - 1n) * modPow(u + 1n, P - 2n, P), P); // 6
  const aEnc = le32(y); // 7
  aEnc[31] |= signBit << 7;
  let A;
  try {
    A = Point.fromBytes(aEnc); // 8: fails for u on the twist
  } catch {
    return false;
  }
  if (A.isSmallOrder()) return false; // 9

  const R = sig.subarray(0, 32);
  const h = hashToScalar(R, aEnc, msg); // 10
  const sB = s === 0n ? Point.ZERO : Point.BASE.multiplyUnsafe(s);
  const hA = h === 0n ? Point.ZERO : A.multiplyUnsafe(h);
  const rCheck = sB.subtract(hA).toBytes(); // 11
  return equal(rCheck, R); // 12
}
