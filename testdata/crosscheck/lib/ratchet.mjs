// The Double Ratchet of PROTOCOL.md section 5: KDFs, initialisation for both
// roles, encryption, and all-or-nothing decryption with bounded skipped keys.
//
// The code follows the specification's pseudocode and names (DHs, DHr, RK,
// CKs, CKr, Ns, Nr, PN, MKSKIPPED). decrypt works on a copy of the state and
// only replaces the state when the AEAD accepted the message.

import { concat, hex, utf8, wipe } from './bytes.mjs';
import { Kind, fail } from './errors.mjs';
import { KeyPair, PublicKey, dh } from './keys.mjs';
import { AES256GCM, hkdf, hmac } from './primitives.mjs';
import { buildHeader, parseRatchetMessage } from './wire.mjs';

export const DEFAULT_MAX_SKIP = 1000;
export const DEFAULT_MAX_SKIPPED_KEYS = 2000;
export const U32_MAX = 0xffffffff;

const RATCHET_INFO = utf8('ratchetkit_Ratchet_v1');
const CK_MESSAGE = Uint8Array.of(0x01);
const CK_CHAIN = Uint8Array.of(0x02);

/** KDF_RK(rk, dh_out) → [new root key, new chain key]. */
export function kdfRk(rk, dhOut) {
  const okm = hkdf(rk, dhOut, RATCHET_INFO, 64);
  return [okm.slice(0, 32), okm.slice(32, 64)];
}

/** KDF_CK(ck) → [next chain key, message key]. */
export function kdfCk(ck) {
  return [hmac(ck, CK_CHAIN), hmac(ck, CK_MESSAGE)];
}

function checkLimit(value, fallback) {
  if (value == null) return fallback;
  if (!Number.isInteger(value) || value < 0 || value > U32_MAX) fail(Kind.malformed);
  return value;
}

const skippedId = (dhEncoded, n) => `${hex(dhEncoded)}:${n}`;

export class RatchetSession {
  /** Use initAlice / initBob. */
  constructor(fields) {
    Object.assign(this, fields);
  }

