// gen.mjs makes testdata/libsignal/vectors.json with libsignal itself
// (@signalapp/libsignal-client, pinned in package-lock.json), so that the Go
// tests can replay what the real library does without Node.
//
//   cd testdata/libsignal && npm ci && node gen.mjs > vectors.json
//
// libsignal draws its own randomness (identity keys, base keys, ratchet
// keys, Kyber encapsulation, XEdDSA nonces), so every run gives different
// bytes; the file records what this run produced. Everything a replay
// needs is written out: all private keys of both parties (read back from
// libsignal's own records), the public bundle, every wire message in the
// order it was delivered, and libsignal's session state after each step.
//
// The responder's Kyber prekeys are the one input that is not
// libsignal's: Go's crypto/mlkem holds a decapsulation key as its 64-byte
// seed and cannot load libsignal's 3168-byte expanded secret key, so the
// Kyber key pairs that the Go tests decapsulate with are made from fixed
// seeds (FIPS 203 ML-KEM.KeyGen_internal, by @noble/post-quantum) and
// handed to libsignal in a KyberPreKeyRecord. libsignal then signs,
// encapsulates and decapsulates with them like any other key. One further
// Kyber prekey is libsignal's own (KEMKeyPair.generate), recorded for the
// parse/serialize and signature vectors.

import {
  PrivateKey, PublicKey, IdentityKeyPair, KEMKeyPair, KEMPublicKey,
  PreKeyRecord, SignedPreKeyRecord, KyberPreKeyRecord, PreKeyBundle,
  SignalMessage, PreKeySignalMessage,
  processPreKeyBundle, signalEncrypt, signalDecrypt, signalDecryptPreKey,
  Party, hex, sha256, u8, NOW, kyberRecord,
} from './lib.mjs';
import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';

// seededKyber makes a Kyber1024 prekey whose secret is known as a seed.
function seededKyber(label) {
  const seed = new Uint8Array([...sha256('ratchetkit kyber seed d ', label), ...sha256('ratchetkit kyber seed z ', label)]);
  const kp = ml_kem1024.keygen(seed);
  return { seed, pub: u8([0x08, ...kp.publicKey]), sec: u8([0x08, ...kp.secretKey]) };
}

function signed(party, id, ts) {
  const priv = PrivateKey.generate();
  const pub = priv.getPublicKey();
  const sig = party.identity.privateKey.sign(pub.serialize());
  const rec = SignedPreKeyRecord.new(id, ts, pub, priv, sig);
  party.signed.set(id, rec);
  return { id, public: hex(pub.serialize()), private: hex(priv.serialize()), signature: hex(sig) };
}
function oneTime(party, id) {
  const priv = PrivateKey.generate();
  const rec = PreKeyRecord.new(id, priv.getPublicKey(), priv);
  party.prekeys.set(id, rec);
  return { id, public: hex(priv.getPublicKey().serialize()), private: hex(priv.serialize()) };
}
function kyberPrekey(party, id, label, ts) {
  const k = seededKyber(label);
  const sig = party.identity.privateKey.sign(k.pub);
  const rec = KyberPreKeyRecord.deserialize(kyberRecord(id, k.pub, k.sec, sig, ts));
  party.kyber.set(id, rec);
  if (hex(rec.publicKey().serialize()) !== hex(k.pub)) throw new Error('kyber record public key');
  return { id, seed: hex(k.seed), public: hex(k.pub), secret_libsignal: hex(k.sec), signature: hex(sig), record: hex(rec.serialize()) };
}
function identityOf(party) {
  return {
    public: hex(party.identity.publicKey.serialize()),
    private: hex(party.identity.privateKey.serialize()),
    serialized_pair: hex(party.identity.serialize()),
    registration_id: party.regId,
  };
}

function plaintext(i) {
  // Lengths cover the PKCS#7 edges: 0, 15, 16, 17, 31, 32, 33, ...
  const lens = [0, 1, 15, 16, 17, 31, 32, 33, 47, 48, 100, 255];
  const n = lens[i % lens.length] + (i >= lens.length ? i : 0);
  const out = new Uint8Array(n);
  let block = sha256('ratchetkit plaintext ', String(i));
  for (let j = 0; j < n; j++) {
    if (j && j % 32 === 0) block = sha256(block);
    out[j] = block[j % 32];
  }
  return out;
}

