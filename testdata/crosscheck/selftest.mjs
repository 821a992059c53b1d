// Self-test of the JavaScript implementation: primitives against their
// RFCs, every protocol module against PROTOCOL.md (Appendix A was computed
// independently with Python), a seeded two-party conversation with
// reordering, loss, duplicates and tampering, the error kinds, and the
// conformance suite run against driver.mjs as a child process.
//
//   node --test selftest.mjs        (or: npm test)

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { concat, h, hex, intLE, le32, u32be, utf8 } from './lib/bytes.mjs';
import { Kind, ProtocolError } from './lib/errors.mjs';
import { appendixA as A, libsignalKat, smallOrderU, uP, uPminus1 } from './lib/fixtures.mjs';
import { KeyPair, PublicKey, dh } from './lib/keys.mjs';
import { AES256GCM, BASE_U, CHACHA20POLY1305, hkdf, hmac, x25519 } from './lib/primitives.mjs';
import { RatchetSession, kdfCk, kdfRk } from './lib/ratchet.mjs';
import { SeededRng } from './lib/rng.mjs';
import { Initiator, Responder } from './lib/session.mjs';
import { runDriverSuite } from './lib/driver-suite.mjs';
import { createDriver } from './lib/driver-core.mjs';
import { Peer } from './lib/peer.mjs';
import { parsePrekeyMessage, parseRatchetMessage } from './lib/wire.mjs';
import * as x3dh from './lib/x3dh.mjs';
import * as xeddsa from './lib/xeddsa.mjs';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';

// Wire constants are written out here rather than imported, so that a
// wrong constant in the implementation cannot make its own test pass.
const HEADER_LEN = 42;
const MAX_SKIP = 1000;
const MAX_SKIPPED_KEYS = 2000;

function throwsKind(fn, kind) {
  assert.throws(fn, (err) => err instanceof ProtocolError && err.kind === kind, `expected ${kind}`);
}

const flip = (b, bit) => {
  const c = Uint8Array.from(b);
  c[bit >> 3] ^= 1 << (bit & 7);
  return c;
};
const enc05 = (u) => concat(Uint8Array.of(0x05), u);

