// senderkey_lib.mjs: what gen_senderkey.mjs (the committed Sender Key
// vectors) and live_senderkey.mjs (libsignal as a live group member) share:
// an in-memory SenderKeyStore and readers for libsignal's sender-key
// records and errors.

import * as SignalClient from '@signalapp/libsignal-client';
import { hex, u8, fields } from './lib.mjs';

export const {
  SenderKeyDistributionMessage, SenderKeyMessage, SenderKeyRecord, SenderKeyStore,
  ProtocolAddress, PrivateKey, processSenderKeyDistributionMessage, groupEncrypt, groupDecrypt,
} = SignalClient;

// MemorySenderKeys keeps serialized records by (sender, distribution id).
export class MemorySenderKeys extends SenderKeyStore {
  constructor() { super(); this.records = new Map(); }
  key(sender, id) { return `${sender.toString()}|${hex(typeof id === 'string' ? Buffer.from(id.replace(/-/g, ''), 'hex') : id)}`; }
  async saveSenderKey(sender, id, record) { this.records.set(this.key(sender, id), record.serialize()); }
  async getSenderKey(sender, id) {
    const b = this.records.get(this.key(sender, id));
    return b ? SenderKeyRecord.deserialize(b) : null;
  }
  forget(sender, id) { this.records.delete(this.key(sender, id)); }
  // snapshot is every record's bytes, to show that a failed decrypt
  // changed nothing.
  snapshot() { return [...this.records.entries()].sort().map(([k, v]) => `${k}=${hex(v)}`).join(';'); }
}

// uuidString formats 16 bytes as libsignal's distribution-id string.
export function uuidString(b) {
  const h = hex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// errorOf is libsignal's ErrorCode and message for a thrown error.
export const errorOf = (e) => ({ code: e.code ?? null, message: String(e.message) });

// recordStates decodes a SenderKeyRecordStructure (1: states) into each
// state's chain id (1), chain iteration and seed (2: {1, 2}), signing key
// public and private (3: {1, 2}), the count of stored message keys (4) and
// the message version (5).
export function recordStates(record) {
  return fields(u8(record)).filter(([n]) => n === 1).map(([, s]) => {
    const fs = fields(s);
    const one = (n) => { const f = fs.find(([k]) => k === n); return f ? f[1] : undefined; };
    const ck = fields(one(2) ?? u8([]));
    const sk = fields(one(3) ?? u8([]));
    const get = (f, n) => { const x = f.find(([k]) => k === n); return x ? x[1] : undefined; };
    return {
      chain_id: Number(one(1) ?? 0n),
      iteration: Number(get(ck, 1) ?? 0n),
      chain_key: hex(get(ck, 2) ?? []),
      signing_public: hex(get(sk, 1) ?? []),
      signing_private: hex(get(sk, 2) ?? []),
      message_keys: fs.filter(([k]) => k === 4).length,
      message_version: Number(one(5) ?? 0n),
    };
  });
}
