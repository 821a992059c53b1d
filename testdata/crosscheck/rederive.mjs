#!/usr/bin/env node
// Re-derives the Go-generated vectors byte for byte with this JavaScript
// implementation.
//
//   node rederive.mjs                    # reads ../xeddsa, ../x3dh, ../ratchet
//   node rederive.mjs --root DIR         # another testdata directory
//   node rederive.mjs --demo             # writes sample vectors to a temp dir and checks them
//   node rederive.mjs --strict           # a missing directory or a file nothing understands fails
//
// Two layers:
//  1. FORMATS: handlers for the vector files as the Go packages write them
//     today (xeddsa: kat/ours/libsignal/negative/libsignal_kat; x3dh:
//     vectors.json with valid/invalid cases; ratchet: vectors.json with
//     transcripts). Each re-derives every value in the file.
//  2. A fallback for any other file: it finds a list of cases, recognises
//     fields through the alias table FIELDS and re-derives what it can.
// When a Go format changes, adapt its FORMATS entry. Values that nothing
// re-derives are reported as skipped, never silently passed.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { concat, hex, unhex } from './lib/bytes.mjs';
import { ProtocolError } from './lib/errors.mjs';
import { createDriver } from './lib/driver-core.mjs';
import { AES256GCM, CHACHA20POLY1305 } from './lib/primitives.mjs';
import { RatchetSession, kdfCk, kdfRk } from './lib/ratchet.mjs';
import { encodeBundle, encodeX3dhHeader, parseBundle, parseX3dhHeader } from './lib/bundle.mjs';
import { KeyPair, PublicKey, dh } from './lib/keys.mjs';
import * as x3dh from './lib/x3dh.mjs';
import * as xeddsa from './lib/xeddsa.mjs';

const { values: opt } = parseArgs({
  options: {
    root: { type: 'string', default: path.join(path.dirname(new URL(import.meta.url).pathname), '..') },
    demo: { type: 'boolean', default: false },
    strict: { type: 'boolean', default: false },
    verbose: { type: 'boolean', short: 'v', default: false },
  },
});

// ---------------------------------------------------------------------------
// Field aliases. Keys are compared after lower-casing and dropping every
// character that is not a letter or digit, so "spk_sig", "spkSig" and
// "SPK-Sig" are the same name. Nested objects are flattened with their
// path ("bundle.ik" → "bundleik").

const FIELDS = {
  // XEdDSA
  priv: ['priv', 'private', 'privatekey', 'k', 'identitypriv'],
  pub: ['pub', 'public', 'publickey', 'u', 'identitypub'],
  msg: ['msg', 'message', 'm'],
  sig: ['sig', 'signature'],
  z: ['z', 'random', 'zrandom'],
  valid: ['valid', 'ok', 'verifies', 'accept', 'expected', 'libsignalverdict', 'libsignalok'],
  // X3DH
  ikAPriv: ['ikapriv', 'alicepriv', 'aliceikpriv', 'aliceidentitypriv', 'ikpriv', 'initiatorikpriv'],
  ekAPriv: ['ekapriv', 'ekpriv', 'aliceekpriv', 'ephemeralpriv', 'aliceephemeralpriv'],
  ikBPriv: ['ikbpriv', 'bobikpriv', 'bobidentitypriv', 'responderikpriv'],
  spkBPriv: ['spkbpriv', 'spkpriv', 'bobspkpriv', 'signedprekeypriv'],
  opkBPriv: ['opkbpriv', 'opkpriv', 'bobopkpriv', 'onetimeprekeypriv'],
  ikB: ['ikb', 'bundleik', 'bobik', 'peerik'],
  spkB: ['spkb', 'bundlespk', 'bobspk', 'spk'],
  spkSig: ['spksig', 'bundlespksig', 'signedprekeysignature'],
  opkB: ['opkb', 'bundleopk', 'bobopk', 'opk'],
  info: ['info'],
  dh1: ['dh1'],
  dh2: ['dh2'],
  dh3: ['dh3'],
  dh4: ['dh4'],
  ikm: ['ikm', 'kdfinput', 'km'],
  sk: ['sk', 'sharedsecret', 'sharedkey'],
  ad: ['ad', 'associateddata'],
  error: ['error', 'err', 'expectederror', 'wanterror'],
};

const norm = (k) => k.toLowerCase().replace(/[^a-z0-9]/g, '');

