#!/usr/bin/env node
// A seeded, randomized two-party conversation between this JavaScript
// implementation and another one behind a conformance driver (PROTOCOL.md
// section 9), in both roles, with reordering, loss, duplicates and
// tampering.
//
//   node converse.mjs                                    # against driver.mjs
//   node converse.mjs --peer "go run ./internal/cmd/conformance" --cwd ../..
//   node converse.mjs --seed 7 --steps 3000 --role bob --mode session -v
//
// Every key is drawn from a seeded generator and injected (ek_priv, dh_priv),
// so a run is reproducible byte for byte. Two kinds of check:
//
//  * the oracle: a fresh genuine message decrypts to exactly what was sent
//    (with the default limits); a tampered message, or a second delivery of
//    one that decrypted, fails and changes nothing;
//  * mirrors (default on): each party also exists in the other
//    implementation, fed the same operations and keys. Every output of the
//    two must be identical: message bytes, plaintexts and error kinds.
//
// Modes: "session" (session_initiate/session_respond, prekey messages,
// default limits, and now and then Alice starting over with a new session
// while messages of her old ones are still in flight, so that Bob holds
// several sessions, tries them in order and promotes the one that
// decrypts) and "ratchet" (X3DH through x3dh_initiate/x3dh_respond,
// compared on both sides, then ratchet_init_* with tight limits so that
// too_many_skipped and eviction happen).

import { parseArgs } from 'node:util';
import fs from 'node:fs';
import { hex, unhex } from './lib/bytes.mjs';
import { Kind, ProtocolError } from './lib/errors.mjs';
import { KeyPair } from './lib/keys.mjs';
import { Peer } from './lib/peer.mjs';
import { RatchetSession } from './lib/ratchet.mjs';
import { SeededRng } from './lib/rng.mjs';
import { BareSession, Initiator, Responder } from './lib/session.mjs';
import * as x3dh from './lib/x3dh.mjs';
import * as xeddsa from './lib/xeddsa.mjs';

const { values: opt } = parseArgs({
  options: {
    peer: { type: 'string', default: 'node driver.mjs' },
    cwd: { type: 'string' },
    seed: { type: 'string', default: '1' },
    steps: { type: 'string', default: '1500' },
    role: { type: 'string', default: 'both' }, // the role JS plays: alice | bob | both
    mode: { type: 'string', default: 'both' }, // session | ratchet | both
    'no-mirror': { type: 'boolean', default: false },
    log: { type: 'string' }, // write the driver traffic here
    verbose: { type: 'boolean', short: 'v', default: false },
  },
});

const TIGHT = { max_skip: 5, max_skipped_keys: 8 };
const logStream = opt.log ? fs.createWriteStream(opt.log) : null;
const peer = new Peer(opt.peer, {
  cwd: opt.cwd ?? new URL('.', import.meta.url).pathname,
  log: logStream ? (dir, line) => logStream.write(`${dir} ${line}\n`) : undefined,
});

// ---------------------------------------------------------------------------
// Parties. Both kinds answer like the driver: {msg}|{pt}|{error}.

/** A party implemented in this process. */
class JsParty {
  constructor(session) {
    this.session = session;
  }
  static wrap(fn) {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ProtocolError) return { error: err.kind };
      throw err;
    }
  }
  async encrypt(pt) {
    return JsParty.wrap(() => ({ msg: hex(this.session.encrypt(pt)) }));
  }
  async decrypt(msg, dhPriv) {
    return JsParty.wrap(() => ({ pt: hex(this.session.decrypt(msg, { dhPriv })) }));
  }
}

/** A party living in the driver process under an id. */
class DriverParty {
  constructor(id) {
    this.id = id;
  }
  async encrypt(pt) {
    return peer.request({ op: 'encrypt', id: this.id, pt: hex(pt) });
  }
  async decrypt(msg, dhPriv) {
    return peer.request({ op: 'decrypt', id: this.id, msg: hex(msg), dh_priv: hex(dhPriv) });
  }
}

// ---------------------------------------------------------------------------

const stats = { checks: 0, failures: 0 };
function check(ok, what, detail) {
  stats.checks++;
  if (ok) return true;
  stats.failures++;
  console.log(`FAIL ${what}${detail ? `: ${detail}` : ''}`);
  return false;
}
// Answers compare as JSON values: the order of an object's keys carries no
// meaning (the Go driver writes them sorted).
const sorted = (v) =>
  v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]))
    : v;
