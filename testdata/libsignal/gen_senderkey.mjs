// gen_senderkey.mjs makes testdata/libsignal/senderkey.json, the Sender Key
// (group) vectors, with libsignal itself (the pinned
// @signalapp/libsignal-client):
//
//   cd testdata/libsignal && npm ci && node gen_senderkey.mjs > senderkey.json
//
// Each group is one sender's distribution id: the distribution messages the
// sender made (SenderKeyDistributionMessage.create, after the sender's
// record was dropped for a rekey), the sender's key material read from its
// own record (chain key and XEdDSA signing key, so that a replay can
// re-encrypt and compare bytes), every group message (groupEncrypt) with its
// iteration and plaintext, and receivers: each a script of
// processSenderKeyDistributionMessage and groupDecrypt steps as a fresh
// libsignal receiver ran them, with libsignal's verdict on each (plaintext,
// or its error code and message). Negative steps also say whether the
// receiver's record was byte-identical afterwards.
//
// libsignal draws its own randomness, so every run gives other bytes; the
// Go tests pass on any run.

import {
  SenderKeyDistributionMessage, SenderKeyMessage, ProtocolAddress, PrivateKey,
  processSenderKeyDistributionMessage, groupEncrypt, groupDecrypt,
  MemorySenderKeys, uuidString, errorOf, recordStates,
} from './senderkey_lib.mjs';
import { hex, sha256, u8 } from './lib.mjs';

// A deterministic stream for plaintexts and delivery orders (not for keys).
let ctr = 0;
const det = (n) => {
  const out = [];
  while (out.length < n) out.push(...sha256('ratchetkit senderkey gen ', String(ctr++)));
  return u8(out.slice(0, n));
};
const rnd = (k) => det(4).reduce((a, b) => a * 256 + b, 0) % k;

const sender = ProtocolAddress.new('alice', 1);
const senderStore = new MemorySenderKeys();

function newDistribution(label) {
  const id = sha256('ratchetkit distribution ', label).slice(0, 16);
  id[6] = (id[6] & 0x0f) | 0x40; id[8] = (id[8] & 0x3f) | 0x80; // a v4 UUID's bits
  return { label, id, uuid: uuidString(id) };
}

async function makeSKDM(dist) {
  const m = await SenderKeyDistributionMessage.create(sender, dist.uuid, senderStore);
  const rec = await senderStore.getSenderKey(sender, dist.uuid);
  const st = recordStates(rec.serialize())[0];
  const again = SenderKeyDistributionMessage.deserialize(m.serialize());
  if (hex(again.serialize()) !== hex(m.serialize())) throw new Error('SKDM roundtrip');
  return {
    wire: hex(m.serialize()), chain_id: m.chainId(), iteration: m.iteration(), chain_key: hex(m.chainKey()),
    signing_public: st.signing_public, signing_private: st.signing_private, message_version: st.message_version,
    sender_record: hex(rec.serialize()),
  };
}

async function encrypt(dist, pt) {
  const rec = recordStates((await senderStore.getSenderKey(sender, dist.uuid)).serialize())[0];
  const m = await groupEncrypt(sender, dist.uuid, senderStore, pt);
  return { chain_id: rec.chain_id, iteration: rec.iteration, plaintext: hex(pt), wire: hex(m.serialize()), type: m.type() };
}

const plaintext = (i) => det([0, 1, 15, 16, 17, 31, 32, 100, 1024][i % 9] + (i > 8 ? rnd(40) : 0));

// Receiver runs steps on a fresh libsignal store and records the verdicts.
async function receive(name, steps, group) {
  const store = new MemorySenderKeys();
  const out = [];
  for (const s of steps) {
    if (s.process !== undefined) {
      const wire = s.process_wire ?? group.skdms[s.process].wire;
      const st = { process: s.process };
      if (s.process_wire) st.wire = s.process_wire;
      try {
        await processSenderKeyDistributionMessage(sender, SenderKeyDistributionMessage.deserialize(u8(Buffer.from(wire, 'hex'))), store);
        st.ok = true;
      } catch (e) { st.ok = false; st.error = errorOf(e); }
      out.push(st);
      continue;
    }
    const wire = s.wire ?? group.messages[s.decrypt].wire;
    const st = s.wire ? { name: s.name, wire } : { decrypt: s.decrypt };
    const before = store.snapshot();
    try {
      const pt = await groupDecrypt(sender, store, u8(Buffer.from(wire, 'hex')));
      st.ok = true; st.plaintext = hex(pt);
    } catch (e) {
      st.ok = false; st.error = errorOf(e);
      st.state_unchanged = store.snapshot() === before;
    }
    out.push(st);
  }
  return { name, steps: out };
}