function flatten(obj, prefix = '', out = {}) {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix + norm(k);
    if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v, key, out);
    else out[key] = v;
  }
  return out;
}

/** The value of a logical field in a flattened case, or undefined. */
function field(flat, name) {
  for (const alias of FIELDS[name]) if (alias in flat) return flat[alias];
  return undefined;
}
const bytesField = (flat, name) => {
  const v = field(flat, name);
  return typeof v === 'string' ? unhex(v.toLowerCase()) : v === null ? null : undefined;
};

/** The list of cases in a vector file: the file itself if it is an array, else the first array property. */
function casesOf(json) {
  if (Array.isArray(json)) return json;
  for (const v of Object.values(json)) if (Array.isArray(v) && v.every((c) => c && typeof c === 'object')) return v;
  return null;
}

const encodeIfRaw = (k) => (k && k.length === 32 ? concat(Uint8Array.of(5), k) : k);
const kindOf = (fn) => {
  try {
    fn();
    return null;
  } catch (e) {
    if (e instanceof ProtocolError) return e.kind;
    throw e;
  }
};

// ---------------------------------------------------------------------------
// Handlers: each re-derives one kind of case and reports
// {checked: n, mismatches: [..], skipped: [..]}.

function compare(report, label, got, want) {
  report.checked++;
  if (got !== want) report.mismatches.push(`${label}: derived ${got}, vector says ${want}`);
}

const handlers = {
  xeddsa(flat, report) {
    const pub = bytesField(flat, 'pub');
    const msg = bytesField(flat, 'msg');
    const sig = bytesField(flat, 'sig');
    const priv = bytesField(flat, 'priv');
    const z = bytesField(flat, 'z');
    if (!sig || !msg) return report.skipped.push('no sig/msg');
    if (priv && pub) compare(report, 'public key', hex(new KeyPair(priv).pub.u), hex(pub.length === 33 ? pub.subarray(1) : pub));
    if (priv && z && sig[63] >> 7 === 0 && !('libsignal' in flat)) {
      // Only spec-style signatures are reproducible from (k, M, Z).
      compare(report, 'signature', hex(xeddsa.sign(priv, msg, z)), hex(sig));
    }
    const valid = field(flat, 'valid');
    if (pub && typeof valid === 'boolean') compare(report, 'verify', xeddsa.verify(encodeIfRaw(pub), msg, sig), valid);
    else if (pub && valid === undefined) compare(report, 'verify (positive vector)', xeddsa.verify(encodeIfRaw(pub), msg, sig), true);
  },

  x3dh(flat, report) {
    const ikAPriv = bytesField(flat, 'ikAPriv');
    const ekAPriv = bytesField(flat, 'ekAPriv');
    const info = bytesField(flat, 'info') ?? undefined;
    const wantError = field(flat, 'error');
    if (ikAPriv && ekAPriv) {
      const bundle = {
        ik: encodeIfRaw(bytesField(flat, 'ikB')),
        spk: encodeIfRaw(bytesField(flat, 'spkB')),
        spkSig: bytesField(flat, 'spkSig'),
        opk: encodeIfRaw(bytesField(flat, 'opkB')) ?? null,
      };
      let result = null;
      const kind = kindOf(() => (result = x3dh.initiate({ ikPriv: ikAPriv, ekPriv: ekAPriv, bundle, info })));
      if (wantError !== undefined && wantError !== null && wantError !== '') {
        compare(report, 'initiate error', kind, wantError);
      } else if (kind) {
        report.checked++;
        report.mismatches.push(`initiate failed with ${kind}`);
      } else {
        result.dhs.forEach((d, i) => {
          const want = bytesField(flat, `dh${i + 1}`);
          if (want) compare(report, `DH${i + 1}`, hex(d), hex(want));
        });
        for (const [name, got] of [['ikm', result.ikm], ['sk', result.sk], ['ad', result.ad]]) {
          const want = bytesField(flat, name);
          if (want) compare(report, name, hex(got), hex(want));
        }
      }
    }
    const ikBPriv = bytesField(flat, 'ikBPriv');
    const spkBPriv = bytesField(flat, 'spkBPriv');
    if (ikBPriv && spkBPriv && ikAPriv && ekAPriv && !wantError) {
      const r = x3dh.respond({
        ikPriv: ikBPriv, spkPriv: spkBPriv, opkPriv: bytesField(flat, 'opkBPriv') ?? null,
        peerIk: new KeyPair(ikAPriv).pub.encoded, peerEk: new KeyPair(ekAPriv).pub.encoded, info,
      });
      const sk = bytesField(flat, 'sk');
      if (sk) compare(report, 'respond sk', hex(r.sk), hex(sk));
    }
    if (!ikAPriv || !ekAPriv) report.skipped.push('no initiator keys');
  },

  /**
   * A transcript written as conformance-driver traffic: a list of steps,
   * each {request, response} (or a request object with an "expect" field).
   * Replayed through this implementation's driver, every answer must match.
   */
  transcript(step, report, driver) {
    const request = step.request ?? Object.fromEntries(Object.entries(step).filter(([k]) => k !== 'expect'));
    const want = step.response ?? step.expect;
    const got = driver.handle(request);
    if (want === undefined) return report.skipped.push(`no expected answer for ${request.op}`);
    compare(report, `${request.op}${request.id ? ` (${request.id})` : ''}`, JSON.stringify(got), JSON.stringify(want));
  },

  /** Ratchet KDF steps: {rk, dh_out, new_rk, ck} or {ck, mk, next_ck}, and message key expansion. */
  ratchetKdf(flat, report) {
    const rk = unhex(flat.rk ?? '');
    const dhOut = unhex(flat.dhout ?? flat.dh ?? '');
    if (rk && rk.length === 32 && dhOut && dhOut.length === 32 && flat.newrk) {
      const [nrk, ck] = kdfRk(rk, dhOut);
      compare(report, 'KDF_RK root', hex(nrk), flat.newrk);
      if (flat.ck) compare(report, 'KDF_RK chain', hex(ck), flat.ck);
      return;
    }
    const ck = unhex(flat.ck ?? '');
    if (ck && ck.length === 32 && (flat.mk || flat.nextck)) {
      const [next, mk] = kdfCk(ck);
      if (flat.mk) compare(report, 'KDF_CK message key', hex(mk), flat.mk);
      if (flat.nextck) compare(report, 'KDF_CK chain key', hex(next), flat.nextck);
      if (flat.aeskey || flat.key) compare(report, 'AES-256 key', hex(AES256GCM.derive(mk).key), flat.aeskey ?? flat.key);
      if (flat.nonce) compare(report, 'GCM nonce', hex(AES256GCM.derive(mk).nonce), flat.nonce);
      return;
    }
    report.skipped.push('not a KDF step');
  },
};

