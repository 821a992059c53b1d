// X3DH (PROTOCOL.md section 4): pure functions, keys in, SK and AD out.
// Both functions also return the intermediate values (the DH outputs and the
// KDF input) so that vectors can be re-derived step by step.

import { concat, filled, utf8, wipe } from './bytes.mjs';
import { Kind, fail } from './errors.mjs';
import { KeyPair, PublicKey, dh, isSmallOrder } from './keys.mjs';
import { hkdf } from './primitives.mjs';
import * as xeddsa from './xeddsa.mjs';

export const DEFAULT_INFO = utf8('ratchetkit_X3DH_X25519_SHA-256_v1');
const F = filled(32, 0xff); // X3DH's domain separation for X25519
const ZERO_SALT = new Uint8Array(32);

function kdf(dhs, info) {
  const ikm = concat(F, ...dhs);
  // An empty info is no choice at all: it selects the default, as an
  // absent one does (PROTOCOL.md 4.4).
  const sk = hkdf(ZERO_SALT, ikm, info == null || info.length === 0 ? DEFAULT_INFO : info, 32);
  return { sk, ikm };
}

/**
 * Alice's side (PROTOCOL.md 4.2).
 * @param {object} p
 * @param {Uint8Array} p.ikPriv   Alice's identity private key (32 bytes)
 * @param {Uint8Array} [p.ekPriv] the ephemeral private key; fresh if absent
 * @param {{ik: Uint8Array, spk: Uint8Array, spkSig: Uint8Array, opk?: Uint8Array|null}} p.bundle
 *        Bob's bundle, keys as 33-byte encodings
 * @param {Uint8Array} [p.info]   defaults to DEFAULT_INFO, and so does an empty one
 */
export function initiate({ ikPriv, ekPriv = null, bundle, info = DEFAULT_INFO }) {
  const ikA = new KeyPair(ikPriv); // bad_key on a wrong length
  const ek = KeyPair.fromOptional(ekPriv);
  // 1. Decode every bundle key before looking at the signature.
  const ikB = PublicKey.decode(bundle.ik);
  const spkB = PublicKey.decode(bundle.spk);
  const opkB = bundle.opk == null ? null : PublicKey.decode(bundle.opk);
  // 2. No bundle key of small order (it would make a DH output public).
  for (const key of [ikB, spkB, opkB]) if (key && isSmallOrder(key)) fail(Kind.badKey);
  // 3. The signature, before anything is computed with the keys.
  if (!xeddsa.verify(ikB.encoded, spkB.encoded, bundle.spkSig)) fail(Kind.invalidSignature);
  // 4–6.
  const dhs = [dh(ikA.priv, spkB), dh(ek.priv, ikB), dh(ek.priv, spkB)];
  if (opkB) dhs.push(dh(ek.priv, opkB));
  const { sk, ikm } = kdf(dhs, info);
  const ad = concat(ikA.pub.encoded, ikB.encoded);
  return { sk, ad, dhs, ikm, ikA: ikA.pub, ekA: ek.pub, ek, ikB, spkB, opkB };
}

/**
 * Bob's side (PROTOCOL.md 4.3). Keys of the wrong length and peer keys that
 * do not decode are bad_key, as is an all-zero DH output.
 */
export function respond({ ikPriv, spkPriv, opkPriv = null, peerIk, peerEk, info = DEFAULT_INFO }) {
  const ikB = new KeyPair(ikPriv);
  const spkB = new KeyPair(spkPriv);
  const opkB = opkPriv == null ? null : new KeyPair(opkPriv);
  const ikA = PublicKey.decode(peerIk);
  const ekA = PublicKey.decode(peerEk);
  if (isSmallOrder(ikA) || isSmallOrder(ekA)) fail(Kind.badKey);
  const dhs = [dh(spkB.priv, ikA), dh(ikB.priv, ekA), dh(spkB.priv, ekA)];
  if (opkB) dhs.push(dh(opkB.priv, ekA));
  const { sk, ikm } = kdf(dhs, info);
  const ad = concat(ikA.encoded, ikB.pub.encoded);
  return { sk, ad, dhs, ikm, ikA, ekA };
}

/** Wipes the secrets an initiate/respond result holds (best effort). */
export function wipeResult(result) {
  for (const d of result.dhs) wipe(d);
  wipe(result.ikm);
  if (result.ek) wipe(result.ek.priv);
}