const same = (a, b) => JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));

/** Creates Alice and Bob in both implementations for one run. */
async function setup(mode, jsRole, rng, tag) {
  const k = () => rng.bytes(32);
  const ikA = k(), ikB = k(), spkB = k(), ekA = k(), dhsA = k();
  const opks = Array.from({ length: 3 }, (_, i) => ({ id: 100 + i, priv: k() }));
  const useOpk = rng.chance(0.7);
  const spkId = rng.int(2 ** 32);
  const ikBPub = new KeyPair(ikB).pub.encoded;
  const spkPub = new KeyPair(spkB).pub.encoded;
  const spkSig = rng.chance(0.5)
    ? xeddsa.sign(ikB, spkPub, rng.bytes(64))
    : xeddsa.signLibsignalStyle(ikB, spkPub, rng.bytes(64));
  const opk = useOpk ? opks[rng.int(3)] : null;
  const bundle = { ik: ikBPub, spk: spkPub, spkId, spkSig, opk: opk ? new KeyPair(opk.priv).pub.encoded : null, opkId: opk ? opk.id : null };
  const jsonBundle = { ik: hex(bundle.ik), spk: hex(bundle.spk), spk_id: spkId, spk_sig: hex(spkSig), opk: bundle.opk && hex(bundle.opk), opk_id: bundle.opkId };
  const info = rng.chance(0.3) ? rng.bytes(rng.int(20)) : undefined;
  const jsonInfo = info === undefined ? {} : { info: hex(info) };

  const js = {};
  const drv = {};
  let restartAlice = null;
  if (mode === 'session') {
    js.alice = new JsParty(Initiator.create({ ikPriv: ikA, ekPriv: ekA, dhPriv: dhsA, bundle, info }));
    js.bob = new JsParty(new Responder({ ikPriv: ikB, spk: { id: spkId, priv: spkB }, opks, info }));
    for (const [who, id] of [['alice', `${tag}-alice`], ['bob', `${tag}-bob`]]) {
      const req = who === 'alice'
        ? { op: 'session_initiate', id, ik_priv: hex(ikA), ek_priv: hex(ekA), dh_priv: hex(dhsA), bundle: jsonBundle, ...jsonInfo }
        : { op: 'session_respond', id, ik_priv: hex(ikB), spk: { id: spkId, priv: hex(spkB) }, opks: opks.map((o) => ({ id: o.id, priv: hex(o.priv) })), ...jsonInfo };
      const got = await peer.request(req);
      if (!check(same(got, {}), `${req.op}`, JSON.stringify(got))) throw new Error('setup failed');
      drv[who] = new DriverParty(id);
    }
    // Alice starts over (a reinstall that kept her identity key): a new
    // session from Bob's bundle without a one-time prekey, under the same
    // id in the driver, which replaces the old initiator.
    restartAlice = async () => {
      const ek = k(), dhs = k();
      const b = { ...bundle, opk: null, opkId: null };
      js.alice = new JsParty(Initiator.create({ ikPriv: ikA, ekPriv: ek, dhPriv: dhs, bundle: b, info }));
      const req = {
        op: 'session_initiate', id: `${tag}-alice`, ik_priv: hex(ikA), ek_priv: hex(ek), dh_priv: hex(dhs),
        bundle: { ...jsonBundle, opk: null, opk_id: null }, ...jsonInfo,
      };
      const got = await peer.request(req);
      check(same(got, {}), 'session_initiate (restart)', JSON.stringify(got));
      return js.alice;
    };
  } else {
    // X3DH in both implementations and both roles; all four results must agree.
    const a = x3dh.initiate({ ikPriv: ikA, ekPriv: ekA, bundle, info });
    const b = x3dh.respond({ ikPriv: ikB, spkPriv: spkB, opkPriv: opk ? opk.priv : null, peerIk: a.ikA.encoded, peerEk: a.ekA.encoded, info });
    const da = await peer.request({ op: 'x3dh_initiate', ik_priv: hex(ikA), ek_priv: hex(ekA), bundle: jsonBundle, ...jsonInfo });
    const db = await peer.request({
      op: 'x3dh_respond', ik_priv: hex(ikB), spk_priv: hex(spkB), opk_priv: opk ? hex(opk.priv) : null,
      peer_ik: hex(a.ikA.encoded), peer_ek: hex(a.ekA.encoded), ...jsonInfo,
    });
    const want = { sk: hex(a.sk), ad: hex(a.ad) };
    check(same(want, { sk: hex(b.sk), ad: hex(b.ad) }), 'x3dh: JS initiator and responder agree');
    check(same(da, want), 'x3dh_initiate: driver equals JS', JSON.stringify(da));
    check(same(db, want), 'x3dh_respond: driver equals JS', JSON.stringify(db));
    const limits = { maxSkip: TIGHT.max_skip, maxSkippedKeys: TIGHT.max_skipped_keys };
    js.alice = new JsParty(new BareSession(RatchetSession.initAlice({ sk: a.sk, ad: a.ad, peerDh: spkPub, dhPriv: dhsA, ...limits })));
    js.bob = new JsParty(new BareSession(RatchetSession.initBob({ sk: a.sk, ad: a.ad, dhPriv: spkB, ...limits })));
    const reqs = {
      alice: { op: 'ratchet_init_alice', id: `${tag}-alice`, sk: want.sk, ad: want.ad, peer_dh: hex(spkPub), dh_priv: hex(dhsA), ...TIGHT },
      bob: { op: 'ratchet_init_bob', id: `${tag}-bob`, sk: want.sk, ad: want.ad, dh_priv: hex(spkB), ...TIGHT },
    };
    for (const who of ['alice', 'bob']) {
      const got = await peer.request(reqs[who]);
      if (!check(same(got, {}), reqs[who].op, JSON.stringify(got))) throw new Error('setup failed');
      drv[who] = new DriverParty(reqs[who].id);
    }
  }
  const other = jsRole === 'alice' ? 'bob' : 'alice';
  const parties = {
    real: { [jsRole]: js[jsRole], [other]: drv[other] },
    mirror: opt['no-mirror'] ? {} : { [jsRole]: drv[jsRole], [other]: js[other] },
    names: { [jsRole]: 'JS', [other]: 'driver' },
    // Bob as this implementation sees him (real or mirror), if it does.
    jsBob: jsRole === 'bob' || !opt['no-mirror'] ? js.bob.session : null,
    jsAlice: () => js.alice.session,
  };
  if (restartAlice && parties.jsBob) {
    parties.restartAlice = async () => {
      const alice = await restartAlice();
      // The driver's Alice keeps its id; only the JS object is new.
      if (jsRole === 'alice') parties.real.alice = alice;
      else if (!opt['no-mirror']) parties.mirror.alice = alice;
    };
  }
  return parties;
}