/** Decides which handler a case belongs to. Adapt here when formats are fixed. */
function classify(dir, c, flat) {
  if (c.request || (typeof c.op === 'string' && ('expect' in c || 'response' in c))) return 'transcript';
  if (dir === 'xeddsa' && field(flat, 'sig') !== undefined) return 'xeddsa';
  if (dir === 'x3dh') return 'x3dh';
  if (dir === 'ratchet' && (flat.rk || flat.ck)) return 'ratchetKdf';
  return null;
}

// ---------------------------------------------------------------------------
// FORMATS: the Go vector files as they are written today.

const H = (x) => (typeof x === 'string' ? unhex(x.toLowerCase()) : null);
const enc05 = (raw) => concat(Uint8Array.of(5), raw);

/** A report with a compare helper; every comparison counts once. */
function newReport(file) {
  const r = { file, checked: 0, mismatches: [], skipped: [], cases: 0 };
  r.eq = (label, got, want) => {
    r.checked++;
    const g = got instanceof Uint8Array ? hex(got) : got;
    const w = want instanceof Uint8Array ? hex(want) : want;
    if (g !== w) r.mismatches.push(`${label}: derived ${JSON.stringify(g)}, vector says ${JSON.stringify(w)}`);
  };
  return r;
}

/** Runs fn; returns the protocol error kind it threw, or null. */
function errorOf(fn) {
  try {
    fn();
    return null;
  } catch (e) {
    if (e instanceof ProtocolError) return e.kind;
    throw e;
  }
}

function xeddsaSignatures(list, style, r, label) {
  list.forEach((v, i) => {
    r.cases++;
    const [priv, pub, msg, sig, z] = [H(v.priv), H(v.pub), H(v.msg), H(v.sig), H(v.z)];
    const name = `${label}[${i}]`;
    if (priv && pub) r.eq(`${name} public key`, new KeyPair(priv).pub.encoded, pub.length === 32 ? enc05(pub) : pub);
    if (priv && z && style) {
      const mine = style === 'spec' ? xeddsa.sign(priv, msg, z) : xeddsa.signLibsignalStyle(priv, msg, z);
      r.eq(`${name} signature`, mine, sig);
    }
    r.eq(`${name} verifies`, xeddsa.verify(pub.length === 32 ? enc05(pub) : pub, msg, sig), true);
  });
}

