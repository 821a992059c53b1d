// Generates the XEdDSA vectors that need something other than ratchetkit:
//
//   libsignal.json  signatures made by libsignal-client itself (random Z);
//   kat.json        fixed-Z known answers from an independent XEdDSA signer
//                   written here on @noble/curves point arithmetic, both
//                   spec-exact and in libsignal's convention;
//   verdicts.json   libsignal's verdict on every signature in ours.json
//                   and on every vector in negative.json (both written by
//                   `go test ./internal/xeddsa -run TestVectorFiles -update`).
//
// Run with `npm ci && node gen.mjs` in this directory; see README.md.
// The script fails loudly when libsignal or the independent signer
// disagrees with what the files claim, rather than recording nonsense.

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import assert from 'node:assert/strict';

import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { PrivateKey, PublicKey } from '@signalapp/libsignal-client';

const LIBSIGNAL_VERSION = JSON.parse(
  readFileSync(new URL('./node_modules/@signalapp/libsignal-client/package.json', import.meta.url)),
).version;
assert.equal(LIBSIGNAL_VERSION, '0.103.0', 'package.json pins libsignal-client 0.103.0; run npm ci');

const Point = ed25519.Point;
const q = Point.Fn.ORDER; // 2^252 + 27742317777372353535851937790883648493

// ---- bytes and integers ----

const hex = (b) => Buffer.from(b).toString('hex');
const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'));
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
};
const leToInt = (b) => {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]);
  return n;
};
const intToLe32 = (n) => {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
};
const mod = (a, m) => ((a % m) + m) % m;

// A deterministic byte stream per label (SHA-256 in counter mode), so the
// keys, messages and Z values here are the same on every run. Only
// libsignal's own signatures (it draws Z internally) change between runs.
function drbg(label) {
  let counter = 0;
  let buf = new Uint8Array(0);
  return (n) => {
    while (buf.length < n) {
      const block = createHash('sha256')
        .update(`ratchetkit/testdata/xeddsa ${label} ${counter++}`)
        .digest();
      buf = concat(buf, block);
    }
    const out = buf.slice(0, n);
    buf = buf.slice(n);
    return out;
  };
}

// The same message lengths as the Go generator: empty, SHA-512 block and
// padding boundaries, a few long ones.
const MSG_LENS = [0, 1, 2, 3, 7, 8, 15, 16, 31, 32, 33, 55, 56, 63, 64, 65, 100, 111, 112, 127, 128, 129, 200, 255, 256, 511, 1000];

// ---- an independent XEdDSA (XEdDSA spec rev. 1, section 2.3 and 3.3) ----

const clamp = (k) => {
  const c = Uint8Array.from(k);
  c[0] &= 248;
  c[31] &= 127;
  c[31] |= 64;
  return c;
};
const HASH1_PREFIX = concat(Uint8Array.of(0xfe), new Uint8Array(31).fill(0xff));
const hashToScalar = (...parts) => mod(leToInt(sha512(concat(...parts))), q);

// calculate_key_pair: E = kB; A = E with sign bit 0; a = −k mod q when E's
// sign bit is 1, else k mod q.
function calculateKeyPair(k) {
  const kInt = mod(leToInt(clamp(k)), q);
  const E = Point.BASE.multiply(kInt).toBytes();
  const sign = E[31] >> 7;
  const A = Uint8Array.from(E);
  A[31] &= 0x7f;
  return { A, a: sign ? mod(-kInt, q) : kInt, sign, E };
}

// xeddsa_sign exactly as the spec: r = hash_1(a || M || Z) with a the 32-byte
// encoding of the reduced (possibly negated) scalar.
function specSign(k, msg, z) {
  const { A, a } = calculateKeyPair(k);
  const r = hashToScalar(HASH1_PREFIX, intToLe32(a), msg, z);
  const R = Point.BASE.multiply(r).toBytes();
  const h = hashToScalar(R, A, msg);
  return concat(R, intToLe32(mod(r + h * a, q)));
}

// libsignal's variant: no negation, the clamped key bytes in the nonce hash,
// and E's sign bit stored in the top bit of the last signature byte.
function libsignalStyleSign(k, msg, z) {
  const kc = clamp(k);
  const a = mod(leToInt(kc), q);
  const E = Point.BASE.multiply(a).toBytes();
  const r = hashToScalar(HASH1_PREFIX, kc, msg, z);
  const R = Point.BASE.multiply(r).toBytes();
  const h = hashToScalar(R, E, msg);
  const sig = concat(R, intToLe32(mod(r + h * a, q)));
  sig[63] |= E[31] & 0x80;
  return sig;
}

