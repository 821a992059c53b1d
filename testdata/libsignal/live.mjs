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
// (bundle fields as in vectors.json, hex; prekey and prekey_id may be null;
// an optional "days" moves the session's start n days past the bundle's
// time). With "as":"bob" the responder processes the bundle instead.
//
// Resets and identities, for either party ("as" as above):
//
//   {"op":"delete_session","with":"<address>"}  -> {"ok":true}
//       (the party loses its session record with the address)
//   {"op":"new_identity"}  -> {"ok":true,"wire":"<new identity key, hex>"}
//       (a reinstall: a new IdentityKeyPair; every session, trusted
//       identity and prekey of the party is gone)
//   {"op":"bundle","prekey":true|false}  -> {"ok":true,"wire":"<hex>"}
//       (new signed, one-time EC (if "prekey") and Kyber prekeys, signed by
//       the current identity key; "wire" is the hex of the bundle's JSON,
//       fields as in vectors.json, because the Go side reads every reply
//       as a libsignaltest.Reply)
//   {"op":"trust","address":"<address>","identity":"<hex>"}
//       -> {"ok":true,"type":<IdentityChange>}  (saveIdentity: how a
//       libsignal application approves a changed key)
//   {"op":"identity","address":"<address>"}
//       -> {"ok":true,"wire":"<trusted key, hex, or empty>"}
//   {"op":"sessions","with":"<address>"}
//       -> {"ok":true,"type":<previous (archived) states in the record>}
//
// The Kyber prekey stores refuse a (Kyber id, signed id, base key) triple
// already marked used, as libsignal's reference InMemKyberPreKeyStore
// does; libsignal calls markKyberPreKeyUsed before it saves the session,
// so such a refusal saves nothing.
//
//   node live.mjs <session name> < requests.jsonl
//
// Each run starts from the vectors' stores, so runs are independent.

import readline from 'node:readline';
import { readFileSync } from 'node:fs';
import {
  PrivateKey, PublicKey, IdentityKeyPair, KEMPublicKey, PreKeyRecord, SignedPreKeyRecord, KyberPreKeyRecord,
  PreKeyBundle, ProtocolAddress, SignalMessage, PreKeySignalMessage, KEMKeyPair,
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

// refuseReusedKyber makes a party's markKyberPreKeyUsed refuse a triple it
// has seen, like libsignal's InMemKyberPreKeyStore.
function refuseReusedKyber(p) {
  const mark = p.kyberStore.markKyberPreKeyUsed.bind(p.kyberStore);
  p.kyberStore.markKyberPreKeyUsed = async (id, signedId, baseKey) => {
    const key = `${id}/${signedId}/${hex(baseKey.serialize())}`;
    if (p.kyberUsed.some((u) => `${u.id}/${u.signed_id}/${u.base_key}` === key)) throw new Error('reused base key');
    return mark(id, signedId, baseKey);
  };
}
refuseReusedKyber(bob);
refuseReusedKyber(alice);

// nextID numbers the prekeys of fresh bundles, above every id in the vectors.
let nextID = 10000;

function freshBundle(me, withPreKey) {
  const priv = me.identity.privateKey;
  const spkID = nextID++;
  const spk = PrivateKey.generate();
  const spkSig = priv.sign(spk.getPublicKey().serialize());
  me.signed.set(spkID, SignedPreKeyRecord.new(spkID, NOW.getTime(), spk.getPublicKey(), spk, spkSig));
  const kID = nextID++;
  const kp = KEMKeyPair.generate();
  const kSig = priv.sign(kp.getPublicKey().serialize());
  me.kyber.set(kID, KyberPreKeyRecord.new(kID, NOW.getTime(), kp, kSig));
  const out = {
    registration_id: me.regId, device_id: 1, prekey_id: null, prekey: null,
    signed_prekey_id: spkID, signed_prekey: hex(spk.getPublicKey().serialize()), signed_prekey_signature: hex(spkSig),
    identity_key: hex(me.identity.publicKey.serialize()),
    kyber_prekey_id: kID, kyber_prekey: hex(kp.getPublicKey().serialize()), kyber_prekey_signature: hex(kSig),
  };
  if (withPreKey) {
    const id = nextID++;
    const k = PrivateKey.generate();
    me.prekeys.set(id, PreKeyRecord.new(id, k.getPublicKey(), k));
    out.prekey_id = id;
    out.prekey = hex(k.getPublicKey().serialize());
  }
  return out;
}

const asWire = (obj) => hex(Buffer.from(JSON.stringify(obj)));

async function handle(req) {
  const me = req.as === 'alice' ? alice : bob;
  if (req.op === 'process_bundle') {
    const g = req.bundle;
    const bundle = PreKeyBundle.new(g.registration_id, g.device_id,
      g.prekey_id, g.prekey ? PublicKey.deserialize(fromHex(g.prekey)) : null,
      g.signed_prekey_id, PublicKey.deserialize(fromHex(g.signed_prekey)), fromHex(g.signed_prekey_signature),
      PublicKey.deserialize(fromHex(g.identity_key)),
      g.kyber_prekey_id, KEMPublicKey.deserialize(fromHex(g.kyber_prekey)), fromHex(g.kyber_prekey_signature));
    const now = req.days ? new Date(NOW.getTime() + req.days * 86400e3) : NOW;
    await processPreKeyBundle(bundle, ProtocolAddress.new(req.to, 1), me.address, me.sessionStore, me.identityStore, now);
    return { ok: true, identity: hex(me.identity.publicKey.serialize()) };
  }
  if (req.op === 'delete_session') {
    me.sessions.delete(ProtocolAddress.new(req.with, 1).toString());
    return { ok: true };
  }
  if (req.op === 'new_identity') {
    me.identity = IdentityKeyPair.generate();
    for (const m of [me.sessions, me.identities, me.prekeys, me.signed, me.kyber]) m.clear();
    me.kyberUsed.length = 0;
    return { ok: true, wire: hex(me.identity.publicKey.serialize()) };
  }
  if (req.op === 'bundle') {
    return { ok: true, wire: asWire(freshBundle(me, req.prekey)) };
  }
  if (req.op === 'trust') {
    const change = await me.identityStore.saveIdentity(ProtocolAddress.new(req.address, 1), PublicKey.deserialize(fromHex(req.identity)));
    return { ok: true, type: change };
  }
  if (req.op === 'identity') {
    const k = await me.identityStore.getIdentity(ProtocolAddress.new(req.address, 1));
    return { ok: true, wire: k ? hex(k.serialize()) : '' };
  }
  if (req.op === 'sessions') {
    const v = me.sessions.has(ProtocolAddress.new(req.with, 1).toString()) ? me.view({ address: ProtocolAddress.new(req.with, 1) }) : null;
    return { ok: true, type: v ? v.previous_sessions : -1 };
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