const FORMATS = [
  {
    name: 'xeddsa: fixed-Z signature lists (kat.json, ours.json)',
    match: (dir, j) => dir === 'xeddsa' && Array.isArray(j.spec),
    run(j, r) {
      xeddsaSignatures(j.spec, 'spec', r, 'spec');
      if (Array.isArray(j.libsignal_style)) xeddsaSignatures(j.libsignal_style, 'libsignal', r, 'libsignal_style');
    },
  },
  {
    name: 'xeddsa: signatures made by libsignal (libsignal.json)',
    match: (dir, j) => dir === 'xeddsa' && Array.isArray(j.vectors),
    run(j, r) {
      j.vectors.forEach((v, i) => {
        if (v.priv_clamped) r.eq(`vectors[${i}] clamped key`, H(v.priv_clamped), clampHex(v.priv));
      });
      xeddsaSignatures(j.vectors, null, r, 'vectors');
    },
  },
  {
    name: "xeddsa: libsignal's own known answer (libsignal_kat.json)",
    match: (dir, j) => dir === 'xeddsa' && typeof j.sig === 'string' && typeof j.pub === 'string',
    run(j, r) {
      xeddsaSignatures([j], null, r, 'kat');
    },
  },
  {
    name: 'xeddsa: negative vectors (negative.json)',
    match: (dir, j) => dir === 'xeddsa' && Array.isArray(j.valid) && Array.isArray(j.cases),
    run(j, r) {
      xeddsaSignatures(j.valid, null, r, 'valid');
      for (const f of j.flips ?? []) {
        r.cases++;
        const v = j.valid[f.valid];
        const parts = { pub: H(v.pub), msg: H(v.msg), sig: H(v.sig) };
        const accepted = [];
        for (let bit = 0; bit < f.bits; bit++) {
          const t = { ...parts, [f.field]: Uint8Array.from(parts[f.field]) };
          t[f.field][bit >> 3] ^= 1 << (bit & 7);
          const pub = t.pub.length === 32 ? enc05(t.pub) : t.pub;
          if (xeddsa.verify(pub, t.msg, t.sig)) accepted.push(bit);
        }
        r.eq(`flips of valid[${f.valid}].${f.field} (${f.bits} bits) accepted`, accepted.join(','), '');
      }
      j.cases.forEach((c, i) => {
        r.cases++;
        const pub = H(c.pub);
        r.eq(`cases[${i}] ${c.name} rejected`, xeddsa.verify(pub && pub.length === 32 ? enc05(pub) : pub, H(c.msg), H(c.sig)), false);
      });
    },
  },
  {
    name: "xeddsa: libsignal's verdicts (verdicts.json)",
    match: (dir, j) => dir === 'xeddsa' && 'libsignal_client' in j && !Array.isArray(j.vectors),
    run(j, r) {
      r.skipped.push("verdicts of libsignal itself on the other files: nothing this implementation can re-derive");
      r.deliberate = true;
    },
  },
  {
    name: 'x3dh: valid and invalid cases (vectors.json)',
    match: (dir, j) => dir === 'x3dh' && Array.isArray(j.valid) && Array.isArray(j.invalid),
    run(j, r) {
      if (j.default_info) r.eq('default_info', H(j.default_info), x3dh.DEFAULT_INFO);
      j.valid.forEach((c, i) => x3dhValid(c, r, `valid[${i}] ${c.name}`));
      j.invalid.forEach((c, i) => x3dhInvalid(c, r, `invalid[${i}] ${c.name}`));
    },
  },
  {
    name: 'ratchet: transcripts (vectors.json)',
    match: (dir, j) => dir === 'ratchet' && Array.isArray(j.transcripts),
    run(j, r) {
      for (const t of j.transcripts) replayTranscript(t, r);
    },
  },
  {
    // PROTOCOL.md 5.2: message key -> cipher key and nonce -> AEAD, for
    // both suites.
    name: 'aead: message keys (message_keys.json)',
    match: (dir, j) => dir === 'aead' && Array.isArray(j.suites),
    run(j, r) {
      for (const s of j.suites) {
        const suite = [AES256GCM, CHACHA20POLY1305].find((x) => x.name === s.suite);
        r.eq(`${s.suite}: a suite of PROTOCOL.md 5.2`, suite !== undefined, true);
        if (!suite) continue;
        r.eq(`${s.suite}: info`, s.info, suite.info);
        s.vectors.forEach((v, i) => {
          r.cases++;
          const label = `${s.suite} vector ${i}`;
          const mk = H(v.mk), pt = H(v.plaintext), ad = H(v.ad);
          const { key, nonce } = suite.derive(mk);
          r.eq(`${label}: key`, key, v.key);
          r.eq(`${label}: nonce`, nonce, v.nonce);
          r.eq(`${label}: ciphertext`, suite.seal(mk, pt, ad), v.ciphertext);
          const opened = suite.open(mk, H(v.ciphertext), ad);
          r.eq(`${label}: opens`, opened === null ? null : hex(opened), v.plaintext);
        });
      }
    },
  },
];

