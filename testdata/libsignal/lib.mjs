// lib.mjs: the pieces gen.mjs (the committed vectors) and live.mjs (the
// live peer of the Go tests) share: in-memory libsignal stores, a reader for
// libsignal's session records and a writer for KyberPreKeyRecords.

import * as SignalClient from '@signalapp/libsignal-client';
import { createHash } from 'node:crypto';

export const {
  PrivateKey, PublicKey, IdentityKeyPair, KEMKeyPair, KEMPublicKey,
  PreKeyRecord, SignedPreKeyRecord, KyberPreKeyRecord, PreKeyBundle,
  ProtocolAddress, SessionRecord, SignalMessage, PreKeySignalMessage,
  processPreKeyBundle, signalEncrypt, signalDecrypt, signalDecryptPreKey,
  SessionStore, IdentityKeyStore, PreKeyStore, SignedPreKeyStore, KyberPreKeyStore,
  IdentityChange,
} = SignalClient;

export const hex = (b) => Buffer.from(b).toString('hex');
export const sha256 = (...parts) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
export const u8 = (b) => new Uint8Array(b);

// A fixed clock: pending-prekey timestamps end up in session records.
export const NOW = new Date('2026-01-01T00:00:00Z');

// ---- minimal protobuf reader, for libsignal's session records ----------
function readVarint(buf, pos) {
  let x = 0n, shift = 0n;
  for (;;) {
    const b = buf[pos++];
    x |= BigInt(b & 0x7f) << shift;
    if (!(b & 0x80)) return [x, pos];
    shift += 7n;
  }
}
export function fields(buf) {
  const out = [];
  let pos = 0;
  while (pos < buf.length) {
    let key;
    [key, pos] = readVarint(buf, pos);
    const num = Number(key >> 3n), wt = Number(key & 7n);
    if (wt === 0) { let v; [v, pos] = readVarint(buf, pos); out.push([num, v]); }
    else if (wt === 2) {
      let len; [len, pos] = readVarint(buf, pos);
      out.push([num, buf.subarray(pos, pos + Number(len))]); pos += Number(len);
    } else if (wt === 1) { out.push([num, buf.subarray(pos, pos + 8)]); pos += 8; }
    else if (wt === 5) { out.push([num, buf.subarray(pos, pos + 4)]); pos += 4; }
    else throw new Error(`wire type ${wt}`);
  }
  return out;
}
const first = (fs, n) => { const f = fs.find(([k]) => k === n); return f ? f[1] : undefined; };
function chainView(buf) {
  const fs = fields(buf);
  const ck = first(fs, 3);
  const ckf = ck ? fields(ck) : [];
  const v = {
    ratchet_key: hex(first(fs, 1) ?? []),
    chain_index: Number(first(ckf, 1) ?? 0n),
    chain_key: hex(first(ckf, 2) ?? []),
  };
  const priv = first(fs, 2);
  if (priv) v.ratchet_private = hex(priv);
  return v;
}
// sessionView decodes the current SessionStructure of a RecordStructure:
// the root key and the sending and receiving chains.
export function sessionView(record) {
  const rec = fields(u8(record.serialize()));
  const cur = first(rec, 1);
  if (!cur) return null;
  const fs = fields(cur);
  return {
    session_version: Number(first(fs, 1) ?? 0n),
    root_key: hex(first(fs, 4) ?? []),
    sender_chain: first(fs, 6) ? chainView(first(fs, 6)) : null,
    receiver_chains: fs.filter(([k]) => k === 7).map(([, v]) => chainView(v)),
    previous_sessions: rec.filter(([k]) => k === 2).length,
  };
}

// ---- in-memory stores ---------------------------------------------------
export class Party {
  constructor(name, regId, identity) {
    this.name = name;
    this.address = ProtocolAddress.new(name, 1);
    this.regId = regId;
    this.identity = identity;
    this.sessions = new Map();
    this.identities = new Map();
    this.prekeys = new Map();
    this.signed = new Map();
    this.kyber = new Map();
    this.kyberUsed = [];
    const self = this;
    this.sessionStore = new (class extends SessionStore {
      async saveSession(a, r) { self.sessions.set(a.toString(), r.serialize()); }
      async getSession(a) {
        const b = self.sessions.get(a.toString());
        return b ? SessionRecord.deserialize(b) : null;
      }
      async getExistingSessions(as) { return as.map((a) => SessionRecord.deserialize(self.sessions.get(a.toString()))); }
    })();
    this.identityStore = new (class extends IdentityKeyStore {
      async getIdentityKey() { return self.identity.privateKey; }
      async getLocalRegistrationId() { return self.regId; }
      async saveIdentity(a, k) {
        const old = self.identities.get(a.toString());
        self.identities.set(a.toString(), k.serialize());
        return old && hex(old) !== hex(k.serialize()) ? IdentityChange.ReplacedExisting : IdentityChange.NewOrUnchanged;
      }
      async isTrustedIdentity(a, k) {
        const old = self.identities.get(a.toString());
        return !old || hex(old) === hex(k.serialize());
      }
      async getIdentity(a) { const b = self.identities.get(a.toString()); return b ? PublicKey.deserialize(b) : null; }
    })();
    this.preKeyStore = new (class extends PreKeyStore {
      async savePreKey(id, r) { self.prekeys.set(id, r); }
      async getPreKey(id) { const r = self.prekeys.get(id); if (!r) throw new Error(`no prekey ${id}`); return r; }
      async removePreKey(id) { self.prekeys.delete(id); }
    })();
    this.signedStore = new (class extends SignedPreKeyStore {
      async saveSignedPreKey(id, r) { self.signed.set(id, r); }
      async getSignedPreKey(id) { const r = self.signed.get(id); if (!r) throw new Error(`no signed prekey ${id}`); return r; }
    })();
    this.kyberStore = new (class extends KyberPreKeyStore {
      async saveKyberPreKey(id, r) { self.kyber.set(id, r); }
      async getKyberPreKey(id) { const r = self.kyber.get(id); if (!r) throw new Error(`no kyber prekey ${id}`); return r; }
      async markKyberPreKeyUsed(id, signedId, baseKey) { self.kyberUsed.push({ id, signed_id: signedId, base_key: hex(baseKey.serialize()) }); }
    })();
  }
  view(peer) {
    const b = this.sessions.get(peer.address.toString());
    return b ? sessionView(SessionRecord.deserialize(b)) : null;
  }
}

// ---- protobuf writer for a KyberPreKeyRecord (SignedPreKeyRecordStructure:
// 1 id, 2 public_key, 3 private_key, 4 signature, 5 fixed64 timestamp) ----
function varint(n) {
  const out = [];
  let x = BigInt(n);
  do { let b = Number(x & 0x7fn); x >>= 7n; if (x) b |= 0x80; out.push(b); } while (x);
  return out;
}
function bytesField(num, b) { return [...varint((num << 3) | 2), ...varint(b.length), ...b]; }
export function kyberRecord(id, pub, sec, sig, ts) {
  const t = Buffer.alloc(8); t.writeBigUInt64LE(BigInt(ts));
  return u8([
    ...varint(1 << 3), ...varint(id),
    ...bytesField(2, pub), ...bytesField(3, sec), ...bytesField(4, sig),
    ...varint((5 << 3) | 1), ...t,
  ]);
}