// ---- libsignal ----

const encodeKey = (u) => concat(Uint8Array.of(0x05), u);

// libsignalVerify returns libsignal's verdict on (u, msg, sig), u being the
// raw key bytes of any length; it never throws.
function libsignalVerify(u, msg, sig) {
  let pk;
  try {
    pk = PublicKey.deserialize(encodeKey(u));
  } catch (e) {
    return { accepted: false, deserialize_error: String(e.message ?? e) };
  }
  try {
    return { accepted: pk.verify(msg, sig) };
  } catch (e) {
    return { accepted: false, verify_error: String(e.message ?? e) };
  }
}

const read = (name) => readFileSync(new URL(name, import.meta.url));
const readJSON = (name) => JSON.parse(read(name));
const sha256 = (b) => createHash('sha256').update(b).digest('hex');
const write = (name, v) => writeFileSync(new URL(name, import.meta.url), JSON.stringify(v, null, 1) + '\n');

// ---- 1. the libsignal known answer ----

const kat = readJSON('libsignal_kat.json');
{
  const priv = PrivateKey.deserialize(unhex(kat.priv));
  assert.equal(hex(priv.getPublicKey().serialize()), '05' + kat.pub, 'libsignal KAT public key');
  assert.ok(libsignalVerify(unhex(kat.pub), unhex(kat.msg), unhex(kat.sig)).accepted, 'libsignal KAT');
  assert.equal(hex(x25519.getPublicKey(unhex(kat.priv))), kat.pub, 'noble x25519 on the KAT key');
}

// ---- 2. signatures made by libsignal ----

const libsignalVectors = [];
{
  const rnd = drbg('libsignal');
  for (let i = 0; i < 256; i++) {
    // Even i: a key from libsignal's own generator (already clamped).
    // Odd i: raw bytes from the stream, which libsignal clamps on load.
    let raw, priv;
    if (i % 2 === 0) {
      priv = PrivateKey.generate();
      raw = priv.serialize();
    } else {
      raw = rnd(32);
      priv = PrivateKey.deserialize(raw);
    }
    const msg = rnd(MSG_LENS[i % MSG_LENS.length]);
    const sig = priv.sign(msg);
    const pub = priv.getPublicKey().serialize();
    const { sign } = calculateKeyPair(raw);

    assert.equal(hex(priv.serialize()), hex(clamp(raw)), 'libsignal clamps private keys');
    assert.equal(hex(pub.slice(1)), hex(x25519.getPublicKey(raw)), 'libsignal and noble agree on the public key');
    assert.equal(sig[63] >> 7, sign, 'libsignal stores the Edwards sign bit in sig[63]');
    assert.ok(libsignalVerify(pub.slice(1), msg, sig).accepted);

    libsignalVectors.push({
      priv: hex(raw),
      priv_clamped: hex(priv.serialize()),
      pub: hex(pub),
      msg: hex(msg),
      sig: hex(sig),
      edwards_sign: sign,
    });
  }
}
const signBits = libsignalVectors.filter((v) => v.edwards_sign === 1).length;
write('libsignal.json', {
  comment:
    `Signatures made by @signalapp/libsignal-client ${LIBSIGNAL_VERSION} (PrivateKey.sign, random Z drawn by libsignal). ` +
    'priv is the key handed to libsignal (even entries: PrivateKey.generate(); odd: raw bytes, clamped on load), ' +
    'priv_clamped what libsignal stores, pub its 0x05 || u encoding. sig[63] bit 7 equals edwards_sign, ' +
    `the sign bit of clamp(priv)·B: ${signBits} of ${libsignalVectors.length} have it set. Written by gen.mjs.`,
  libsignal_client: LIBSIGNAL_VERSION,
  vectors: libsignalVectors,
});

// ---- 3. fixed-Z known answers from the independent signer ----