// A small deterministic PRNG for the send schedule.
function rng(seed) {
  let s = seed >>> 0;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 2 ** 32; };
}

async function errorOf(p) {
  try { await p; return null; } catch (e) { return { code: e.code ?? null, message: String(e.message) }; }
}

// session runs one PQXDH session and a transcript between a fresh Alice
// (initiator) and Bob (responder).
async function session(opts) {
  const alice = new Party(opts.alice ?? 'alice', 4660, IdentityKeyPair.generate());
  const bob = new Party(opts.bob ?? 'bob', 13398, IdentityKeyPair.generate());
  const spk = signed(bob, 7, 1767225600000);
  const opk = opts.oneTime ? oneTime(bob, 31) : null;
  const kpk = kyberPrekey(bob, 1001, `${opts.name} bob 1001`, 1767225600000);
  const bundle = PreKeyBundle.new(
    bob.regId, 1,
    opk ? opk.id : null, opk ? PublicKey.deserialize(Buffer.from(opk.public, 'hex')) : null,
    spk.id, PublicKey.deserialize(Buffer.from(spk.public, 'hex')), Buffer.from(spk.signature, 'hex'),
    bob.identity.publicKey,
    kpk.id, KEMPublicKey.deserialize(Buffer.from(kpk.public, 'hex')), Buffer.from(kpk.signature, 'hex'),
  );
  await processPreKeyBundle(bundle, bob.address, alice.address, alice.sessionStore, alice.identityStore, NOW);
  const out = {
    name: opts.name,
    alice: { address: alice.name, identity: identityOf(alice) },
    bob: { address: bob.name, identity: identityOf(bob), signed_prekey: spk, one_time_prekey: opk, kyber_prekey: kpk },
    bundle: {
      registration_id: bob.regId, device_id: 1,
      prekey_id: opk ? opk.id : null, prekey: opk ? opk.public : null,
      signed_prekey_id: spk.id, signed_prekey: spk.public, signed_prekey_signature: spk.signature,
      identity_key: hex(bob.identity.publicKey.serialize()),
      kyber_prekey_id: kpk.id, kyber_prekey: kpk.public, kyber_prekey_signature: kpk.signature,
    },
    alice_after_bundle: alice.view(bob),
    messages: [],
  };
  const parties = { alice, bob };
  const peers = { alice: bob, bob: alice };
  const next = rng(opts.seed);
  let from = 'alice';
  const pending = [];
  for (let i = 0; i < opts.count; i++) {
    const sender = parties[from], receiver = peers[from];
    const pt = plaintext(i);
    const ct = await signalEncrypt(pt, receiver.address, sender.address, sender.sessionStore, sender.identityStore, NOW);
    const wire = u8(ct.serialize());
    const m = { seq: i, from, type: ct.type(), wire: hex(wire), plaintext: hex(pt), sender_after: sender.view(receiver) };
    // A message is sometimes held back and delivered after the next one
    // from the same sender (out-of-order delivery on one chain).
    if (opts.reorder && next() < 0.15 && pending.length === 0) {
      pending.push(m);
    } else {
      await deliver(m, receiver, sender);
      out.messages.push(m);
      if (pending.length && pending[0].from === from) {
        const late = pending.shift();
        await deliver(late, receiver, sender);
        out.messages.push(late);
      }
    }
    // Switch direction after a burst; the first reply ends Alice's
    // PreKeySignalMessages.
    if (next() < 0.45 && pending.length === 0) from = from === 'alice' ? 'bob' : 'alice';
  }
  for (const late of pending) {
    await deliver(late, peers[late.from], parties[late.from]);
    out.messages.push(late);
  }
  out.kyber_marked_used = bob.kyberUsed;
  out.one_time_prekey_removed = opk ? !bob.prekeys.has(opk.id) : null;
  out.parties = { alice, bob };
  return out;
}

async function deliver(m, receiver, sender) {
  const wire = Buffer.from(m.wire, 'hex');
  let pt;
  if (m.type === 3) {
    pt = await signalDecryptPreKey(PreKeySignalMessage.deserialize(wire), sender.address, receiver.address,
      receiver.sessionStore, receiver.identityStore, receiver.preKeyStore, receiver.signedStore, receiver.kyberStore);
  } else {
    pt = await signalDecrypt(SignalMessage.deserialize(wire), sender.address, receiver.address,
      receiver.sessionStore, receiver.identityStore);
  }
  if (hex(pt) !== m.plaintext) throw new Error(`message ${m.seq}: plaintext mismatch`);
  m.delivered = true;
  m.receiver_after = receiver.view(sender);
}