describe('primitives', () => {
  test('X25519: RFC 7748 section 5.2 vectors', () => {
    assert.equal(
      hex(x25519(h('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4'), h('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c'))),
      'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552',
    );
    // The second vector's u has bit 255 set: the raw function masks it.
    assert.equal(
      hex(x25519(h('4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d'), h('e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493'))),
      '95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957',
    );
  });

  test('X25519: RFC 7748 iterated, 1 and 1000 times', () => {
    let k = Uint8Array.from(BASE_U);
    let u = Uint8Array.from(BASE_U);
    for (let i = 1; i <= 1000; i++) {
      const r = x25519(k, u);
      u = k;
      k = r;
      if (i === 1) assert.equal(hex(k), '422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079');
    }
    assert.equal(hex(k), '684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51');
  });

  test('X25519: RFC 7748 section 6.1 key agreement', () => {
    const alice = new KeyPair(A.ikA);
    const bob = new KeyPair(A.ikB);
    assert.equal(hex(alice.pub.u), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    assert.equal(hex(bob.pub.u), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
    assert.equal(hex(dh(alice.priv, bob.pub)), shared);
    assert.equal(hex(dh(bob.priv, alice.pub)), shared);
  });

  test('X25519: small-order inputs give all zeros, and DH refuses them', () => {
    for (const u of [...smallOrderU, uPminus1, uP]) {
      assert.equal(hex(x25519(A.ikA, u)), '00'.repeat(32));
    }
    for (const u of smallOrderU) throwsKind(() => dh(A.ikA, new PublicKey(u)), Kind.badKey);
  });

  test('HKDF-SHA256: RFC 5869 test cases 1 and 3', () => {
    const ikm = new Uint8Array(22).fill(0x0b);
    assert.equal(
      hex(hkdf(h('000102030405060708090a0b0c'), ikm, h('f0f1f2f3f4f5f6f7f8f9'), 42)),
      '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
    );
    assert.equal(
      hex(hkdf(new Uint8Array(0), ikm, new Uint8Array(0), 42)),
      '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
    );
  });

  test('HMAC-SHA256: RFC 4231 test case 2', () => {
    assert.equal(hex(hmac(utf8('Jefe'), utf8('what do ya want for nothing?'))), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  });

  test('ChaCha20-Poly1305: RFC 8439 section 2.8.2', () => {
    const key = Uint8Array.from({ length: 32 }, (_, i) => 0x80 + i);
    const pt = utf8("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
    const out = CHACHA20POLY1305.raw.seal(key, h('070000004041424344454647'), pt, h('50515253c0c1c2c3c4c5c6c7'));
    assert.equal(hex(out.subarray(0, 16)), 'd31a8d34648e60db7b86afbc53ef7ec2');
    assert.equal(hex(out.subarray(out.length - 16)), '1ae10b594f09e26a7e902ecbd0600691');
  });

  test('message AEAD: Appendix A key and nonce, AES-256-GCM', () => {
    const { key, nonce } = AES256GCM.derive(A.mk0);
    assert.equal(hex(key), hex(A.aesKey0));
    assert.equal(hex(nonce), hex(A.nonce0));
    assert.equal(AES256GCM.info, 'ratchetkit_MessageKeys_AES-256-GCM_v1');
    assert.equal(CHACHA20POLY1305.info, 'ratchetkit_MessageKeys_ChaCha20-Poly1305_v1');
  });

  test('message AEAD: open returns null on every single-bit flip', () => {
    const mk = h('07'.repeat(32));
    for (const suite of [AES256GCM, CHACHA20POLY1305]) {
      const ct = suite.seal(mk, utf8('hi'), utf8('ad'));
      assert.equal(ct.length, 2 + 16);
      assert.deepEqual(suite.open(mk, ct, utf8('ad')), utf8('hi'));
      for (let bit = 0; bit < ct.length * 8; bit++) assert.equal(suite.open(mk, flip(ct, bit), utf8('ad')), null);
      assert.equal(suite.open(mk, ct, utf8('ae')), null);
      assert.equal(suite.open(mk, ct.subarray(0, 15), utf8('ad')), null);
    }
  });
});

describe('key encoding', () => {
  const good = A.encoded.ikA;
  test('round trip', () => {
    assert.deepEqual(PublicKey.decode(good).encoded, good);
  });
  test('rejections are bad_key', () => {
    throwsKind(() => PublicKey.decode(good.subarray(1)), Kind.badKey); // 32 bytes
    throwsKind(() => PublicKey.decode(concat(good, Uint8Array.of(0))), Kind.badKey); // 34 bytes
    throwsKind(() => PublicKey.decode(concat(Uint8Array.of(0x06), good.subarray(1))), Kind.badKey);
    throwsKind(() => PublicKey.decode(flip(good, 263)), Kind.badKey); // bit 255 of u
    throwsKind(() => PublicKey.decode(enc05(uP)), Kind.badKey);
    throwsKind(() => PublicKey.decode(enc05(le32(2n ** 255n - 1n))), Kind.badKey);
    throwsKind(() => PublicKey.decode(new Uint8Array(0)), Kind.badKey);
  });
  test('p - 1 and small-order u decode (they are canonical)', () => {
    assert.equal(intLE(PublicKey.decode(enc05(uPminus1)).u), 2n ** 255n - 20n);
    for (const u of smallOrderU) assert.ok(PublicKey.decode(enc05(u)));
  });
});

describe('XEdDSA', () => {
  const rng = new SeededRng('xeddsa');
  test('libsignal known answer (sign bit carried in byte 63)', () => {
    const K = libsignalKat;
    assert.equal(hex(new KeyPair(K.priv).pub.u), hex(K.pub));
    assert.equal(K.sig[63] >> 7, 1);
    assert.ok(xeddsa.verify(enc05(K.pub), K.msg, K.sig));
    for (let bit = 0; bit < 512; bit++) assert.equal(xeddsa.verify(enc05(K.pub), K.msg, flip(K.sig, bit)), false, `bit ${bit}`);
  });

  test('sign then verify, both conventions, 40 random keys', () => {
    let sawSignBit = false;
    for (let i = 0; i < 40; i++) {
      const k = rng.bytes(32);
      const msg = rng.bytes(i);
      const z = rng.bytes(64);
      const pub = new KeyPair(k).pub.encoded;
      const sig = xeddsa.sign(k, msg, z);
      assert.equal(sig[63] >> 7, 0, 'spec signatures have bit 7 of byte 63 clear');
      assert.ok(xeddsa.verify(pub, msg, sig));
      assert.deepEqual(xeddsa.sign(k, msg, z), sig, 'deterministic given Z');
      const lib = xeddsa.signLibsignalStyle(k, msg, z);
      sawSignBit ||= lib[63] >> 7 === 1;
      assert.ok(xeddsa.verify(pub, msg, lib));
      assert.equal(xeddsa.verify(pub, concat(msg, Uint8Array.of(0)), sig), false);
    }
    assert.ok(sawSignBit, 'some libsignal-style signature carried sign bit 1');
  });

  test('every single-bit flip of signature, key and message is rejected', () => {
    const k = rng.bytes(32);
    const msg = rng.bytes(20);
    const pub = new KeyPair(k).pub.encoded;
    const sig = xeddsa.sign(k, msg, rng.bytes(64));
    for (let bit = 0; bit < 512; bit++) assert.equal(xeddsa.verify(pub, msg, flip(sig, bit)), false, `sig bit ${bit}`);
    for (let bit = 0; bit < 264; bit++) assert.equal(xeddsa.verify(flip(pub, bit), msg, sig), false, `key bit ${bit}`);
    for (let bit = 0; bit < 160; bit++) assert.equal(xeddsa.verify(pub, flip(msg, bit), sig), false, `msg bit ${bit}`);
  });

  test('non-canonical s, bad keys and lengths are rejected', () => {
    const k = rng.bytes(32);
    const msg = utf8('m');
    const pub = new KeyPair(k).pub.encoded;
    const sig = xeddsa.sign(k, msg, rng.bytes(64));
    const s = intLE(sig.subarray(32));
    assert.equal(xeddsa.verify(pub, msg, concat(sig.subarray(0, 32), le32(s + xeddsa.Q))), false, 's + q');
    assert.equal(xeddsa.verify(pub, msg, concat(sig.subarray(0, 32), le32(xeddsa.Q))), false, 's = q');
    assert.equal(xeddsa.verify(pub, msg, sig.subarray(0, 63)), false);
    assert.equal(xeddsa.verify(pub, msg, concat(sig, Uint8Array.of(0))), false);
    assert.equal(xeddsa.verify(pub.subarray(1), msg, sig), false);
    assert.equal(xeddsa.verify(enc05(uPminus1), msg, sig), false);
    assert.equal(xeddsa.verify(enc05(uP), msg, sig), false);
    assert.equal(xeddsa.verify(enc05(le32(2n)), msg, sig), false, 'u = 2 is on the twist');
  });

  test('small-order keys are rejected even with a signature that satisfies the equation', () => {
    // For A of small order, h·A is a torsion point. Pick R = encode(s·B); whenever
    // h happens to make h·A the identity, R = s·B − h·A holds and only the
    // small-order check stands between the verifier and a forgery.
    const P = 2n ** 255n - 19n;
    let forged = 0;
    for (const u of smallOrderU) {
      const y = ((intLE(u) - 1n) * modPow(intLE(u) + 1n, P - 2n, P)) % P;
      const yy = (y + P) % P;
      for (const signBit of [0, 1]) {
        const aEnc = le32(yy);
        aEnc[31] |= signBit << 7;
        let A_;
        try {
          A_ = ed25519.Point.fromBytes(aEnc);
        } catch {
          continue; // x = 0 with sign bit 1 does not decode
        }
        for (let s = 1n; s < 400n; s++) {
          const R = ed25519.Point.BASE.multiply(s).toBytes();
          const msg = utf8('forged');
          const hh = intLE(sha512(concat(R, aEnc, msg))) % xeddsa.Q;
          if (!A_.multiplyUnsafe(hh).is0()) continue;
          const sig = concat(R, le32(s));
          sig[63] |= signBit << 7;
          assert.equal(xeddsa.verify(enc05(u), msg, sig), false);
          forged++;
          break;
        }
      }
    }
    assert.ok(forged >= 6, `built ${forged} equation-satisfying forgeries`);
  });
});

function modPow(b, e, m) {
  let r = 1n;
  b %= m;
  for (; e > 0n; e >>= 1n, b = (b * b) % m) if (e & 1n) r = (r * b) % m;
  return r;
}

describe('X3DH', () => {
  const ikB = new KeyPair(A.ikB);
  const spkB = new KeyPair(A.spkB);
  const opkB = new KeyPair(A.opkB);
  const spkSig = xeddsa.sign(A.ikB, spkB.pub.encoded, new Uint8Array(64));
  const bundle = { ik: ikB.pub.encoded, spk: spkB.pub.encoded, spkId: 1, spkSig, opk: opkB.pub.encoded, opkId: 7 };

  test('Appendix A: both sides, every intermediate value', () => {
    const a = x3dh.initiate({ ikPriv: A.ikA, ekPriv: A.ekA, bundle });
    assert.deepEqual(a.dhs.map(hex), A.dh.map(hex));
    assert.equal(hex(a.ikm), 'ff'.repeat(32) + A.dh.map(hex).join(''));
    assert.equal(hex(a.sk), hex(A.sk));
    assert.equal(hex(a.ad), hex(A.encoded.ikA) + hex(A.encoded.ikB));
    const b = x3dh.respond({ ikPriv: A.ikB, spkPriv: A.spkB, opkPriv: A.opkB, peerIk: A.encoded.ikA, peerEk: A.encoded.ekA });
    assert.deepEqual(b.dhs.map(hex), A.dh.map(hex));
    assert.equal(hex(b.sk), hex(A.sk));
    assert.equal(hex(b.ad), hex(a.ad));
  });

  test('info and the one-time prekey change SK', () => {
    const base = x3dh.initiate({ ikPriv: A.ikA, ekPriv: A.ekA, bundle }).sk;
    const noOpk = x3dh.initiate({ ikPriv: A.ikA, ekPriv: A.ekA, bundle: { ...bundle, opk: null } });
    assert.equal(noOpk.dhs.length, 3);
    const bobNoOpk = x3dh.respond({ ikPriv: A.ikB, spkPriv: A.spkB, peerIk: A.encoded.ikA, peerEk: A.encoded.ekA });
    assert.equal(hex(noOpk.sk), hex(bobNoOpk.sk));
    const custom = x3dh.initiate({ ikPriv: A.ikA, ekPriv: A.ekA, bundle, info: utf8('app') }).sk;
    assert.notEqual(hex(custom), hex(base));
    assert.notEqual(hex(noOpk.sk), hex(base));
    assert.equal(hex(x3dh.DEFAULT_INFO), hex(utf8('ratchetkit_X3DH_X25519_SHA-256_v1')));
  });

  test('error kinds and their order', () => {
    const run = (b, extra = {}) => () => x3dh.initiate({ ikPriv: A.ikA, ekPriv: A.ekA, bundle: { ...bundle, ...b }, ...extra });
    throwsKind(run({ spkSig: flip(spkSig, 7) }), Kind.invalidSignature);
    throwsKind(run({ spkSig: spkSig.subarray(1) }), Kind.invalidSignature);
    throwsKind(run({ ik: ikB.pub.u, spkSig: new Uint8Array(1) }), Kind.badKey); // decode before signature
    throwsKind(run({ opk: flip(opkB.pub.encoded, 263) }), Kind.badKey);
    throwsKind(run({ ik: enc05(smallOrderU[1]) }), Kind.badKey); // small order before the signature
    throwsKind(run({ ik: enc05(smallOrderU[0]), spkSig: new Uint8Array(64) }), Kind.badKey);
    throwsKind(run({ ik: enc05(uPminus1) }), Kind.badKey);
    const zeroSpk = enc05(smallOrderU[0]);
    throwsKind(run({ spk: zeroSpk, spkSig: xeddsa.sign(A.ikB, zeroSpk, new Uint8Array(64)) }), Kind.badKey);
    throwsKind(run({ opk: enc05(smallOrderU[3]) }), Kind.badKey);
    throwsKind(() => x3dh.initiate({ ikPriv: A.ikA.subarray(1), ekPriv: A.ekA, bundle }), Kind.badKey);
    throwsKind(() => x3dh.respond({ ikPriv: A.ikB, spkPriv: A.spkB, peerIk: A.encoded.ikA, peerEk: enc05(smallOrderU[2]) }), Kind.badKey);
  });
});

describe('Double Ratchet', () => {
  const ad = concat(A.encoded.ikA, A.encoded.ikB);
  const newPair = (dhsBPriv = A.dhsB, limits = {}) => {
    const alice = RatchetSession.initAlice({ sk: A.sk, ad, peerDh: A.encoded.spkB, dhPriv: A.dhsA, ...limits });
    const bob = RatchetSession.initBob({ sk: A.sk, ad, dhPriv: A.spkB, ...limits });
    return { alice, bob, dhsBPriv };
  };

  test('KDFs and Appendix A messages', () => {
    const [rk, ck] = kdfRk(A.sk, dh(A.dhsA, PublicKey.decode(A.encoded.spkB)));
    assert.equal(hex(rk), hex(A.aliceRk));
    assert.equal(hex(ck), hex(A.aliceCks));
    const [next, mk] = kdfCk(ck);
    assert.equal(hex(mk), hex(A.mk0));
    assert.equal(hex(next), hex(A.nextCks));
    const { alice, bob } = newPair();
    assert.equal(hex(alice.rk), hex(A.aliceRk));
    const m1 = alice.encrypt(A.plaintext1);
    assert.equal(hex(m1), hex(A.message1));
    assert.equal(hex(bob.decrypt(m1, { dhPriv: A.dhsB })), hex(A.plaintext1));
    assert.equal(hex(bob.rk), hex(A.bobRk));
    assert.equal(hex(bob.cks), hex(A.bobCks));
    const r = bob.encrypt(A.plaintext2);
    assert.equal(hex(r), hex(A.reply));
    assert.equal(hex(alice.decrypt(r)), hex(A.plaintext2));
  });

  test('header layout', () => {
    const { alice } = newPair();
    alice.encrypt(utf8('a'));
    const m = alice.encrypt(utf8('b'));
    assert.equal(m[0], 0x01);
    assert.equal(hex(m.subarray(1, 34)), hex(A.encoded.dhsA));
    assert.equal(hex(m.subarray(34, 38)), '00000000');
    assert.equal(hex(m.subarray(38, 42)), '00000001');
    assert.equal(m.length, HEADER_LEN + 1 + 16);
    assert.equal(alice.encrypt(new Uint8Array(0)).length, 58);
  });

  test('Bob cannot encrypt first; parse errors', () => {
    const { bob } = newPair();
    throwsKind(() => bob.encrypt(utf8('x')), Kind.noSession);
    throwsKind(() => bob.decrypt(new Uint8Array(0)), Kind.malformed);
    throwsKind(() => bob.decrypt(Uint8Array.of(2)), Kind.malformed); // too short wins over the type
    throwsKind(() => bob.decrypt(concat(Uint8Array.of(2), A.message1.subarray(1))), Kind.unknownType);
    throwsKind(() => bob.decrypt(A.message1.subarray(0, 57)), Kind.malformed);
    throwsKind(() => bob.decrypt(concat(Uint8Array.of(1, 6), A.message1.subarray(2))), Kind.badKey);
    const m = Uint8Array.from(A.message1);
    m.set(u32be(0xffffffff), 38);
    throwsKind(() => bob.decrypt(m), Kind.counterOverflow);
    const p = Uint8Array.from(A.message1);
    p.set(u32be(0xffffffff), 34);
    throwsKind(() => bob.decrypt(p), Kind.counterOverflow); // PN too
  });

  test('counter overflow on encrypt at Ns = 2^32 - 2, nothing changes', () => {
    const { alice } = newPair();
    alice.ns = 0xfffffffd;
    const last = alice.encrypt(utf8('last'));
    assert.equal(hex(last.subarray(38, 42)), 'fffffffd');
    assert.equal(alice.ns, 0xfffffffe); // the largest PN the next chain can carry
    const before = alice.snapshot();
    throwsKind(() => alice.encrypt(utf8('one too many')), Kind.counterOverflow);
    assert.equal(alice.snapshot(), before);
  });

  test('MaxSkip boundaries: new chain (until = N) and old chain (until = PN)', () => {
    const { alice, bob } = newPair(A.dhsB, { maxSkip: 3 });
    const msgs = Array.from({ length: 6 }, (_, i) => alice.encrypt(Uint8Array.of(i)));
    const snap = bob.snapshot();
    throwsKind(() => bob.decrypt(msgs[4], { dhPriv: A.dhsB }), Kind.tooManySkipped); // 0 + 3 < 4
    assert.equal(bob.snapshot(), snap, 'failure changed nothing');
    assert.deepEqual(bob.decrypt(msgs[3], { dhPriv: A.dhsB }), Uint8Array.of(3)); // 0 + 3 = 3: allowed
    assert.equal(bob.skippedCount, 3);
    // Bob replies; Alice answers from a new chain whose PN = 6 while Bob's Nr = 4.
    alice.decrypt(bob.encrypt(utf8('r')), { dhPriv: h('51'.repeat(32)) });
    const next = alice.encrypt(utf8('n'));
    assert.equal(parseRatchetMessage(next).pn, 6);
    const snap2 = bob.snapshot();
    // 4 + 3 < 6 is false, so it passes: keys 4 and 5 of the old chain get stored.
    assert.deepEqual(bob.decrypt(next, { dhPriv: h('52'.repeat(32)) }), utf8('n'));
    assert.notEqual(bob.snapshot(), snap2);
    assert.equal(bob.skippedCount, 5);
    assert.deepEqual(bob.decrypt(msgs[5]), Uint8Array.of(5));
    assert.deepEqual(bob.decrypt(msgs[0]), Uint8Array.of(0));
  });

  test('old-chain MaxSkip check applies with no receiving chain (Bob, Nr = 0)', () => {
    const { bob } = newPair(A.dhsB, { maxSkip: 5 });
    const m = Uint8Array.from(A.message1);
    m.set(u32be(6), 34); // PN = 6 > 0 + 5
    const snap = bob.snapshot();
    throwsKind(() => bob.decrypt(m, { dhPriv: A.dhsB }), Kind.tooManySkipped);
    assert.equal(bob.snapshot(), snap);
    m.set(u32be(5), 34); // PN = 5: passes the skip check, then fails authentication
    throwsKind(() => bob.decrypt(m, { dhPriv: A.dhsB }), Kind.authFailed);
    assert.equal(bob.snapshot(), snap);
  });

  test('default limits', () => {
    const { alice, bob } = newPair();
    assert.equal(alice.maxSkip, MAX_SKIP);
    assert.equal(bob.maxSkippedKeys, MAX_SKIPPED_KEYS);
    const m = Uint8Array.from(A.message1);
    m.set(u32be(1001), 38);
    throwsKind(() => bob.decrypt(m, { dhPriv: A.dhsB }), Kind.tooManySkipped);
    m.set(u32be(1000), 38);
    throwsKind(() => bob.decrypt(m, { dhPriv: A.dhsB }), Kind.authFailed); // passes the limit, wrong key
  });

  test('MaxSkippedKeys evicts the oldest first', () => {
    const { alice, bob } = newPair(A.dhsB, { maxSkippedKeys: 4 });
    const msgs = Array.from({ length: 7 }, (_, i) => alice.encrypt(Uint8Array.of(i)));
    bob.decrypt(msgs[6], { dhPriv: A.dhsB }); // skips 0..5: six keys, 0 and 1 evicted
    assert.equal(bob.skippedCount, 4);
    throwsKind(() => bob.decrypt(msgs[0]), Kind.duplicate);
    throwsKind(() => bob.decrypt(msgs[1]), Kind.duplicate);
    for (const i of [5, 2, 4, 3]) assert.deepEqual(bob.decrypt(msgs[i]), Uint8Array.of(i));
    assert.equal(bob.skippedCount, 0);
  });

  test('a message of an older chain with no stored key fails authentication', () => {
    const { alice, bob } = newPair();
    const first = alice.encrypt(utf8('1'));
    bob.decrypt(first, { dhPriv: A.dhsB });
    alice.decrypt(bob.encrypt(utf8('2')), { dhPriv: h('61'.repeat(32)) });
    bob.decrypt(alice.encrypt(utf8('3')), { dhPriv: h('62'.repeat(32)) });
    const snap = bob.snapshot();
    throwsKind(() => bob.decrypt(first), Kind.authFailed); // old chain, key used: new-key path
    assert.equal(bob.snapshot(), snap);
  });

  test('Alice: a message carrying SPK_B before her first receiving chain', () => {
    const { alice } = newPair();
    const fake = concat(Uint8Array.of(1), A.encoded.spkB, u32be(0), u32be(0), new Uint8Array(20));
    const snap = alice.snapshot();
    throwsKind(() => alice.decrypt(fake), Kind.authFailed); // DHr without a chain
    const far = Uint8Array.from(fake);
    far.set(u32be(5000), 34);
    far.set(u32be(5000), 38);
    throwsKind(() => alice.decrypt(far), Kind.authFailed); // no limit check: there is no chain
    assert.equal(alice.snapshot(), snap);
  });

  test('new ratchet key: both limits are checked before the DH', () => {
    const { bob } = newPair(A.dhsB, { maxSkip: 5 });
    const m = concat(Uint8Array.of(1), enc05(smallOrderU[2]), u32be(0), u32be(6), new Uint8Array(16));
    throwsKind(() => bob.decrypt(m), Kind.tooManySkipped); // N = 6 > 5, before the all-zero DH
    m.set(u32be(5), 38);
    throwsKind(() => bob.decrypt(m), Kind.badKey); // within the limit: the DH is computed
  });

  test('small-order ratchet key in a header is bad_key, state unchanged', () => {
    const { bob } = newPair();
    const m = concat(Uint8Array.of(1), enc05(smallOrderU[2]), A.message1.subarray(34));
    const snap = bob.snapshot();
    throwsKind(() => bob.decrypt(m, { dhPriv: A.dhsB }), Kind.badKey);
    assert.equal(bob.snapshot(), snap);
  });

  test('a peer reusing a ratchet key: repeated (key, N) replaces and becomes newest', () => {
    const { alice, bob } = newPair();
    const k1 = h('81'.repeat(32));
    const first = Array.from({ length: 4 }, (_, i) => alice.encrypt(Uint8Array.of(i))); // chain of A0
    bob.decrypt(first[3], { dhPriv: A.dhsB }); // stores (A0, 0..2)
    alice.decrypt(bob.encrypt(utf8('b1')), { dhPriv: k1 }); // Alice moves to k1
    const onK1 = [alice.encrypt(utf8('x')), alice.encrypt(utf8('y'))];
    bob.decrypt(onK1[1], { dhPriv: h('82'.repeat(32)) }); // stores (k1, 0)
    alice.decrypt(bob.encrypt(utf8('b2')), { dhPriv: A.dhsA }); // and back to A0's key
    const again = Array.from({ length: 5 }, (_, i) => alice.encrypt(Uint8Array.of(0x10 + i)));
    assert.equal(hex(again[0].subarray(1, 34)), hex(A.encoded.dhsA));
    // (A0, 4) is not stored, so this takes the new-key path and stores (A0, 0..3),
    // three of which collide with the first chain's entries.
    bob.decrypt(again[4], { dhPriv: h('83'.repeat(32)) });
    const order = JSON.parse(bob.snapshot()).skipped.map(([id]) => id.slice(-1));
    assert.deepEqual(order, ['0', '0', '1', '2', '3'], 'k1:0 first, then the replaced A0 entries');
    throwsKind(() => bob.decrypt(first[0]), Kind.authFailed); // its key was replaced
    for (const i of [0, 1, 2, 3]) assert.deepEqual(bob.decrypt(again[i]), Uint8Array.of(0x10 + i));
  });

  test('ChaCha20-Poly1305 suite interoperates with itself, not with AES-GCM', () => {
    const alice = RatchetSession.initAlice({ sk: A.sk, ad, peerDh: A.encoded.spkB, dhPriv: A.dhsA, suite: CHACHA20POLY1305 });
    const bob = RatchetSession.initBob({ sk: A.sk, ad, dhPriv: A.spkB, suite: CHACHA20POLY1305 });
    const aesBob = RatchetSession.initBob({ sk: A.sk, ad, dhPriv: A.spkB });
    const m = alice.encrypt(A.plaintext1);
    assert.equal(hex(m.subarray(0, 42)), hex(A.message1.subarray(0, 42)), 'same header');
    assert.notEqual(hex(m), hex(A.message1));
    throwsKind(() => aesBob.decrypt(m, { dhPriv: A.dhsB }), Kind.authFailed);
    assert.deepEqual(bob.decrypt(m, { dhPriv: A.dhsB }), A.plaintext1);
  });

  test('seeded conversation: reordering, loss, duplicates, tampering', () => {
    conversation(new SeededRng('selftest conversation'), 1500);
  });
});

/**
 * Two ratchet parties exchange messages through a lossy, reordering network.
 * Expectations come from a simple model, not from the implementation:
 * a fresh genuine message always decrypts to what was sent (gaps stay well
 * under MaxSkip); a tampered copy or a second delivery of a decrypted message
 * always fails, with an allowed kind, and leaves the receiver unchanged.
 */
function conversation(rng, steps) {
  const ad = rng.bytes(66);
  const sk = rng.bytes(32);
  const bobSpk = rng.bytes(32);
  const parties = {
    alice: RatchetSession.initAlice({ sk, ad, peerDh: new KeyPair(bobSpk).pub.encoded, dhPriv: rng.bytes(32) }),
    bob: RatchetSession.initBob({ sk, ad, dhPriv: bobSpk }),
  };
  const inFlight = { alice: [], bob: [] }; // messages travelling TO that party
  const delivered = { alice: [], bob: [] };
  let bobCanSend = false;
  const counts = { sent: 0, ok: 0, lost: 0, dup: 0, tampered: 0 };
  for (let step = 0; step < steps; step++) {
    const r = rng.int(100);
    const from = rng.chance(0.5) ? 'alice' : 'bob';
    const to = from === 'alice' ? 'bob' : 'alice';
    if (r < 35) {
      if (from === 'bob' && !bobCanSend) continue;
      const pt = rng.bytes(rng.int(40));
      inFlight[to].push({ pt, msg: parties[from].encrypt(pt) });
      counts.sent++;
    } else if (r < 75 && inFlight[to].length > 0) {
      const [item] = inFlight[to].splice(rng.int(inFlight[to].length), 1); // any order
      const got = parties[to].decrypt(item.msg, { dhPriv: rng.bytes(32) });
      assert.deepEqual(got, item.pt);
      delivered[to].push(item);
      if (to === 'bob') bobCanSend = true;
      counts.ok++;
    } else if (r < 80 && inFlight[to].length > 0) {
      inFlight[to].splice(rng.int(inFlight[to].length), 1);
      counts.lost++;
    } else if (r < 90 && delivered[to].length > 0) {
      const item = rng.pick(delivered[to]);
      const snap = parties[to].snapshot();
      assert.throws(() => parties[to].decrypt(item.msg, { dhPriv: rng.bytes(32) }), (e) =>
        [Kind.duplicate, Kind.authFailed].includes(e.kind));
      assert.equal(parties[to].snapshot(), snap);
      counts.dup++;
    } else if (inFlight[to].length > 0) {
      const item = rng.pick(inFlight[to]);
      const bad = flip(item.msg, rng.int(item.msg.length * 8));
      const snap = parties[to].snapshot();
      assert.throws(() => parties[to].decrypt(bad, { dhPriv: rng.bytes(32) }), (e) =>
        [Kind.authFailed, Kind.badKey, Kind.unknownType, Kind.tooManySkipped, Kind.duplicate, Kind.counterOverflow].includes(e.kind));
      assert.equal(parties[to].snapshot(), snap);
      counts.tampered++;
    }
  }
  assert.ok(counts.ok > steps / 5 && counts.lost > 10 && counts.dup > 10 && counts.tampered > 10, JSON.stringify(counts));
}

describe('sessions and prekey messages', () => {
  const ikB = new KeyPair(A.ikB);
  const spkB = new KeyPair(A.spkB);
  const spkSig = xeddsa.sign(A.ikB, spkB.pub.encoded, new Uint8Array(64));
  const bundle = { ik: ikB.pub.encoded, spk: spkB.pub.encoded, spkId: A.spkId, spkSig, opk: new KeyPair(A.opkB).pub.encoded, opkId: A.opkId };
  const newBob = (opks = [{ id: A.opkId, priv: A.opkB }]) => new Responder({ ikPriv: A.ikB, spk: { id: A.spkId, priv: A.spkB }, opks });
  const newAlice = () => Initiator.create({ ikPriv: A.ikA, ekPriv: A.ekA, dhPriv: A.dhsA, bundle });

  test('Appendix A prekey message and its layout', () => {
    const alice = newAlice();
    const m = alice.encrypt(A.plaintext1);
    assert.equal(hex(m), hex(A.prekeyMessage1));
    const p = parsePrekeyMessage(m);
    assert.equal(p.flags, 1);
    assert.equal(p.spkId, 1);
    assert.equal(p.opkId, 7);
    assert.equal(hex(p.innerBytes), hex(A.message1));
    const bob = newBob();
    assert.deepEqual(bob.decrypt(m, { dhPriv: A.dhsB }), A.plaintext1);
    assert.equal(bob.opks.size, 0, 'one-time prekey consumed after success');
    assert.equal(hex(bob.encrypt(A.plaintext2)), hex(A.reply));
  });

  test('prekey messages until the first decryption, then ratchet messages', () => {
    const alice = newAlice();
    const bob = newBob();
    const m1 = alice.encrypt(utf8('1'));
    const m2 = alice.encrypt(utf8('2'));
    assert.equal(m2[0], 2);
    assert.deepEqual(bob.decrypt(m2, { dhPriv: A.dhsB }), utf8('2')); // any of them can start the session
    assert.deepEqual(bob.decrypt(m1), utf8('1')); // routed by EK_A
    throwsKind(() => bob.decrypt(m1), Kind.duplicate);
    alice.decrypt(bob.encrypt(utf8('r')), { dhPriv: h('71'.repeat(32)) });
    assert.equal(alice.encrypt(utf8('3'))[0], 1);
    throwsKind(() => alice.decrypt(m1), Kind.noSession);
  });

  test('failures consume no one-time prekey and store no session', () => {
    const alice = newAlice();
    const bob = newBob();
    const m = alice.encrypt(utf8('x'));
    throwsKind(() => bob.decrypt(flip(m, 8 * 130)), Kind.authFailed);
    assert.equal(bob.opks.size, 1);
    assert.equal(bob.sessions.length, 0);
    throwsKind(() => bob.encrypt(utf8('y')), Kind.noSession);
    assert.deepEqual(bob.decrypt(m, { dhPriv: A.dhsB }), utf8('x'));
  });

  test('field checks, unknown prekeys, untrusted identity, precedence', () => {
    const alice = newAlice();
    const bob = newBob();
    const m = alice.encrypt(utf8('x'));
    const withSpk = (id) => {
      const c = Uint8Array.from(m);
      c.set(u32be(id), 68);
      return c;
    };
    throwsKind(() => bob.decrypt(withSpk(9)), Kind.unknownPrekey);
    throwsKind(() => newBob([]).decrypt(m), Kind.unknownPrekey);
    bob.decrypt(m, { dhPriv: A.dhsB });
    throwsKind(() => bob.decrypt(withSpk(9)), Kind.malformed); // same EK_A, other spk_id
    const otherIk = concat(m.subarray(0, 2), A.encoded.ikB, m.subarray(35));
    throwsKind(() => bob.decrypt(otherIk), Kind.malformed); // same EK_A, other IK_A
    // A new EK_A under another identity key: untrusted, before prekey lookup.
    const mallory = Initiator.create({ ikPriv: h('99'.repeat(32)), ekPriv: h('98'.repeat(32)), bundle: { ...bundle, opkId: 4242 } });
    throwsKind(() => bob.decrypt(mallory.encrypt(utf8('hi'))), Kind.untrustedIdentity);
    // Parse errors come first, even before no_session.
    throwsKind(() => newBob().decrypt(Uint8Array.of(1, 5)), Kind.malformed);
    throwsKind(() => newBob().decrypt(Uint8Array.of(9)), Kind.malformed);
    throwsKind(() => newBob().decrypt(concat(Uint8Array.of(9), A.message1.subarray(1))), Kind.unknownType);
    throwsKind(() => newBob().decrypt(A.message1), Kind.noSession);
    throwsKind(() => bob.decrypt(concat(Uint8Array.of(2, 0x81), m.subarray(2))), Kind.malformed);
  });

  test('several sessions: trial order and promotion, at most 40 kept besides the current', () => {
    const bob = newBob([]);
    const noOpk = { ...bundle, opk: null, opkId: null };
    const alices = [];
    for (let i = 0; i < 43; i++) {
      const a = Initiator.create({ ikPriv: A.ikA, ekPriv: rngKey(200 + i), dhPriv: rngKey(i), bundle: noOpk });
      bob.decrypt(a.encrypt(utf8(`hello ${i}`)), { dhPriv: rngKey(100 + i) });
      alices.push(a);
    }
    assert.equal(bob.sessions.length, 41);
    assert.equal(bob.currentIndex, 0);
    // Session 5 is still there; a message on it promotes it.
    assert.deepEqual(bob.decrypt(alices[5].ratchet.encrypt(utf8('again'))), utf8('again'));
    assert.equal(bob.currentIndex, 42 - 5);
    assert.deepEqual(alices[5].decrypt(bob.encrypt(utf8('to five'))), utf8('to five'));
    // Sessions 0 and 1 were dropped: their messages fail with the current session's error.
    throwsKind(() => bob.decrypt(alices[0].ratchet.encrypt(utf8('lost'))), Kind.authFailed);
  });
});

function unhexOrEmpty(text) {
  return Uint8Array.from(Buffer.from(text, 'hex'));
}

function rngKey(i) {
  return new SeededRng(`key ${i}`).bytes(32);
}

describe('rederive.mjs skeleton', () => {
  const dir = new URL('.', import.meta.url).pathname;
  test('re-derives its demo vectors', () => {
    const out = execFileSync('node', ['rederive.mjs', '--demo'], { cwd: dir, encoding: 'utf8' });
    const m = out.match(/rederive: (\d+) passed, (\d+) failed/);
    assert.ok(m && Number(m[1]) >= 16 && m[2] === '0', out);
  });
  test('reports a vector that does not re-derive', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rederive-bad-'));
    fs.mkdirSync(path.join(root, 'xeddsa'));
    const k = new Uint8Array(32).fill(1);
    const z = new Uint8Array(64);
    const sig = xeddsa.sign(k, utf8('m'), z);
    sig[0] ^= 1;
    fs.writeFileSync(path.join(root, 'xeddsa', 'bad.json'), JSON.stringify([{ priv: hex(k), pub: hex(new KeyPair(k).pub.encoded), msg: hex(utf8('m')), z: hex(z), sig: hex(sig), valid: true }]));
    const r = spawnSync('node', ['rederive.mjs', '--root', root], { cwd: dir, encoding: 'utf8' });
    assert.equal(r.status, 1, r.stdout);
    // The public key still matches; the signature bytes and the verdict do not.
    assert.match(r.stdout, /rederive: 1 passed, 2 failed/);
  });
});

describe('conformance driver', () => {
  test('driver.mjs passes the conformance suite as a child process', async () => {
    const peer = new Peer('node driver.mjs', { cwd: new URL('.', import.meta.url).pathname });
    const results = await runDriverSuite((req) => peer.request(req));
    assert.equal(await peer.close(), 0);
    const failed = results.filter((r) => !r.pass);
    assert.deepEqual(failed.map((r) => `${r.name}: got ${JSON.stringify(r.got)}`), []);
    assert.ok(results.length > 100);
  });

  test('random and mutated requests never make the driver fail internally', () => {
    const rng = new SeededRng('driver fuzz');
    const driver = createDriver();
    const kinds = new Set(Object.values(Kind));
    const randomValue = () => {
      switch (rng.int(9)) {
        case 0: return null;
        case 1: return rng.int(2 ** 32) - 5;
        case 2: return 2 ** 32 + rng.int(3);
        case 3: return hex(rng.bytes(rng.int(70)));
        case 4: return hex(rng.bytes(32));
        case 5: return '05' + hex(rng.bytes(32));
        case 6: return { id: rng.int(3), priv: hex(rng.bytes(32)) };
        case 7: return [{ id: rng.int(3), priv: hex(rng.bytes(32)) }];
        default: return 'zz';
      }
    };
    // Start from valid requests of the suite's shapes and mutate fields.
    const ikB = new KeyPair(A.ikB);
    const spkSig = xeddsa.sign(A.ikB, A.encoded.spkB, new Uint8Array(64));
    const bundle = { ik: hex(ikB.pub.encoded), spk: hex(A.encoded.spkB), spk_id: 1, spk_sig: hex(spkSig), opk: hex(A.encoded.opkB), opk_id: 7 };
    const templates = [
      { op: 'session_respond', id: 's', ik_priv: hex(A.ikB), spk: { id: 1, priv: hex(A.spkB) }, opks: [{ id: 7, priv: hex(A.opkB) }] },
      { op: 'session_initiate', id: 'i', ik_priv: hex(A.ikA), bundle },
      { op: 'ratchet_init_alice', id: 'a', sk: hex(A.sk), ad: '', peer_dh: hex(A.encoded.spkB), max_skip: 3 },
      { op: 'ratchet_init_bob', id: 'b', sk: hex(A.sk), ad: '', dh_priv: hex(A.spkB), max_skipped_keys: 2 },
      { op: 'x3dh_initiate', ik_priv: hex(A.ikA), ek_priv: hex(A.ekA), bundle },
      { op: 'x3dh_respond', ik_priv: hex(A.ikB), spk_priv: hex(A.spkB), peer_ik: hex(A.encoded.ikA), peer_ek: hex(A.encoded.ekA) },
      { op: 'xeddsa_sign', priv: hex(A.ikA), msg: '00', z: '00'.repeat(64) },
      { op: 'xeddsa_verify', pub: hex(ikB.pub.encoded), msg: hex(A.encoded.spkB), sig: hex(spkSig) },
      { op: 'encrypt', id: 'i', pt: '0102' },
      { op: 'decrypt', id: 's', msg: hex(A.prekeyMessage1) },
    ];
    const outbox = [];
    let answered = 0;
    for (let i = 0; i < 4000; i++) {
      const req = structuredClone(rng.pick(templates));
      if (req.op === 'decrypt' && outbox.length && rng.chance(0.6)) {
        const m = unhexOrEmpty(rng.pick(outbox));
        if (m.length && rng.chance(0.5)) m[rng.int(m.length)] ^= 1 << rng.int(8);
        req.msg = hex(rng.chance(0.2) ? m.subarray(0, rng.int(m.length + 1)) : m);
        req.id = rng.pick(['s', 'i', 'a', 'b']);
      }
      if (req.op === 'encrypt') req.id = rng.pick(['s', 'i', 'a', 'b', 'none']);
      for (let n = rng.int(3); n > 0; n--) {
        const keys = Object.keys(req);
        const k = rng.chance(0.1) ? 'extra' : rng.pick(keys);
        if (k === 'op' && rng.chance(0.8)) continue;
        if (rng.chance(0.2)) delete req[k];
        else req[k] = randomValue();
      }
      const answer = driver.handle(req);
      if (answer.msg) outbox.push(answer.msg);
      assert.ok(!answer.error || kinds.has(answer.error), `${JSON.stringify(req)} -> ${JSON.stringify(answer)}`);
      answered++;
    }
    assert.equal(answered, 4000);
    assert.ok(outbox.length > 50, `only ${outbox.length} messages produced`);
  });

  test('the driver answers every line, survives garbage and exits at end of input', async () => {
    const peer = new Peer('node driver.mjs', { cwd: new URL('.', import.meta.url).pathname });
    const lines = ['', '{', 'null', '"x"', '{"op":"decrypt","id":"a","msg":"01"}', '{"op":"encrypt"}', '{"op":"xeddsa_verify","pub":1}'];
    const answers = await Promise.all(lines.map((l) => peer.request(l)));
    assert.deepEqual(answers, [
      { error: 'malformed' }, { error: 'malformed' }, { error: 'malformed' }, { error: 'malformed' },
      { error: 'unknown_session' }, { error: 'malformed' }, { ok: false },
    ]);
    assert.equal(await peer.close(), 0);
  });
});