function clampHex(privHex) {
  const k = H(privHex);
  k[0] &= 248;
  k[31] &= 127;
  k[31] |= 64;
  return k;
}

function x3dhValid(c, r, name) {
  r.cases++;
  const { alice, bob } = c;
  const info = H(c.info);
  for (const [who, keys] of [['alice', alice], ['bob', bob]]) {
    for (const k of ['ik', 'ek', 'spk', 'opk']) {
      if (keys[`${k}_priv`]) r.eq(`${name}: ${who}.${k}_pub`, new KeyPair(H(keys[`${k}_priv`])).pub.encoded, H(keys[`${k}_pub`]));
    }
  }
  // The signed prekey's signature, reproduced from its Z in its style.
  const sig = c.spk_sig;
  r.eq(`${name}: spk_sig.msg`, H(sig.msg), H(bob.spk_pub));
  const mine = sig.style === 'spec' ? xeddsa.sign(H(bob.ik_priv), H(sig.msg), H(sig.z)) : xeddsa.signLibsignalStyle(H(bob.ik_priv), H(sig.msg), H(sig.z));
  r.eq(`${name}: spk_sig (${sig.style})`, mine, H(sig.sig));
  const bundle = { ik: H(bob.ik_pub), spk: H(bob.spk_pub), spkId: bob.spk_id, spkSig: H(sig.sig), opk: H(bob.opk_pub), opkId: bob.opk_id ?? null };
  const a = x3dh.initiate({ ikPriv: H(alice.ik_priv), ekPriv: H(alice.ek_priv), bundle, info });
  ['dh1', 'dh2', 'dh3', 'dh4'].forEach((k, n) => r.eq(`${name}: ${k}`, a.dhs[n] ? hex(a.dhs[n]) : null, c[k] ?? null));
  r.eq(`${name}: kdf_salt`, new Uint8Array(32), H(c.kdf_salt));
  r.eq(`${name}: kdf_ikm`, a.ikm, H(c.kdf_ikm));
  r.eq(`${name}: sk (initiate)`, a.sk, H(c.sk));
  r.eq(`${name}: ad (initiate)`, a.ad, H(c.ad));
  const b = x3dh.respond({
    ikPriv: H(bob.ik_priv), spkPriv: H(bob.spk_priv), opkPriv: H(bob.opk_priv), peerIk: a.ikA.encoded, peerEk: a.ekA.encoded, info,
  });
  r.eq(`${name}: sk (respond)`, b.sk, H(c.sk));
  r.eq(`${name}: ad (respond)`, b.ad, H(c.ad));
  const myBundle = encodeBundle(bundle);
  r.eq(`${name}: bundle bytes`, myBundle, H(c.bundle));
  r.eq(`${name}: bundle parses back`, errorOf(() => parseBundle(myBundle)), null);
  const header = encodeX3dhHeader({ ikA: a.ikA.encoded, ekA: a.ekA.encoded, spkId: bob.spk_id, opkId: bob.opk_id ?? null });
  r.eq(`${name}: header bytes`, header, H(c.header));
}