const groups = [];

// 1. main: 60 messages, delivered out of order, with losses and duplicates.
{
  const dist = newDistribution('main');
  const g = { name: 'main', distribution_id: hex(dist.id), skdms: [await makeSKDM(dist)], messages: [] };
  for (let i = 0; i < 60; i++) g.messages.push(await encrypt(dist, plaintext(i)));
  const order = [...Array(60).keys()];
  for (let i = order.length - 1; i > 0; i--) { // a partial shuffle: local reordering
    if (rnd(3) === 0) { const j = Math.max(0, i - 1 - rnd(6)); [order[i], order[j]] = [order[j], order[i]]; }
  }
  const lost = new Set([7, 23, 41, 42, 59]);
  const steps = [{ process: 0 }];
  for (const i of order) if (!lost.has(i)) steps.push({ decrypt: i });
  for (const i of [3, 30, 58, 0]) steps.splice(10 + rnd(steps.length - 10), 0, { decrypt: i });
  steps.push({ decrypt: 12 }); steps.push({ decrypt: 12 });
  // Re-processing the same distribution message resets nothing.
  steps.push({ process: 0 }); steps.push({ decrypt: 1 }); steps.push({ decrypt: 41 });
  g.receivers = [await receive('bob', steps, g)];
  groups.push(g);
}

// 2. late: a member that joins after ten messages.
{
  const dist = newDistribution('late');
  const g = { name: 'late', distribution_id: hex(dist.id), skdms: [], messages: [] };
  const early = []; // messages before the SKDM need no SKDM of record here
  g.skdms.push(await makeSKDM(dist)); // iteration 0, for the early member
  for (let i = 0; i < 10; i++) g.messages.push(await encrypt(dist, plaintext(i)));
  g.skdms.push(await makeSKDM(dist)); // iteration 10, same chain
  for (let i = 10; i < 25; i++) g.messages.push(await encrypt(dist, plaintext(i)));
  void early;
  const steps = [{ process: 1 }];
  for (const i of [12, 10, 3, 9, 11, 24, 13, 0]) steps.push({ decrypt: i });
  const early2 = [{ process: 0 }, { decrypt: 24 }, { decrypt: 0 }, { process: 1 }, { decrypt: 5 }];
  g.receivers = [await receive('carol', steps, g), await receive('erin', early2, g)];
  groups.push(g);
}

// 3. rekey: the sender drops its record and makes a new chain; a member
// that was removed (dave) gets only the first distribution message.
{
  const dist = newDistribution('rekey');
  const g = { name: 'rekey', distribution_id: hex(dist.id), skdms: [await makeSKDM(dist)], messages: [] };
  for (let i = 0; i < 5; i++) g.messages.push(await encrypt(dist, plaintext(i)));
  senderStore.forget(sender, dist.uuid);
  g.skdms.push(await makeSKDM(dist));
  for (let i = 5; i < 10; i++) g.messages.push(await encrypt(dist, plaintext(i)));
  g.receivers = [
    await receive('bob', [{ process: 0 }, { decrypt: 0 }, { process: 1 }, { decrypt: 6 }, { decrypt: 2 }, { decrypt: 5 }, { decrypt: 1 }, { process: 0 }, { decrypt: 9 }, { decrypt: 3 }], g),
    await receive('dave', [{ process: 0 }, { decrypt: 0 }, { decrypt: 5 }, { decrypt: 7 }, { decrypt: 1 }], g),
  ];
  groups.push(g);
}

// 4. states: six chains for one distribution id; libsignal keeps five.
{
  const dist = newDistribution('states');
  const g = { name: 'states', distribution_id: hex(dist.id), skdms: [], messages: [] };
  for (let k = 0; k < 6; k++) {
    if (k > 0) senderStore.forget(sender, dist.uuid);
    g.skdms.push(await makeSKDM(dist));
    g.messages.push(await encrypt(dist, plaintext(k)));
  }
  const steps = [0, 1, 2, 3, 4, 5].map((k) => ({ process: k }));
  for (const i of [0, 1, 5, 3]) steps.push({ decrypt: i });
  // Re-processing an old chain brings it back and evicts the then-oldest.
  steps.push({ process: 0 }, { decrypt: 0 }, { decrypt: 2 }, { decrypt: 4 });
  g.receivers = [await receive('frank', steps, g)];
  groups.push(g);
}