/** One conversation; returns counters. */
async function run(mode, jsRole, seed, steps) {
  const rng = new SeededRng(`${seed}/${mode}/${jsRole}`);
  const tag = `${mode}-${jsRole}`;
  const parties = await setup(mode, jsRole, rng, tag);
  const { real, mirror, names } = parties;
  const tight = mode === 'ratchet';
  const inFlight = { alice: [], bob: [] }; // messages travelling to that party
  const decrypted = { alice: [], bob: [] };
  const c = { sent: 0, delivered: 0, lost: 0, duplicates: 0, tampered: 0, restarts: 0, refused: {} };
  const count = (kind) => (c.refused[kind] = (c.refused[kind] ?? 0) + 1);

  /** Runs an operation on a party and its mirror; they must answer alike. */
  async function both(who, op, ...args) {
    const got = await real[who][op](...args);
    if (mirror[who]) {
      const m = await mirror[who][op](...args);
      check(same(got, m), `${tag}: ${who} ${op}: ${names[who]} and its mirror differ`, `${JSON.stringify(got)} vs ${JSON.stringify(m)}`);
    }
    return got;
  }

  for (let step = 0; step < steps; step++) {
    const to = rng.chance(0.5) ? 'alice' : 'bob';
    const from = to === 'alice' ? 'bob' : 'alice';
    const r = rng.int(1000);
    if (r < 5 && parties.restartAlice) {
      await parties.restartAlice();
      // Messages to the old Alice are lost with her state.
      c.lost += inFlight.alice.length;
      inFlight.alice = [];
      decrypted.alice = [];
      c.restarts++;
    } else if (r < 350) {
      const pt = rng.bytes(rng.int(65));
      const got = await both(from, 'encrypt', pt);
      if (got.error) {
        // Only Bob, before he has received anything, may be unable to send.
        check(from === 'bob' && got.error === Kind.noSession, `${tag}: encrypt by ${from} failed`, got.error);
        continue;
      }
      // After a restart Bob answers with his current session, which is
      // Alice's present one only once a message of hers promoted it: a
      // message he makes with an older session can only fail at her.
      const doomed = to === 'alice' && parties.jsBob !== null && c.restarts > 0 &&
        !(parties.jsBob.current && parties.jsBob.current.origin.ekA.equals(parties.jsAlice().prekey.ekA));
      inFlight[to].push({ pt: hex(pt), msg: unhex(got.msg), seq: c.sent++, doomed });
    } else if (r < 750) {
      if (inFlight[to].length === 0) continue;
      const window = Math.min(inFlight[to].length, 6); // reorder among the oldest few
      const [item] = inFlight[to].splice(rng.int(window), 1);
      const got = await both(to, 'decrypt', item.msg, rng.bytes(32));
      if (got.pt !== undefined) {
        check(got.pt === item.pt, `${tag}: message #${item.seq} to ${to} decrypted to other bytes`);
        decrypted[to].push(item);
        c.delivered++;
      } else {
        // With the default limits every genuine message must decrypt; with
        // tight limits a too-large gap or an evicted key may refuse it.
        const allowed = tight || item.doomed ? [Kind.tooManySkipped, Kind.duplicate, Kind.authFailed] : [];
        check(allowed.includes(got.error), `${tag}: genuine message #${item.seq} to ${to} refused`, got.error);
        count(got.error);
      }
    } else if (r < 820) {
      if (inFlight[to].length === 0) continue;
      inFlight[to].splice(rng.int(inFlight[to].length), 1);
      c.lost++;
    } else if (r < 900) {
      if (decrypted[to].length === 0) continue;
      const item = rng.pick(decrypted[to]);
      const got = await both(to, 'decrypt', item.msg, rng.bytes(32));
      check(got.error !== undefined, `${tag}: replayed message #${item.seq} to ${to} decrypted again`);
      if (got.error) count(got.error);
      c.duplicates++;
    } else {
      const pool = [...inFlight[to], ...decrypted[to]];
      if (pool.length === 0) continue;
      const item = rng.pick(pool);
      const bad = Uint8Array.from(item.msg);
      const bit = rng.int(bad.length * 8);
      bad[bit >> 3] ^= 1 << (bit & 7);
      const got = await both(to, 'decrypt', bad, rng.bytes(32));
      check(got.error !== undefined, `${tag}: tampered message #${item.seq} (bit ${bit}) to ${to} was accepted`);
      if (got.error) count(got.error);
      c.tampered++;
    }
  }
  // Drain: every message still in flight must now arrive (in order of sending).
  for (const to of ['alice', 'bob']) {
    for (const item of inFlight[to].sort((x, y) => x.seq - y.seq)) {
      const got = await both(to, 'decrypt', item.msg, rng.bytes(32));
      if (got.pt !== undefined) {
        check(got.pt === item.pt, `${tag}: drained message #${item.seq} decrypted to other bytes`);
        c.delivered++;
      } else {
        check(tight || item.doomed, `${tag}: drained message #${item.seq} to ${to} refused`, got.error);
        count(got.error);
      }
    }
  }
  return c;
}

const modes = opt.mode === 'both' ? ['session', 'ratchet'] : [opt.mode];
const roles = opt.role === 'both' ? ['alice', 'bob'] : [opt.role];
const steps = Number(opt.steps);
try {
  for (const mode of modes) {
    for (const role of roles) {
      const before = stats.failures;
      const c = await run(mode, role, opt.seed, steps);
      const status = stats.failures === before ? 'ok  ' : 'FAIL';
      console.log(
        `${status} ${mode.padEnd(7)} JS as ${role.padEnd(5)}: ${c.sent} sent, ${c.delivered} delivered, ` +
          `${c.lost} lost, ${c.duplicates} replayed, ${c.tampered} tampered, ${c.restarts} restarts; ` +
          `refusals ${JSON.stringify(c.refused)}`,
      );
    }
  }
} finally {
  const code = await peer.close();
  check(code === 0, 'driver exit status', String(code));
  logStream?.end();
}
console.log(`converse: ${stats.checks - stats.failures} passed, ${stats.failures} failed`);
process.exit(stats.failures === 0 ? 0 : 1);