function x3dhInvalid(c, r, name) {
  r.cases++;
  const info = H(c.info);
  let kind;
  if (c.op === 'initiate') {
    const b = c.bundle;
    kind = errorOf(() => x3dh.initiate({
      ikPriv: H(c.alice.ik_priv), ekPriv: H(c.alice.ek_priv), info,
      bundle: { ik: H(b.ik), spk: H(b.spk), spkId: b.spk_id, spkSig: H(b.spk_sig), opk: H(b.opk), opkId: b.opk_id ?? null },
    }));
  } else if (c.op === 'respond') {
    const { bob, header } = c;
    // The id checks belong to the Go x3dh API (the session layer's equivalent
    // is unknown_prekey); they come before the keys are looked at.
    const mismatch = bob.spk_id !== header.spk_id || (bob.opk_priv == null) !== (header.opk_id == null) ||
      (header.opk_id != null && bob.opk_id !== header.opk_id);
    kind = mismatch ? 'prekey_mismatch' : errorOf(() => x3dh.respond({
      ikPriv: H(bob.ik_priv), spkPriv: H(bob.spk_priv), opkPriv: H(bob.opk_priv), peerIk: H(header.ik), peerEk: H(header.ek), info,
    }));
  } else if (c.op === 'parse_bundle') {
    kind = errorOf(() => parseBundle(H(c.bytes)));
  } else if (c.op === 'parse_header') {
    kind = errorOf(() => parseX3dhHeader(H(c.bytes)));
  } else {
    r.skipped.push(`${name}: unknown op ${c.op}`);
    return;
  }
  r.eq(`${name}: ${c.op} error`, kind, c.error ?? null);
}

/** The state of a RatchetSession in the Go transcripts' representation. */
function stateOf(s) {
  const raw = (pub) => (pub ? hex(pub.u) : '');
  return {
    rk: hex(s.rk),
    dhs_pub: raw(s.dhs.pub),
    dhr: raw(s.dhr),
    cks: s.cks ? hex(s.cks) : '',
    ckr: s.ckr ? hex(s.ckr) : '',
    ns: s.ns,
    nr: s.nr,
    pn: s.pn,
    skipped: [...s.skipped].map(([id, v]) => {
      const [key, n] = id.split(':');
      return { ratchet_key: key.slice(2), n: Number(n), mk: hex(v.mk) };
    }),
  };
}

const sameState = (mine, theirs) => JSON.stringify(mine) === JSON.stringify({
  rk: theirs.rk, dhs_pub: theirs.dhs_pub, dhr: theirs.dhr, cks: theirs.cks, ckr: theirs.ckr,
  ns: theirs.ns, nr: theirs.nr, pn: theirs.pn,
  skipped: (theirs.skipped ?? []).map((k) => ({ ratchet_key: k.ratchet_key, n: k.n, mk: k.mk })),
});

function replayTranscript(t, r) {
  const name = t.name;
  const limits = { maxSkip: t.max_skip, maxSkippedKeys: t.max_skipped_keys };
  const parties = {
    alice: RatchetSession.initAlice({ sk: H(t.sk), ad: H(t.ad), peerDh: enc05(H(t.bob_dh_pub)), dhPriv: H(t.alice_dh_priv), ...limits }),
    bob: RatchetSession.initBob({ sk: H(t.sk), ad: H(t.ad), dhPriv: H(t.bob_dh_priv), ...limits }),
  };
  r.eq(`${name}: alice_dh_pub`, parties.alice.dhs.pub.u, H(t.alice_dh_pub));
  r.eq(`${name}: bob_dh_pub`, parties.bob.dhs.pub.u, H(t.bob_dh_pub));
  if (t.alice_init) {
    r.eq(`${name}: alice_init.dh`, dh(H(t.alice_dh_priv), PublicKey.decode(enc05(H(t.bob_dh_pub)))), H(t.alice_init.dh));
    r.eq(`${name}: alice_init.rk`, parties.alice.rk, H(t.alice_init.rk));
    r.eq(`${name}: alice_init.cks`, parties.alice.cks, H(t.alice_init.cks));
  }
  for (const who of ['alice', 'bob']) {
    if (t[`${who}_state`]) r.eq(`${name}: initial ${who} state`, sameState(stateOf(parties[who]), t[`${who}_state`]), true);
  }
  t.steps.forEach((st, i) => {
    r.cases++;
    const label = `${name} step ${i} (${st.party} ${st.op}${st.note ? `: ${st.note}` : ''})`;
    const s = parties[st.party];
    const before = s.clone();
    let got;
    let kind;
    if (st.op === 'encrypt') {
      kind = errorOf(() => (got = s.encrypt(H(st.pt))));
      r.eq(`${label}: error`, kind, st.error ?? null);
      if (!kind) r.eq(`${label}: msg`, got, H(st.msg));
    } else {
      kind = errorOf(() => (got = s.decrypt(H(st.msg), { dhPriv: H(st.dh_priv) })));
      r.eq(`${label}: error`, kind, st.error ?? null);
      if (!kind) r.eq(`${label}: pt`, got, H(st.pt));
    }
    if (st.header) r.eq(`${label}: header`, H(st.msg).subarray(0, 42), H(st.header));
    if (st.chain) {
      if (st.chain.ck) {
        const [next, mk] = kdfCk(H(st.chain.ck));
        r.eq(`${label}: chain mk`, mk, H(st.chain.mk));
        r.eq(`${label}: chain next_ck`, next, H(st.chain.next_ck));
      }
      if (st.aes_key) r.eq(`${label}: aes_key`, AES256GCM.derive(H(st.chain.mk)).key, H(st.aes_key));
      if (st.nonce) r.eq(`${label}: nonce`, AES256GCM.derive(H(st.chain.mk)).nonce, H(st.nonce));
    }
    if (st.dh_step) {
      const d = st.dh_step;
      const key = PublicKey.decode(H(st.msg).subarray(1, 34));
      r.eq(`${label}: dh_recv`, dh(before.dhs.priv, key), H(d.dh_recv));
      const [rk1, ckr] = kdfRk(before.rk, H(d.dh_recv));
      r.eq(`${label}: rk_1`, rk1, H(d.rk_1));
      r.eq(`${label}: ckr`, ckr, H(d.ckr));
      r.eq(`${label}: new_dh_pub`, new KeyPair(H(st.dh_priv)).pub.u, H(d.new_dh_pub));
      r.eq(`${label}: dh_send`, dh(H(st.dh_priv), key), H(d.dh_send));
      const [rk2, cks] = kdfRk(rk1, H(d.dh_send));
      r.eq(`${label}: rk_2`, rk2, H(d.rk_2));
      r.eq(`${label}: cks`, cks, H(d.cks));
    }
    if (st.state_after) {
      const mine = stateOf(s);
      const ok = sameState(mine, st.state_after);
      r.eq(`${label}: state_after`, ok, true);
      if (!ok && opt.verbose) r.mismatches.push(`${label}: mine ${JSON.stringify(mine)}`);
    }
  });
}