// negatives tampers with fresh messages of an established session and
// records what libsignal says; after each refusal the untouched message
// must still decrypt (decryption changed no state).
async function negatives(s) {
  const { alice, bob } = s.parties;
  const out = [];
  const variants = [
    ['mac_flipped', (w) => { w[w.length - 1] ^= 0x01; }],
    ['ciphertext_flipped', (w) => { w[w.length - 9] ^= 0x80; }],
    ['version_0x34', (w) => { w[0] = 0x34; }],
    ['version_0x54', (w) => { w[0] = 0x54; }],
    ['version_0x43', (w) => { w[0] = 0x43; }],
    ['version_0x24', (w) => { w[0] = 0x24; }],
    ['truncated_by_1', null, (w) => w.subarray(0, w.length - 1)],
    ['truncated_to_8', null, (w) => w.subarray(0, 8)],
    ['empty', null, () => new Uint8Array(0)],
    ['mac_removed', null, (w) => w.subarray(0, w.length - 8)],
  ];
  for (const [name, mutate, cut] of variants) {
    const pt = plaintext(1000 + out.length);
    const ct = await signalEncrypt(pt, bob.address, alice.address, alice.sessionStore, alice.identityStore, NOW);
    if (ct.type() !== 2) throw new Error('negatives need an acknowledged session');
    const good = u8(ct.serialize());
    let bad = u8(good);
    if (mutate) mutate(bad);
    if (cut) bad = u8(cut(bad));
    const before = bob.view(alice);
    let err;
    try {
      const msg = SignalMessage.deserialize(Buffer.from(bad));
      err = await errorOf(signalDecrypt(msg, alice.address, bob.address, bob.sessionStore, bob.identityStore));
      if (err) err.stage = 'decrypt';
    } catch (e) {
      err = { code: e.code ?? null, message: String(e.message), stage: 'deserialize' };
    }
    const unchanged = JSON.stringify(before) === JSON.stringify(bob.view(alice));
    const after = await signalDecrypt(SignalMessage.deserialize(Buffer.from(good)), alice.address, bob.address, bob.sessionStore, bob.identityStore);
    out.push({ name, wire: hex(bad), original: hex(good), plaintext: hex(pt), error: err, state_unchanged: unchanged, original_decrypted_after: hex(after) === hex(pt) });
  }
  // A replay of a delivered message is a DuplicatedMessage.
  const last = s.messages.filter((m) => m.from === 'alice' && m.type === 2).at(-1);
  const dup = await errorOf(signalDecrypt(SignalMessage.deserialize(Buffer.from(last.wire, 'hex')), alice.address, bob.address, bob.sessionStore, bob.identityStore));
  out.push({ name: 'replayed', wire: last.wire, error: dup });
  return out;
}

// bundleNegatives: processPreKeyBundle must refuse bad signatures.
async function bundleNegatives() {
  const alice = new Party('alice-n', 1, IdentityKeyPair.generate());
  const bob = new Party('bob-n', 2, IdentityKeyPair.generate());
  const spk = signed(bob, 1, 0);
  const kpk = kyberPrekey(bob, 2, 'negative bob 2', 0);
  const make = (o) => PreKeyBundle.new(2, 1, null, null, 1,
    PublicKey.deserialize(Buffer.from(o.spk ?? spk.public, 'hex')), Buffer.from(o.spkSig ?? spk.signature, 'hex'),
    bob.identity.publicKey, 2,
    KEMPublicKey.deserialize(Buffer.from(o.kpk ?? kpk.public, 'hex')), Buffer.from(o.kpkSig ?? kpk.signature, 'hex'));
  const flip = (h, i) => { const b = Buffer.from(h, 'hex'); b[i] ^= 1; return b.toString('hex'); };
  const cases = {
    valid: {},
    signed_prekey_signature_flipped: { spkSig: flip(spk.signature, 5) },
    kyber_prekey_signature_flipped: { kpkSig: flip(kpk.signature, 5) },
    signatures_swapped: { spkSig: kpk.signature, kpkSig: spk.signature },
    kyber_prekey_flipped: { kpk: flip(kpk.public, 100) },
  };
  const out = { identity_key: hex(bob.identity.publicKey.serialize()), signed_prekey: spk, kyber_prekey: kpk, cases: [] };
  for (const [name, o] of Object.entries(cases)) {
    const err = await errorOf(processPreKeyBundle(make(o), bob.address, alice.address, alice.sessionStore, alice.identityStore, NOW));
    out.cases.push({
      name,
      signed_prekey: o.spk ?? spk.public, signed_prekey_signature: o.spkSig ?? spk.signature,
      kyber_prekey: o.kpk ?? kpk.public, kyber_prekey_signature: o.kpkSig ?? kpk.signature,
      error: err,
    });
  }
  return out;
}

