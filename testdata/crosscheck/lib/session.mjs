// Sessions and prekey messages (PROTOCOL.md section 7).
//
// Initiator: X3DH on a bundle, then every message is wrapped as a prekey
// message until the first successful decryption.
// Responder: routes prekey messages by EK_A, runs X3DH for new ones,
// consumes one-time prekeys only after success, keeps up to 40 sessions
// besides the current one, and tries them in order for ratchet messages.
// BareSession: a ratchet session alone (the driver's ratchet_init_*).

import { Kind, ProtocolError, fail } from './errors.mjs';
import { KeyPair } from './keys.mjs';
import { RatchetSession } from './ratchet.mjs';
import {
  MIN_RATCHET_LEN,
  TYPE_PREKEY,
  TYPE_RATCHET,
  buildPrekeyMessage,
  parsePrekeyMessage,
  parseRatchetMessage,
} from './wire.mjs';
import * as x3dh from './x3dh.mjs';

export const MAX_PREVIOUS_SESSIONS = 40;

/** A ratchet session with no prekey wrapping: accepts 0x01 messages only. */
export class BareSession {
  constructor(ratchet) {
    this.ratchet = ratchet;
  }

  encrypt(plaintext) {
    return this.ratchet.encrypt(plaintext);
  }

  decrypt(msg, opts) {
    return this.ratchet.decrypt(msg, opts); // parsing gives unknown_type for 0x02
  }
}

export class Initiator {
  /**
   * session_initiate: X3DH as Alice, then RatchetInitAlice with SPK_B.
   * @param {{ikPriv, ekPriv?, dhPriv?, bundle: {ik, spk, spkId, spkSig, opk?, opkId?}, info?}} p
   */
  static create({ ikPriv, ekPriv = null, dhPriv = null, bundle, info }) {
    const agreed = x3dh.initiate({ ikPriv, ekPriv, bundle, info });
    const ratchet = RatchetSession.initAlice({
      sk: agreed.sk,
      ad: agreed.ad,
      peerDh: bundle.spk,
      dhPriv,
    });
    const s = new Initiator();
    s.ratchet = ratchet;
    s.prekey = {
      ikA: agreed.ikA,
      ekA: agreed.ekA,
      spkId: bundle.spkId,
      opkId: bundle.opk == null ? null : bundle.opkId,
    };
    s.acknowledged = false; // becomes true on the first successful decryption
    x3dh.wipeResult(agreed);
    return s;
  }

  encrypt(plaintext) {
    const inner = this.ratchet.encrypt(plaintext);
    if (this.acknowledged) return inner;
    return buildPrekeyMessage({ ...this.prekey, inner });
  }

  decrypt(msg, opts) {
    if (msg.length < MIN_RATCHET_LEN) fail(Kind.malformed);
    if (msg[0] === TYPE_PREKEY) fail(Kind.noSession); // an initiator takes no prekey messages
    const pt = this.ratchet.decrypt(msg, opts);
    this.acknowledged = true;
    return pt;
  }
}

export class Responder {
  /**
   * session_respond: Bob's identity key, one signed prekey and a set of
   * one-time prekeys; no session and no trusted identity yet.
   * @param {{ikPriv, spk: {id, priv}, opks: {id, priv}[], info?}} p
   */
  constructor({ ikPriv, spk, opks = [], info }) {
    this.ik = new KeyPair(ikPriv);
    this.spk = { id: spk.id, pair: new KeyPair(spk.priv) };
    this.opks = new Map(); // id -> KeyPair, unused one-time prekeys
    for (const o of opks) {
      if (this.opks.has(o.id)) fail(Kind.malformed);
      this.opks.set(o.id, new KeyPair(o.priv));
    }
    this.info = info;
    this.sessions = []; // newest-created first: {ratchet, origin}
    this.current = null;
    this.peerIdentity = null; // trust on first use
  }

  encrypt(plaintext) {
    if (this.current === null) fail(Kind.noSession);
    return this.current.ratchet.encrypt(plaintext);
  }

  decrypt(msg, opts = {}) {
    if (msg.length < MIN_RATCHET_LEN) fail(Kind.malformed);
    if (msg[0] === TYPE_PREKEY) return this.#decryptPrekey(parsePrekeyMessage(msg), opts);
    if (msg[0] !== TYPE_RATCHET) fail(Kind.unknownType);
    parseRatchetMessage(msg); // all parse errors before any state is consulted
    return this.#decryptRatchet(msg, opts);
  }

  #decryptPrekey(pm, opts) {
    // 1. An existing session started by this EK_A.
    const existing = this.sessions.find((s) => s.origin.ekA.equals(pm.ekA));
    if (existing) {
      const o = existing.origin;
      if (!o.ikA.equals(pm.ikA) || o.spkId !== pm.spkId || o.flags !== pm.flags || o.opkId !== pm.opkId) {
        fail(Kind.malformed);
      }
      const pt = existing.ratchet.decrypt(pm.innerBytes, opts);
      this.current = existing;
      return pt;
    }
    // 2. A new session.
    if (this.peerIdentity !== null && !this.peerIdentity.equals(pm.ikA)) fail(Kind.untrustedIdentity);
    if (pm.spkId !== this.spk.id) fail(Kind.unknownPrekey);
    let opk = null;
    if (pm.opkId !== null) {
      opk = this.opks.get(pm.opkId);
      if (opk === undefined) fail(Kind.unknownPrekey);
    }
    const agreed = x3dh.respond({
      ikPriv: this.ik.priv,
      spkPriv: this.spk.pair.priv,
      opkPriv: opk ? opk.priv : null,
      peerIk: pm.ikA.encoded,
      peerEk: pm.ekA.encoded,
      info: this.info,
    });
    const ratchet = RatchetSession.initBob({ sk: agreed.sk, ad: agreed.ad, dhPriv: this.spk.pair.priv });
    x3dh.wipeResult(agreed);
    const pt = ratchet.decrypt(pm.innerBytes, opts); // throws: nothing is stored
    // Success: only now consume the one-time prekey and keep the session.
    if (pm.opkId !== null) this.opks.delete(pm.opkId);
    const session = {
      ratchet,
      origin: { ikA: pm.ikA, ekA: pm.ekA, spkId: pm.spkId, flags: pm.flags, opkId: pm.opkId },
    };
    this.sessions.unshift(session);
    this.current = session;
    if (this.peerIdentity === null) this.peerIdentity = pm.ikA;
    while (this.sessions.length > MAX_PREVIOUS_SESSIONS + 1) this.sessions.pop();
    return pt;
  }

  #decryptRatchet(msg, opts) {
    if (this.current === null) fail(Kind.noSession);
    const order = [this.current, ...this.sessions.filter((s) => s !== this.current)];
    let firstError = null;
    for (const s of order) {
      try {
        const pt = s.ratchet.decrypt(msg, opts);
        this.current = s;
        return pt;
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        firstError ??= err;
      }
    }
    throw firstError;
  }

  /** The encoded EK_A of every session, newest first (for tests). */
  get sessionKeys() {
    return this.sessions.map((s) => s.origin.ekA.encoded);
  }

  get currentIndex() {
    return this.sessions.findIndex((s) => s === this.current);
  }
}
