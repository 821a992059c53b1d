// live.mjs: libsignal as a live peer for the Go tests
// (internal/signalsuite/live_test.go). It plays the responder ("Bob") of one
// session of vectors.json, with that session's keys, and answers one JSON
// request per line on stdin with one JSON line on stdout:
//
//   {"op":"decrypt","from":"<address>","type":2|3,"wire":"<hex>"}
//       -> {"ok":true,"plaintext":"<hex>"} or {"ok":false,"error":"..."}
//   {"op":"encrypt","to":"<address>","plaintext":"<hex>"[,"days":n]}
//       -> {"ok":true,"type":2|3,"wire":"<hex>"}
//   ("days" moves libsignal's clock n days past the bundle's time.)
//
// With "as":"alice", a request is made by a second libsignal party, the
// initiator, which first processes a bundle the Go side publishes:
//
//   {"op":"process_bundle","as":"alice","to":"<address>","bundle":{...}}
//       -> {"ok":true,"identity":"<hex>"}
//
// (bundle fields as in vectors.json, hex; prekey and prekey_id may be null).
//
//   node live.mjs <session name> < requests.jsonl
//
// Each run starts from the vectors' stores, so runs are independent.

import readline from 'node:readline';
import { readFileSync } from 'node:fs';
import {
  PrivateKey, PublicKey, IdentityKeyPair, KEMPublicKey, PreKeyRecord, SignedPreKeyRecord, KyberPreKeyRecord,
  PreKeyBundle, ProtocolAddress, SignalMessage, PreKeySignalMessage,
  processPreKeyBundle, signalEncrypt, signalDecrypt, signalDecryptPreKey, Party, hex, u8, NOW,
} from './lib.mjs';

const v = JSON.parse(readFileSync(new URL('./vectors.json', import.meta.url)));
const s = v.sessions.find((x) => x.name === process.argv[2]);
if (!s) throw new Error(`no session ${process.argv[2]}`);
const fromHex = (h) => u8(Buffer.from(h, 'hex'));

const b = s.bob;
const bob = new Party(b.address, b.identity.registration_id,
  new IdentityKeyPair(PublicKey.deserialize(fromHex(b.identity.public)), PrivateKey.deserialize(fromHex(b.identity.private))));
bob.signed.set(b.signed_prekey.id, SignedPreKeyRecord.new(b.signed_prekey.id, 1767225600000,
  PublicKey.deserialize(fromHex(b.signed_prekey.public)), PrivateKey.deserialize(fromHex(b.signed_prekey.private)),
  fromHex(b.signed_prekey.signature)));
if (b.one_time_prekey) {
  bob.prekeys.set(b.one_time_prekey.id, PreKeyRecord.new(b.one_time_prekey.id,
    PublicKey.deserialize(fromHex(b.one_time_prekey.public)), PrivateKey.deserialize(fromHex(b.one_time_prekey.private))));
}
bob.kyber.set(b.kyber_prekey.id, KyberPreKeyRecord.deserialize(fromHex(b.kyber_prekey.record)));

const alice = new Party('libsignal-alice', 777, IdentityKeyPair.generate());

async function handle(req) {
  const me = req.as === 'alice' ? alice : bob;
  if (req.op === 'process_bundle') {
    const g = req.bundle;
    const bundle = PreKeyBundle.new(g.registration_id, g.device_id,
      g.prekey_id, g.prekey ? PublicKey.deserialize(fromHex(g.prekey)) : null,
      g.signed_prekey_id, PublicKey.deserialize(fromHex(g.signed_prekey)), fromHex(g.signed_prekey_signature),
      PublicKey.deserialize(fromHex(g.identity_key)),
      g.kyber_prekey_id, KEMPublicKey.deserialize(fromHex(g.kyber_prekey)), fromHex(g.kyber_prekey_signature));
    await processPreKeyBundle(bundle, ProtocolAddress.new(req.to, 1), alice.address, alice.sessionStore, alice.identityStore, NOW);
    return { ok: true, identity: hex(alice.identity.publicKey.serialize()) };
  }
  if (req.op === 'decrypt') {
    const from = ProtocolAddress.new(req.from, 1);
    const wire = fromHex(req.wire);
    const pt = req.type === 3
      ? await signalDecryptPreKey(PreKeySignalMessage.deserialize(wire), from, me.address,
        me.sessionStore, me.identityStore, me.preKeyStore, me.signedStore, me.kyberStore)
      : await signalDecrypt(SignalMessage.deserialize(wire), from, me.address, me.sessionStore, me.identityStore);
    return { ok: true, plaintext: hex(pt) };
  }
  if (req.op === 'encrypt') {
    const now = req.days ? new Date(NOW.getTime() + req.days * 86400e3) : NOW;
    const ct = await signalEncrypt(fromHex(req.plaintext), ProtocolAddress.new(req.to, 1), me.address,
      me.sessionStore, me.identityStore, now);
    return { ok: true, type: ct.type(), wire: hex(ct.serialize()) };
  }
  throw new Error(`unknown op ${req.op}`);
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
for await (const line of rl) {
  let out;
  try { out = await handle(JSON.parse(line)); } catch (e) { out = { ok: false, error: String(e.message) }; }
  process.stdout.write(JSON.stringify(out) + '\n');
}