function rederiveFile(dir, file) {
  const report = { file: path.relative(opt.root, file), checked: 0, mismatches: [], skipped: [], cases: 0 };
  let json;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    report.skipped.push(`unreadable JSON: ${e.message}`);
    return report;
  }
  const format = FORMATS.find((f) => f.match(dir, json));
  if (format) {
    const r = newReport(report.file);
    try {
      format.run(json, r);
    } catch (e) {
      r.checked++;
      r.mismatches.push(`${format.name}: threw ${e.stack}`);
    }
    r.format = format.name;
    return r;
  }
  if (path.basename(file).startsWith('package')) {
    report.skipped.push('an npm manifest, not vectors');
    report.deliberate = true;
    return report;
  }
  const cases = casesOf(json);
  if (!cases) {
    report.skipped.push('no list of cases found');
    return report;
  }
  const driver = createDriver(); // transcripts share one driver per file
  for (const [i, c] of cases.entries()) {
    report.cases++;
    const flat = flatten(c);
    const kind = classify(dir, c, flat);
    if (!kind) {
      report.skipped.push(`case ${i}: no handler (fields: ${Object.keys(flat).slice(0, 8).join(', ')})`);
      continue;
    }
    const before = report.mismatches.length;
    try {
      handlers[kind](kind === 'transcript' ? c : flat, report, driver);
    } catch (e) {
      report.checked++;
      report.mismatches.push(`case ${i}: threw ${e.message}`);
    }
    for (let m = before; m < report.mismatches.length; m++) report.mismatches[m] = `case ${i} (${c.name ?? c.comment ?? kind}): ${report.mismatches[m]}`;
  }
  return report;
}