function katVectors(label, n, signer) {
  const rnd = drbg(label);
  const out = [];
  const want = [0, 0];
  // Half the keys with Edwards sign bit 0, half with 1, so the spec's
  // negation (and libsignal's sign-bit transport) is exercised both ways.
  while (out.length < n) {
    const k = rnd(32);
    const { sign } = calculateKeyPair(k);
    if (want[sign] >= n / 2) continue;
    want[sign]++;
    const msg = rnd(MSG_LENS[out.length % MSG_LENS.length]);
    const z = rnd(64);
    const sig = signer(k, msg, z);
    assert.ok(libsignalVerify(x25519.getPublicKey(k), msg, sig).accepted, `libsignal rejects a ${label} KAT`);
    out.push({
      priv: hex(k),
      pub: '05' + hex(x25519.getPublicKey(k)),
      msg: hex(msg),
      z: hex(z),
      sig: hex(sig),
      edwards_sign: sign,
    });
  }
  return out;
}
write('kat.json', {
  comment:
    'Fixed-Z XEdDSA known answers from an independent signer in gen.mjs (@noble/curves point arithmetic, @noble/hashes SHA-512). ' +
    'spec: xeddsa_sign exactly as the XEdDSA spec (A with sign bit 0, a negated when kB has sign bit 1, ' +
    'r = SHA-512(0xFE || 0xFF*31 || a || M || Z) with a the reduced scalar); ' +
    "libsignal_style: libsignal's convention (no negation, clamped key bytes in the nonce hash, sign bit in sig[63]). " +
    'Half of each set has edwards_sign 1. libsignal accepted every one. Written by gen.mjs.',
  spec: katVectors('kat/spec', 32, specSign),
  libsignal_style: katVectors('kat/libsignal-style', 32, libsignalStyleSign),
});

// ---- 4. libsignal's verdicts on ratchetkit's files ----

const oursBytes = read('ours.json');
const negBytes = read('negative.json');
const ours = JSON.parse(oursBytes);
const neg = JSON.parse(negBytes);

// The independent signer must reproduce every one of ratchetkit's fixed-Z
// signatures byte for byte, in both conventions.
for (const v of ours.spec) assert.equal(hex(specSign(unhex(v.priv), unhex(v.msg), unhex(v.z))), v.sig, 'spec signature differs');
for (const v of ours.libsignal_style)
  assert.equal(hex(libsignalStyleSign(unhex(v.priv), unhex(v.msg), unhex(v.z))), v.sig, 'libsignal-style signature differs');

const verdictOn = (v) => libsignalVerify(unhex(v.pub).slice(1), unhex(v.msg), unhex(v.sig)).accepted;

const flips = neg.flips.map((f) => {
  const base = neg.valid[f.valid];
  const accepted = [];
  for (let bit = 0; bit < f.bits; bit++) {
    const fields = { pub: unhex(base.pub), msg: unhex(base.msg), sig: unhex(base.sig) };
    fields[f.field][bit >> 3] ^= 1 << (bit & 7);
    if (libsignalVerify(fields.pub, fields.msg, fields.sig).accepted) accepted.push(bit);
  }
  return { valid: f.valid, field: f.field, bits: f.bits, accepted_bits: accepted };
});

write('verdicts.json', {
  comment:
    `What @signalapp/libsignal-client ${LIBSIGNAL_VERSION} (PublicKey.deserialize(0x05 || pub), then verify) says about ours.json and negative.json, ` +
    'identified by the SHA-256 of those files. ours_*: one verdict per signature, in order. negative_valid: per valid vector. ' +
    'negative_flips: the flipped bits libsignal still accepted. negative_cases: per case, with any deserialize error. Written by gen.mjs.',
  libsignal_client: LIBSIGNAL_VERSION,
  ours_sha256: sha256(oursBytes),
  negative_sha256: sha256(negBytes),
  ours_spec: ours.spec.map(verdictOn),
  ours_libsignal_style: ours.libsignal_style.map(verdictOn),
  negative_valid: neg.valid.map((v) => libsignalVerify(unhex(v.pub), unhex(v.msg), unhex(v.sig)).accepted),
  negative_flips: flips,
  negative_cases: neg.cases.map((c) => ({ name: c.name, ...libsignalVerify(unhex(c.pub), unhex(c.msg), unhex(c.sig)) })),
});

console.log(
  `libsignal.json: ${libsignalVectors.length} vectors (${signBits} with sign bit 1); kat.json: 32 spec + 32 libsignal-style; ` +
    `verdicts.json: ${ours.spec.length}+${ours.libsignal_style.length} of ours, ${neg.cases.length} cases, ` +
    `${flips.reduce((n, f) => n + f.bits, 0)} flips`,
);
