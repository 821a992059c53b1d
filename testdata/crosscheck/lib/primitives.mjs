// The primitives of PROTOCOL.md section 1, as thin wrappers so that the
// protocol modules read like the specification.
//
//   X25519            @noble/curves (RFC 7748)
//   SHA-256/512, HMAC, HKDF   @noble/hashes
//   AES-256-GCM, ChaCha20-Poly1305   Node's own crypto module

import crypto from 'node:crypto';
import { x25519 as nobleX25519 } from '@noble/curves/ed25519.js';
import { hkdf as nobleHkdf } from '@noble/hashes/hkdf.js';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { concat, utf8 } from './bytes.mjs';

export { sha256, sha512 };

/** RFC 7748 clamping of a 32-byte private key (returns a copy). */
export function clamp(k) {
  const c = Uint8Array.from(k);
  c[0] &= 248;
  c[31] &= 127;
  c[31] |= 64;
  return c;
}

/**
 * The X25519 function of RFC 7748 section 5 on 32-byte inputs, u masked and
 * reduced as the RFC says. noble refuses the five low-order inputs up front
 * instead of returning the all-zero output the RFC function gives for them;
 * we map that refusal back to the RFC's answer so that the protocol layer
 * can apply the profile's rule ("an all-zero output is an error") itself.
 */
export function x25519(k, u) {
  if (k.length !== 32 || u.length !== 32) throw new RangeError('x25519: inputs must be 32 bytes');
  try {
    return nobleX25519.scalarMult(k, u);
  } catch {
    return new Uint8Array(32);
  }
}

/** The X25519 base point u = 9. */
export const BASE_U = (() => {
  const b = new Uint8Array(32);
  b[0] = 9;
  return b;
})();

export function hmac(key, msg) {
  return nobleHmac(sha256, key, msg);
}

/** HKDF-SHA256 (RFC 5869) with an explicit salt. */
export function hkdf(salt, ikm, info, length) {
  return nobleHkdf(sha256, ikm, salt, info, length);
}

export function randomBytes(n) {
  return new Uint8Array(crypto.randomBytes(n));
}

// ---------------------------------------------------------------------------
// AEAD suites (PROTOCOL.md 5.2). Each turns a 32-byte message key into a
// cipher key and a 12-byte nonce with HKDF, then seals with the AEAD. open
// returns null on any authentication failure, never partial plaintext.

function nodeAead(cipherName) {
  return {
    seal(key, nonce, plaintext, aad) {
      const c = crypto.createCipheriv(cipherName, key, nonce, { authTagLength: 16 });
      c.setAAD(aad, { plaintextLength: plaintext.length });
      const body = concat(c.update(plaintext), c.final());
      return concat(body, c.getAuthTag());
    },
    open(key, nonce, ciphertext, aad) {
      if (ciphertext.length < 16) return null;
      const body = ciphertext.subarray(0, ciphertext.length - 16);
      const tag = ciphertext.subarray(ciphertext.length - 16);
      try {
        const d = crypto.createDecipheriv(cipherName, key, nonce, { authTagLength: 16 });
        d.setAuthTag(tag);
        d.setAAD(aad, { plaintextLength: body.length });
        const out = d.update(body);
        d.final(); // throws if the tag does not match
        return new Uint8Array(out);
      } catch {
        return null;
      }
    },
  };
}

function makeSuite(name, cipherName, info) {
  const aead = nodeAead(cipherName);
  const infoBytes = utf8(info);
  const zeroSalt = new Uint8Array(32);
  const derive = (mk) => {
    const okm = hkdf(zeroSalt, mk, infoBytes, 44);
    return { key: okm.subarray(0, 32), nonce: okm.subarray(32, 44) };
  };
  return Object.freeze({
    name,
    info,
    /** The AES/ChaCha key and nonce a message key expands to (for vectors). */
    derive,
    seal(mk, plaintext, aad) {
      const { key, nonce } = derive(mk);
      return aead.seal(key, nonce, plaintext, aad);
    },
    open(mk, ciphertext, aad) {
      const { key, nonce } = derive(mk);
      return aead.open(key, nonce, ciphertext, aad);
    },
    /** The raw AEAD, for RFC/NIST known-answer tests. */
    raw: aead,
  });
}

export const AES256GCM = makeSuite('AES-256-GCM', 'aes-256-gcm', 'ratchetkit_MessageKeys_AES-256-GCM_v1');
export const CHACHA20POLY1305 = makeSuite(
  'ChaCha20-Poly1305',
  'chacha20-poly1305',
  'ratchetkit_MessageKeys_ChaCha20-Poly1305_v1',
);