/** Writes a few vectors in a plausible format, so that the skeleton can be exercised today. */
function writeDemo(root) {
  for (const d of ['xeddsa', 'x3dh', 'ratchet']) fs.mkdirSync(path.join(root, d), { recursive: true });
  const k = (b) => new Uint8Array(32).fill(b);
  const z = new Uint8Array(64).fill(3);
  const msg = new Uint8Array([1, 2, 3]);
  const sig = xeddsa.sign(k(1), msg, z);
  fs.writeFileSync(path.join(root, 'xeddsa', 'demo.json'), JSON.stringify({
    cases: [
      { name: 'spec sign', priv: hex(k(1)), pub: hex(new KeyPair(k(1)).pub.encoded), msg: hex(msg), z: hex(z), sig: hex(sig), valid: true },
      { name: 'flipped', pub: hex(new KeyPair(k(1)).pub.encoded), msg: hex(msg), sig: hex(sig.map((b, i) => (i === 5 ? b ^ 1 : b))), valid: false },
    ],
  }));
  const spk = new KeyPair(k(4));
  const ikB = new KeyPair(k(2));
  const spkSig = xeddsa.sign(k(2), spk.pub.encoded, z);
  const r = x3dh.initiate({ ikPriv: k(1), ekPriv: k(5), bundle: { ik: ikB.pub.encoded, spk: spk.pub.encoded, spkSig, opk: null } });
  fs.writeFileSync(path.join(root, 'x3dh', 'demo.json'), JSON.stringify([
    {
      name: 'no opk', ik_a_priv: hex(k(1)), ek_a_priv: hex(k(5)), ik_b_priv: hex(k(2)), spk_b_priv: hex(k(4)),
      bundle: { ik: hex(ikB.pub.encoded), spk: hex(spk.pub.encoded), spk_sig: hex(spkSig), opk: null },
      dh1: hex(r.dhs[0]), dh2: hex(r.dhs[1]), dh3: hex(r.dhs[2]), ikm: hex(r.ikm), sk: hex(r.sk), ad: hex(r.ad),
    },
    { name: 'bad sig', ik_a_priv: hex(k(1)), ek_a_priv: hex(k(5)), bundle: { ik: hex(ikB.pub.encoded), spk: hex(spk.pub.encoded), spk_sig: '00'.repeat(64) }, error: 'invalid_signature' },
  ]));
  const drv = createDriver();
  const steps = [
    { op: 'ratchet_init_alice', id: 'a', sk: hex(r.sk), ad: hex(r.ad), peer_dh: hex(spk.pub.encoded), dh_priv: hex(k(6)) },
    { op: 'ratchet_init_bob', id: 'b', sk: hex(r.sk), ad: hex(r.ad), dh_priv: hex(k(4)) },
    { op: 'encrypt', id: 'a', pt: '68656c6c6f' },
  ];
  const transcript = steps.map((request) => ({ request, response: drv.handle(request) }));
  const last = { op: 'decrypt', id: 'b', msg: transcript[2].response.msg, dh_priv: hex(k(7)) };
  transcript.push({ request: last, response: drv.handle(last) });
  fs.writeFileSync(path.join(root, 'ratchet', 'demo.json'), JSON.stringify({ steps: transcript }));
  fs.writeFileSync(path.join(root, 'ratchet', 'unknown-shape.json'), JSON.stringify({ something: 'else' }));
}

// ---------------------------------------------------------------------------

const root = opt.demo ? fs.mkdtempSync(path.join(os.tmpdir(), 'rederive-demo-')) : opt.root;
if (opt.demo) {
  writeDemo(root);
  opt.root = root;
}
let passed = 0;
let failed = 0;
let skippedFiles = 0;
for (const dir of ['xeddsa', 'x3dh', 'ratchet', 'aead']) {
  const full = path.join(root, dir);
  const files = fs.existsSync(full) ? fs.readdirSync(full).filter((f) => f.endsWith('.json')).sort() : [];
  if (files.length === 0) {
    console.log(`skip ${dir}/: no vector files yet`);
    if (opt.strict) skippedFiles++; // in CI, vectors must be there
    continue;
  }
  for (const f of files) {
    const r = rederiveFile(dir, path.join(full, f));
    const ok = r.mismatches.length === 0;
    passed += r.checked - r.mismatches.length;
    failed += r.mismatches.length;
    if (r.checked === 0 && !r.deliberate) skippedFiles++;
    console.log(`${r.checked === 0 ? 'skip' : ok ? 'ok  ' : 'FAIL'} ${r.file}: ${r.cases} cases, ${r.checked} values re-derived, ${r.mismatches.length} mismatches, ${r.skipped.length} skipped`);
    for (const m of r.mismatches) console.log(`     mismatch: ${m}`);
    for (const s of r.skipped.slice(0, opt.verbose ? Infinity : 3)) console.log(`     skipped: ${s}`);
    if (!opt.verbose && r.skipped.length > 3) console.log(`     … ${r.skipped.length - 3} more skipped (-v to list)`);
  }
}
if (opt.strict && skippedFiles > 0) failed += skippedFiles;
console.log(`rederive: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
