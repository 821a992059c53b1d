#!/usr/bin/env node
// Re-derives the Go-generated vectors byte for byte with this JavaScript
// implementation.
//
//   node rederive.mjs                    # reads ../xeddsa, ../x3dh, ../ratchet
//   node rederive.mjs --root DIR         # another testdata directory
//   node rederive.mjs --demo             # writes sample vectors to a temp dir and checks them
//   node rederive.mjs --strict           # a file no handler understands is a failure
//
// STATUS: skeleton. The vector formats are not fixed yet, so each handler
// below recognises its cases by field names, through the alias table
// FIELDS. When the Go formats are final, adapt FIELDS (and, if the layout
// is not "a list of cases", casesOf) and turn on --strict in CI. Every
// value present in a case is re-derived and compared; values the handler
// does not know are reported as skipped, never silently passed.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { concat, hex, unhex } from './lib/bytes.mjs';
import { ProtocolError } from './lib/errors.mjs';
import { createDriver } from './lib/driver-core.mjs';
import { KeyPair } from './lib/keys.mjs';
import { AES256GCM } from './lib/primitives.mjs';
import { kdfCk, kdfRk } from './lib/ratchet.mjs';
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

function rederiveFile(dir, file) {
  const report = { file: path.relative(opt.root, file), checked: 0, mismatches: [], skipped: [], cases: 0 };
  let json;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    report.skipped.push(`unreadable JSON: ${e.message}`);
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
for (const dir of ['xeddsa', 'x3dh', 'ratchet']) {
  const full = path.join(root, dir);
  const files = fs.existsSync(full) ? fs.readdirSync(full).filter((f) => f.endsWith('.json')).sort() : [];
  if (files.length === 0) {
    console.log(`skip ${dir}/: no vector files yet`);
    continue;
  }
  for (const f of files) {
    const r = rederiveFile(dir, path.join(full, f));
    const ok = r.mismatches.length === 0;
    passed += r.checked - r.mismatches.length;
    failed += r.mismatches.length;
    if (r.checked === 0) skippedFiles++;
    console.log(`${r.checked === 0 ? 'skip' : ok ? 'ok  ' : 'FAIL'} ${r.file}: ${r.cases} cases, ${r.checked} values re-derived, ${r.mismatches.length} mismatches, ${r.skipped.length} skipped`);
    for (const m of r.mismatches) console.log(`     mismatch: ${m}`);
    for (const s of r.skipped.slice(0, opt.verbose ? Infinity : 3)) console.log(`     skipped: ${s}`);
    if (!opt.verbose && r.skipped.length > 3) console.log(`     … ${r.skipped.length - 3} more skipped (-v to list)`);
  }
}
if (opt.strict && skippedFiles > 0) failed += skippedFiles;
console.log(`rederive: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