// 5. limits: a forward jump of 25 000 is accepted, 25 001 refused; of the
// skipped keys the newest 2 000 are kept.
{
  const dist = newDistribution('limits');
  const g = { name: 'limits', distribution_id: hex(dist.id), skdms: [await makeSKDM(dist)], messages: [] };
  const keep = new Set([0, 1, 22999, 23000, 24999, 25000, 25001]);
  const idx = new Map();
  for (let i = 0; i <= 25001; i++) {
    const m = await encrypt(dist, keep.has(i) ? plaintext(i % 9) : u8([i & 255]));
    if (keep.has(i)) { idx.set(i, g.messages.length); g.messages.push(m); }
  }
  const d = (i) => ({ decrypt: idx.get(i) });
  g.receivers = [
    await receive('jump', [{ process: 0 }, d(25000), d(24999), d(23000), d(22999), d(0), d(25001)], g),
    await receive('far', [{ process: 0 }, d(25001), d(1), d(25001), d(0)], g),
  ];
  groups.push(g);
}

// 6. negatives: tampered, truncated, forged and misversioned messages, each
// on a fresh receiver that then decrypts the untouched message.
{
  const dist = newDistribution('negatives');
  const g = { name: 'negatives', distribution_id: hex(dist.id), skdms: [await makeSKDM(dist)], messages: [] };
  for (let i = 0; i < 3; i++) g.messages.push(await encrypt(dist, plaintext(i + 3)));
  const s = g.skdms[0];
  const priv = PrivateKey.deserialize(u8(Buffer.from(s.signing_private, 'hex')));
  const orig = u8(Buffer.from(g.messages[1].wire, 'hex'));
  const flip = (b, i) => { const c = u8(b); c[i] ^= 0x01; return hex(c); };
  const withByte0 = (b, v) => { const c = u8(b); c[0] = v; return hex(c); };
  const ct16 = det(16), ct32 = det(32);
  const forged = (ver, chain, iter, ct, id = dist.uuid) => hex(SenderKeyMessage._new(ver, id, chain, iter, ct, priv).serialize());
  const other = newDistribution('unknown');
  const cases = [
    ['signature_flipped', flip(orig, orig.length - 1)],
    ['signature_first_byte_flipped', flip(orig, orig.length - 64)],
    ['ciphertext_flipped', flip(orig, orig.length - 65)],
    ['chain_id_flipped', flip(orig, 20)],
    ['version_0x43', withByte0(orig, 0x43)],
    ['version_0x23', withByte0(orig, 0x23)],
    ['version_0x34', withByte0(orig, 0x34)],
    ['version_0x32', withByte0(orig, 0x32)],
    ['signed_version_4', forged(4, s.chain_id, 1, ct16)],
    ['signed_version_2', forged(2, s.chain_id, 1, ct16)],
    ['truncated_0', ''],
    ['truncated_1', hex(orig.slice(0, 1))],
    ['truncated_64', hex(orig.slice(0, 64))],
    ['truncated_65', hex(orig.slice(0, 65))],
    ['truncated_by_1', hex(orig.slice(0, orig.length - 1))],
    ['trailing_byte', hex(u8([...orig, 0]))],
    ['too_far_25001', forged(3, s.chain_id, 25001, ct16)],
    ['far_25000_bad_padding', forged(3, s.chain_id, 25000, ct32)],
    ['unknown_chain_id', forged(3, (s.chain_id + 1) >>> 0, 1, ct16)],
    ['unknown_distribution', forged(3, s.chain_id, 1, ct16, other.uuid)],
    ['empty_ciphertext', forged(3, s.chain_id, 1, u8([]))],
    ['ciphertext_15_bytes', forged(3, s.chain_id, 1, ct16.slice(0, 15))],
    ['bad_padding', forged(3, s.chain_id, 1, ct32)],
    ['signed_by_other_key', hex(SenderKeyMessage._new(3, dist.uuid, s.chain_id, 1, ct16, PrivateKey.generate()).serialize())],
  ];
  g.receivers = [];
  for (const [name, wire] of cases) {
    g.receivers.push(await receive(name, [{ process: 0 }, { name, wire }, { decrypt: 1 }, { name: `${name} again`, wire }], g));
  }
  g.receivers.push(await receive('duplicate', [{ process: 0 }, { decrypt: 1 }, { decrypt: 1 }, { decrypt: 0 }, { decrypt: 2 }, { decrypt: 2 }], g));
  groups.push(g);
}