  static #common({ ad, maxSkip, maxSkippedKeys, suite }) {
    return {
      ad: Uint8Array.from(ad),
      maxSkip: checkLimit(maxSkip, DEFAULT_MAX_SKIP),
      maxSkippedKeys: checkLimit(maxSkippedKeys, DEFAULT_MAX_SKIPPED_KEYS),
      suite: suite ?? AES256GCM,
      ns: 0,
      nr: 0,
      pn: 0,
      ckr: null,
      skipped: new Map(), // insertion order = age; see SkipMessageKeys
    };
  }

  static #checkSk(sk) {
    if (!(sk instanceof Uint8Array) || sk.length !== 32) fail(Kind.malformed);
  }

  /**
   * RatchetInitAlice (PROTOCOL.md 5.4): peerDh is Bob's signed prekey as a
   * 33-byte encoding; dhPriv injects Alice's first ratchet key.
   */
  static initAlice({ sk, ad, peerDh, dhPriv = null, maxSkip, maxSkippedKeys, suite }) {
    RatchetSession.#checkSk(sk);
    const common = RatchetSession.#common({ ad, maxSkip, maxSkippedKeys, suite });
    const dhr = PublicKey.decode(peerDh);
    const dhs = KeyPair.fromOptional(dhPriv);
    const [rk, cks] = kdfRk(sk, dh(dhs.priv, dhr));
    return new RatchetSession({ ...common, dhs, dhr, rk, cks });
  }

  /** RatchetInitBob (PROTOCOL.md 5.4): dhPriv is Bob's signed prekey. */
  static initBob({ sk, ad, dhPriv, maxSkip, maxSkippedKeys, suite }) {
    RatchetSession.#checkSk(sk);
    const common = RatchetSession.#common({ ad, maxSkip, maxSkippedKeys, suite });
    const dhs = new KeyPair(dhPriv);
    return new RatchetSession({ ...common, dhs, dhr: null, rk: Uint8Array.from(sk), cks: null });
  }

  /** RatchetEncrypt (PROTOCOL.md 5.5). */
  encrypt(plaintext) {
    if (this.cks === null) fail(Kind.noSession);
    // At most 2^32 - 2 messages per chain, so that PN (this chain's final
    // Ns) is never 2^32 - 1, which every parser refuses (PROTOCOL.md 5.8).
    if (this.ns >= U32_MAX - 1) fail(Kind.counterOverflow);
    const [cks, mk] = kdfCk(this.cks);
    const header = buildHeader(this.dhs.pub, this.pn, this.ns);
    const ct = this.suite.seal(mk, plaintext, concat(this.ad, header));
    wipe(this.cks);
    this.cks = cks;
    this.ns += 1;
    wipe(mk);
    return concat(header, ct);
  }

  /**
   * RatchetDecrypt (PROTOCOL.md 5.6). dhPriv injects the ratchet key a DH
   * step would generate. On any error the session is left exactly as it was.
   */
  decrypt(msg, { dhPriv = null } = {}) {
    const { header, dh: dhPub, pn, n, ct } = parseRatchetMessage(msg);
    const s = this.clone();
    let mk;
    const id = skippedId(dhPub.encoded, n);
    if (s.skipped.has(id)) {
      mk = s.skipped.get(id).mk;
      s.skipped.delete(id);
    } else {
      if (s.dhr !== null && dhPub.equals(s.dhr)) {
        // The current receiving chain. Alice's initial DHr (Bob's signed
        // prekey) has no chain: no honest message can use it.
        if (s.ckr === null) fail(Kind.authFailed);
        if (n < s.nr) fail(Kind.duplicate);
        s.#skipMessageKeys(n);
      } else {
        // A new ratchet key. Both limits are checked before any DH work.
        if (s.nr + s.maxSkip < pn) fail(Kind.tooManySkipped);
        if (s.maxSkip < n) fail(Kind.tooManySkipped);
        s.#skipMessageKeys(pn);
        s.#dhRatchet(dhPub, dhPriv);
        s.#skipMessageKeys(n);
      }
      [s.ckr, mk] = kdfCk(s.ckr);
      s.nr += 1;
    }
    const plaintext = s.suite.open(mk, ct, concat(s.ad, header));
    if (plaintext === null) fail(Kind.authFailed);
    wipe(mk);
    this.#adopt(s);
    return plaintext;
  }

  #skipMessageKeys(until) {
    // Nr + MaxSkip < until, in exact integer arithmetic (both are < 2^33).
    if (this.nr + this.maxSkip < until) fail(Kind.tooManySkipped);
    if (this.ckr === null) return;
    while (this.nr < until) {
      let mk;
      [this.ckr, mk] = kdfCk(this.ckr);
      // A peer that reuses a ratchet key can make (key, N) repeat: the new
      // key replaces the old one and counts as the newest (delete, then set,
      // because Map.set on an existing key keeps its old position).
      const id = skippedId(this.dhr.encoded, this.nr);
      this.skipped.delete(id);
      this.skipped.set(id, { mk });
      while (this.skipped.size > this.maxSkippedKeys) {
        const oldest = this.skipped.keys().next().value;
        wipe(this.skipped.get(oldest).mk);
        this.skipped.delete(oldest);
      }
      this.nr += 1;
    }
  }

  #dhRatchet(dhPub, dhPriv) {
    this.pn = this.ns;
    this.ns = 0;
    this.nr = 0;
    this.dhr = dhPub;
    [this.rk, this.ckr] = kdfRk(this.rk, dh(this.dhs.priv, this.dhr));
    this.dhs = KeyPair.fromOptional(dhPriv);
    [this.rk, this.cks] = kdfRk(this.rk, dh(this.dhs.priv, this.dhr));
  }

  /** A deep copy: decrypt mutates only the copy until it succeeds. */
  clone() {
    const skipped = new Map();
    for (const [k, v] of this.skipped) skipped.set(k, { mk: Uint8Array.from(v.mk) });
    const copy = (b) => (b === null ? null : Uint8Array.from(b));
    return new RatchetSession({
      ...this,
      rk: copy(this.rk),
      cks: copy(this.cks),
      ckr: copy(this.ckr),
      skipped,
    });
  }

  #adopt(s) {
    Object.assign(this, s);
  }

  /**
   * Every secret and counter as one string, for tests that check that a
   * failed operation changed nothing. Never send this anywhere.
   */
  snapshot() {
    const b = (x) => (x === null ? null : hex(x));
    return JSON.stringify({
      dhs: hex(this.dhs.priv),
      dhr: this.dhr === null ? null : hex(this.dhr.encoded),
      rk: b(this.rk),
      cks: b(this.cks),
      ckr: b(this.ckr),
      ns: this.ns,
      nr: this.nr,
      pn: this.pn,
      skipped: [...this.skipped].map(([k, v]) => [k, hex(v.mk)]),
    });
  }

  /** Number of stored skipped message keys. */
  get skippedCount() {
    return this.skipped.size;
  }

  [Symbol.for('nodejs.util.inspect.custom')]() {
    return `RatchetSession(Ns=${this.ns}, Nr=${this.nr}, PN=${this.pn}, skipped=${this.skipped.size})`;
  }
}