// keyVectors: libsignal's own keys and signatures.
function keyVectors() {
  const out = { ec: [], kyber: [], bad_kem_keys: [] };
  for (let i = 0; i < 4; i++) {
    const id = IdentityKeyPair.generate();
    const msg = sha256('ratchetkit message ', String(i));
    const sig = id.privateKey.sign(msg);
    out.ec.push({ public: hex(id.publicKey.serialize()), private: hex(id.privateKey.serialize()), message: hex(msg), signature: hex(sig) });
  }
  const id = IdentityKeyPair.generate();
  for (let i = 0; i < 2; i++) {
    const kp = KEMKeyPair.generate();
    const pub = kp.getPublicKey().serialize();
    const sig = id.privateKey.sign(pub);
    const rec = KyberPreKeyRecord.new(50 + i, 1767225600000, kp, sig);
    out.kyber.push({
      identity_key: hex(id.publicKey.serialize()),
      public: hex(pub), secret_libsignal: hex(kp.getSecretKey().serialize()), signature: hex(sig), record: hex(rec.serialize()),
      public_roundtrip: hex(KEMPublicKey.deserialize(pub).serialize()) === hex(pub),
    });
  }
  // What libsignal does with KEM public keys of the wrong type or length.
  const pub = Buffer.from(out.kyber[0].public, 'hex');
  const tries = {
    type_0x07: Buffer.concat([Buffer.from([0x07]), pub.subarray(1)]),
    type_0x0a: Buffer.concat([Buffer.from([0x0a]), pub.subarray(1)]),
    raw_no_type: pub.subarray(1),
    short_by_1: pub.subarray(0, pub.length - 1),
    long_by_1: Buffer.concat([pub, Buffer.from([0])]),
  };
  for (const [name, b] of Object.entries(tries)) {
    let error = null;
    try { KEMPublicKey.deserialize(b); } catch (e) { error = String(e.message); }
    out.bad_kem_keys.push({ name, public: hex(b), error });
  }
  const ecTries = {
    raw_32: Buffer.from(out.ec[0].public, 'hex').subarray(1),
    type_0x06: Buffer.concat([Buffer.from([0x06]), Buffer.from(out.ec[0].public, 'hex').subarray(1)]),
    trailing_byte: Buffer.concat([Buffer.from(out.ec[0].public, 'hex'), Buffer.from([0])]),
  };
  out.bad_ec_keys = [];
  for (const [name, b] of Object.entries(ecTries)) {
    let error = null;
    try { PublicKey.deserialize(b); } catch (e) { error = String(e.message); }
    out.bad_ec_keys.push({ name, public: hex(b), error });
  }
  return out;
}

const sessions = [];
for (const opts of [
  { name: 'one_time_prekey', oneTime: true, seed: 1, count: 64, reorder: true },
  { name: 'no_one_time_prekey', oneTime: false, seed: 2, count: 56, reorder: false },
  // Service-id names make libsignal add the addresses field (6).
  { name: 'addresses', oneTime: true, seed: 3, count: 6, reorder: false,
    alice: '9d0652a3-dcc3-4d11-975f-74d61598733f', bob: 'PNI:a6bbf1b4-0d2e-4e8b-8b1e-3f3f2d6b8f12' },
]) {
  sessions.push(await session(opts));
}
const negative = await negatives(sessions[0]);
for (const s of sessions) delete s.parties;
const result = {
  generator: 'testdata/libsignal/gen.mjs',
  libsignal_client: JSON.parse((await import('node:fs')).readFileSync(new URL('./node_modules/@signalapp/libsignal-client/package.json', import.meta.url))).version,
  node: process.version,
  keys: keyVectors(),
  bundle_negatives: await bundleNegatives(),
  sessions,
  message_negatives: negative,
};
process.stdout.write(JSON.stringify(result, null, 1) + '\n');