// Distribution messages libsignal parses or refuses.
function pbVarint(n) { const o = []; let x = BigInt(n); do { let b = Number(x & 0x7fn); x >>= 7n; if (x) b |= 0x80; o.push(b); } while (x); return o; }
const pbBytes = (n, b) => [...pbVarint((n << 3) | 2), ...pbVarint(b.length), ...b];
const pbUint = (n, v) => [...pbVarint(n << 3), ...pbVarint(v)];
function skdmWire({ ver = 0x33, id = det(16), chain = 7, iter = 0, ck = det(32), key, omit = [], extra = [] }) {
  const f = [];
  if (!omit.includes(1)) f.push(...pbBytes(1, id));
  if (!omit.includes(2)) f.push(...pbUint(2, chain));
  if (!omit.includes(3)) f.push(...pbUint(3, iter));
  if (!omit.includes(4)) f.push(...pbBytes(4, ck));
  if (!omit.includes(5)) f.push(...pbBytes(5, key));
  return hex(u8([ver, ...f, ...extra]));
}
const goodKey = [...u8(Buffer.from(groups[0].skdms[0].signing_public, 'hex'))];
const skdm0 = u8(Buffer.from(groups[0].skdms[0].wire, 'hex'));
const skdmCases = [
  ['libsignal', hex(skdm0)],
  ['rebuilt', skdmWire({ key: goodKey })],
  ['truncated_64', hex(skdm0.slice(0, 64))],
  ['truncated_by_1', hex(skdm0.slice(0, skdm0.length - 1))],
  ['version_0x23', skdmWire({ ver: 0x23, key: goodKey })],
  ['version_0x43', skdmWire({ ver: 0x43, key: goodKey })],
  ['version_0x34', skdmWire({ ver: 0x34, key: goodKey })],
  ['chain_key_31', skdmWire({ ck: det(31), key: goodKey })],
  ['chain_key_33', skdmWire({ ck: det(33), key: goodKey })],
  ['signing_key_raw_32', skdmWire({ key: goodKey.slice(1), extra: [] })],
  ['signing_key_type_6', skdmWire({ key: [6, ...goodKey.slice(1)] })],
  ['signing_key_34', skdmWire({ key: [...goodKey, 0] })],
  ['distribution_id_15', skdmWire({ id: det(15), key: goodKey })],
  ['missing_distribution_id', skdmWire({ key: goodKey, omit: [1] })],
  ['missing_chain_id', skdmWire({ key: goodKey, omit: [2] })],
  ['missing_iteration', skdmWire({ key: goodKey, omit: [3] })],
  ['missing_chain_key', skdmWire({ key: goodKey, omit: [4] })],
  ['missing_signing_key', skdmWire({ key: goodKey, omit: [5] })],
  ['unknown_field', skdmWire({ key: goodKey, extra: pbUint(6, 1) })],
  ['repeated_chain_id', skdmWire({ key: goodKey, extra: pbUint(2, 9) })],
  ['iteration_max', skdmWire({ key: goodKey, iter: 0xffffffff })],
];
const skdmVerdicts = skdmCases.map(([name, wire]) => {
  try {
    const m = SenderKeyDistributionMessage.deserialize(u8(Buffer.from(wire, 'hex')));
    return { name, wire, ok: true, chain_id: m.chainId(), iteration: m.iteration(), reencoded: hex(m.serialize()) };
  } catch (e) { return { name, wire, ok: false, error: errorOf(e) }; }
});

process.stdout.write(JSON.stringify({
  libsignal_client: JSON.parse((await import('node:fs')).readFileSync(new URL('./node_modules/@signalapp/libsignal-client/package.json', import.meta.url))).version,
  sender: 'alice.1',
  groups,
  distribution_negatives: skdmVerdicts,
}, null, 1) + '\n');
