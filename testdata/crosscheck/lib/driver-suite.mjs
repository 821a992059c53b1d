// A conformance suite for any driver of PROTOCOL.md section 9: every
// operation, every optional field and every error kind, with expected
// answers that are either fixed (Appendix A, libsignal's known answer,
// error kinds) or computed by this JavaScript implementation in-process
// (which makes the suite a differential test when the driver is another
// implementation).
//
// runDriverSuite(call) takes `call: async (request) => answer` and returns
// one result per check: {name, pass, request, got, want}. With
// {sessions: false} it stops before the session layer, for a driver that
// does not have session_initiate and session_respond yet.

import { concat, h, hex, u32be, unhex } from './bytes.mjs';
import { appendixA as A, libsignalKat, smallOrderU, uP, uPminus1 } from './fixtures.mjs';
import { ProtocolError } from './errors.mjs';
import { KeyPair } from './keys.mjs';
import { RatchetSession } from './ratchet.mjs';
import { Initiator } from './session.mjs';
import * as x3dh from './x3dh.mjs';
import * as xeddsa from './xeddsa.mjs';
import { Q } from './xeddsa.mjs';
import { le32, intLE } from './bytes.mjs';

const err = (kind) => ({ error: kind });
const enc05 = (u) => concat(Uint8Array.of(0x05), u);
const flip = (b, bit) => {
  const c = Uint8Array.from(b);
  c[bit >> 3] ^= 1 << (bit & 7);
  return c;
};
const Z0 = new Uint8Array(64);
// The message bytes of an encrypt answer; zero bytes when the driver
// answered anything else, so that one wrong answer fails its own checks
// instead of stopping the suite.
const msgOf = (g) => (g && typeof g.msg === 'string' && unhex(g.msg)) || new Uint8Array(0);

function sameJSON(a, b) {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}
function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
  return v;
}

export async function runDriverSuite(call, { sessions = true } = {}) {
  const results = [];
  async function check(name, request, want) {
    const got = await call(request);
    const pass = typeof want === 'function' ? Boolean(want(got)) : sameJSON(got, want);
    results.push({ name, pass, request, got, want: typeof want === 'function' ? want.toString() : want });
    return got;
  }

  // ---------------------------------------------------------------- framing
  await check('framing: not JSON', 'this is not json', err('malformed'));
  await check('framing: JSON array', '[1,2]', err('malformed'));
  await check('framing: unknown op', { op: 'launch_rockets' }, err('malformed'));
  await check('framing: op missing', { id: 'x' }, err('malformed'));
  await check('framing: uppercase hex', { op: 'xeddsa_sign', priv: hex(A.ikB).toUpperCase(), msg: '', z: hex(Z0) }, err('malformed'));
  await check('framing: odd-length hex', { op: 'encrypt', id: 'nobody', pt: 'abc' }, err('malformed'));
  await check('framing: unknown id (encrypt)', { op: 'encrypt', id: 'nobody', pt: '00' }, err('unknown_session'));
  await check('framing: unknown id (decrypt)', { op: 'decrypt', id: 'nobody', msg: '' }, err('unknown_session'));

  // ----------------------------------------------------------------- XEdDSA
  const ikB = new KeyPair(A.ikB);
  const spkB = new KeyPair(A.spkB);
  const spkSig = xeddsa.sign(A.ikB, spkB.pub.encoded, Z0);
  await check('xeddsa_sign: fixed Z', { op: 'xeddsa_sign', priv: hex(A.ikB), msg: hex(spkB.pub.encoded), z: hex(Z0) }, { sig: hex(spkSig) });
  const z1 = h('11'.repeat(64));
  const msgAbc = h('616263');
  await check('xeddsa_sign: other Z', { op: 'xeddsa_sign', priv: hex(A.ikA), msg: '616263', z: hex(z1) }, { sig: hex(xeddsa.sign(A.ikA, msgAbc, z1)) });
  await check('xeddsa_sign: z of 63 bytes', { op: 'xeddsa_sign', priv: hex(A.ikA), msg: '', z: '00'.repeat(63) }, err('malformed'));
  await check('xeddsa_sign: priv of 31 bytes', { op: 'xeddsa_sign', priv: '00'.repeat(31), msg: '', z: hex(Z0) }, err('bad_key'));
  await check('xeddsa_sign: msg missing', { op: 'xeddsa_sign', priv: hex(A.ikA), z: hex(Z0) }, err('malformed'));

  const ver = (pub, msg, sig) => ({ op: 'xeddsa_verify', pub: hex(pub), msg: hex(msg), sig: hex(sig) });
  const K = libsignalKat;
  await check('xeddsa_verify: libsignal known answer (sign bit 1)', ver(enc05(K.pub), K.msg, K.sig), { ok: true });
  await check('xeddsa_verify: libsignal KAT, sign bit flipped', ver(enc05(K.pub), K.msg, flip(K.sig, 511)), { ok: false });
  await check('xeddsa_verify: libsignal KAT, R bit flipped', ver(enc05(K.pub), K.msg, flip(K.sig, 0)), { ok: false });
  await check('xeddsa_verify: libsignal KAT, message bit flipped', ver(enc05(K.pub), flip(K.msg, 9), K.sig), { ok: false });
  await check('xeddsa_verify: spec signature', ver(ikB.pub.encoded, spkB.pub.encoded, spkSig), { ok: true });
  const libStyle = xeddsa.signLibsignalStyle(A.ikB, spkB.pub.encoded, Z0);
  await check('xeddsa_verify: libsignal-style signature', ver(ikB.pub.encoded, spkB.pub.encoded, libStyle), { ok: true });
  const sPlusQ = concat(spkSig.subarray(0, 32), le32(intLE(spkSig.subarray(32)) + Q));
  await check('xeddsa_verify: s + q rejected', ver(ikB.pub.encoded, spkB.pub.encoded, sPlusQ), { ok: false });
  await check('xeddsa_verify: s = q rejected', ver(ikB.pub.encoded, spkB.pub.encoded, concat(spkSig.subarray(0, 32), le32(Q))), { ok: false });
  await check('xeddsa_verify: 63-byte signature', ver(ikB.pub.encoded, spkB.pub.encoded, spkSig.subarray(0, 63)), { ok: false });
  await check('xeddsa_verify: 32-byte key', ver(ikB.pub.u, spkB.pub.encoded, spkSig), { ok: false });
  await check('xeddsa_verify: key type 0x06', ver(concat(Uint8Array.of(6), ikB.pub.u), spkB.pub.encoded, spkSig), { ok: false });
  await check('xeddsa_verify: key bit 255 set', ver(flip(ikB.pub.encoded, 263), spkB.pub.encoded, spkSig), { ok: false });
  await check('xeddsa_verify: u = p', ver(enc05(uP), msgAbc, spkSig), { ok: false });
  await check('xeddsa_verify: u = p - 1', ver(enc05(uPminus1), msgAbc, spkSig), { ok: false });
  for (const [i, u] of smallOrderU.entries()) {
    await check(`xeddsa_verify: small-order key #${i}`, ver(enc05(u), msgAbc, spkSig), { ok: false });
  }
  await check('xeddsa_verify: twist point u = 2', ver(enc05(le32(2n)), msgAbc, spkSig), { ok: false });
  await check('xeddsa_verify: fields missing', { op: 'xeddsa_verify' }, { ok: false });
  await check('xeddsa_verify: non-hex', { op: 'xeddsa_verify', pub: 'zz', msg: '', sig: '' }, { ok: false });

  // ------------------------------------------------------------------- X3DH
  const opkB = new KeyPair(A.opkB);
  const bundle = {
    ik: hex(ikB.pub.encoded),
    spk: hex(spkB.pub.encoded),
    spk_id: A.spkId,
    spk_sig: hex(spkSig),
    opk: hex(opkB.pub.encoded),
    opk_id: A.opkId,
  };
  const ad = hex(concat(A.encoded.ikA, A.encoded.ikB));
  const init = (b, extra = {}) => ({ op: 'x3dh_initiate', ik_priv: hex(A.ikA), ek_priv: hex(A.ekA), bundle: b, ...extra });
  await check('x3dh_initiate: Appendix A', init(bundle), { sk: hex(A.sk), ad });
  const noOpk = { ...bundle, opk: null, opk_id: null };
  const noOpkSk = x3dh.initiate({ ikPriv: A.ikA, ekPriv: A.ekA, bundle: { ik: ikB.pub.encoded, spk: spkB.pub.encoded, spkSig } }).sk;
  await check('x3dh_initiate: without one-time prekey', init(noOpk), { sk: hex(noOpkSk), ad });
  const { opk: _o, opk_id: _i, ...absentOpk } = bundle;
  await check('x3dh_initiate: opk fields absent', init(absentOpk), { sk: hex(noOpkSk), ad });
  const customSk = (info) =>
    hex(x3dh.initiate({ ikPriv: A.ikA, ekPriv: A.ekA, info, bundle: { ik: ikB.pub.encoded, spk: spkB.pub.encoded, spkSig, opk: opkB.pub.encoded } }).sk);
  await check('x3dh_initiate: custom info', init(bundle, { info: '6d79617070' }), { sk: customSk(h('6d79617070')), ad });
  await check('x3dh_initiate: empty info is the default', init(bundle, { info: '' }), { sk: hex(A.sk), ad });
  await check('x3dh_initiate: libsignal-style spk_sig', init({ ...bundle, spk_sig: hex(libStyle) }), { sk: hex(A.sk), ad });
  await check('x3dh_initiate: bad signature', init({ ...bundle, spk_sig: hex(flip(spkSig, 100)) }), err('invalid_signature'));
  await check('x3dh_initiate: signature of 65 bytes', init({ ...bundle, spk_sig: hex(spkSig) + '00' }), err('invalid_signature'));
  await check('x3dh_initiate: undecodable ik before bad signature', init({ ...bundle, ik: '06' + bundle.ik.slice(2), spk_sig: '00' }), err('bad_key'));
  await check('x3dh_initiate: spk with bit 255 set', init({ ...bundle, spk: hex(flip(spkB.pub.encoded, 263)) }), err('bad_key'));
  await check('x3dh_initiate: opk of 32 bytes', init({ ...bundle, opk: hex(opkB.pub.u) }), err('bad_key'));
  await check('x3dh_initiate: ik_priv of 33 bytes', { ...init(bundle), ik_priv: hex(A.ikA) + '00' }, err('bad_key'));
  await check('x3dh_initiate: opk without opk_id', init({ ...bundle, opk_id: null }), err('malformed'));
  await check('x3dh_initiate: spk_id out of range', init({ ...bundle, spk_id: 2 ** 32 }), err('malformed'));
  await check('x3dh_initiate: spk_id not an integer', init({ ...bundle, spk_id: '1' }), err('malformed'));
  const zeroSpk = enc05(smallOrderU[0]);
  const zeroSpkSig = xeddsa.sign(A.ikB, zeroSpk, Z0);
  await check('x3dh_initiate: small-order spk, valid signature', init({ ...bundle, spk: hex(zeroSpk), spk_sig: hex(zeroSpkSig) }), err('bad_key'));
  await check('x3dh_initiate: small-order opk', init({ ...bundle, opk: hex(enc05(smallOrderU[2])) }), err('bad_key'));
  await check('x3dh_initiate: small-order ik (before the signature)', init({ ...bundle, ik: hex(enc05(smallOrderU[1])) }), err('bad_key'));
  await check('x3dh_initiate: ik u = p - 1 and a bad signature', init({ ...bundle, ik: hex(enc05(uPminus1)), spk_sig: '00' }), err('bad_key'));

  const resp = (extra = {}) => ({
    op: 'x3dh_respond',
    ik_priv: hex(A.ikB),
    spk_priv: hex(A.spkB),
    opk_priv: hex(A.opkB),
    peer_ik: hex(A.encoded.ikA),
    peer_ek: hex(A.encoded.ekA),
    ...extra,
  });
  await check('x3dh_respond: Appendix A', resp(), { sk: hex(A.sk), ad });
  await check('x3dh_respond: without one-time prekey', resp({ opk_priv: null }), { sk: hex(noOpkSk), ad });
  await check('x3dh_respond: custom info', resp({ info: '6d79617070' }), { sk: customSk(h('6d79617070')), ad });
  await check('x3dh_respond: small-order peer_ek', resp({ peer_ek: hex(enc05(smallOrderU[3])) }), err('bad_key'));
  await check('x3dh_respond: undecodable peer_ik', resp({ peer_ik: hex(enc05(uP)) }), err('bad_key'));
  await check('x3dh_respond: spk_priv of 31 bytes', resp({ spk_priv: '00'.repeat(31) }), err('bad_key'));
  await check('x3dh_respond: peer_ek missing', resp({ peer_ek: undefined }), err('malformed'));

  // -------------------------------------------------------- bare ratchet
  const initAlice = (id, extra = {}) => ({
    op: 'ratchet_init_alice', id, sk: hex(A.sk), ad, peer_dh: hex(A.encoded.spkB), dh_priv: hex(A.dhsA), ...extra,
  });
  const initBob = (id, extra = {}) => ({ op: 'ratchet_init_bob', id, sk: hex(A.sk), ad, dh_priv: hex(A.spkB), ...extra });
  const enc = (id, pt) => ({ op: 'encrypt', id, pt: hex(pt) });
  const dec = (id, msg, dhPriv) => ({ op: 'decrypt', id, msg: hex(msg), ...(dhPriv ? { dh_priv: hex(dhPriv) } : {}) });

  await check('ratchet_init_alice', initAlice('ra'), {});
  await check('ratchet_init_bob', initBob('rb'), {});
  await check('encrypt: Bob before any message', enc('rb', A.plaintext2), err('no_session'));
  await check('encrypt: Appendix A message', enc('ra', A.plaintext1), { msg: hex(A.message1) });
  await check('decrypt: empty', dec('rb', new Uint8Array(0)), err('malformed'));
  await check('decrypt: prekey message to a bare session', dec('rb', A.prekeyMessage1), err('unknown_type'));
  await check('decrypt: lone 0x02 (too short wins over the type)', dec('rb', Uint8Array.of(2)), err('malformed'));
  await check('decrypt: 58 bytes of type 0x02', dec('rb', concat(Uint8Array.of(2), A.message1.subarray(1))), err('unknown_type'));
  await check('decrypt: type 0x07', dec('rb', concat(Uint8Array.of(7), A.message1.subarray(1))), err('unknown_type'));
  await check('decrypt: 57 bytes', dec('rb', A.message1.subarray(0, 57)), err('malformed'));
  await check('decrypt: header key type 0x06', dec('rb', concat(Uint8Array.of(1, 6), A.message1.subarray(2))), err('bad_key'));
  const nMax = Uint8Array.from(A.message1);
  nMax.set(u32be(0xffffffff), 38);
  await check('decrypt: N = 2^32 - 1', dec('rb', nMax), err('counter_overflow'));
  const pnMax = Uint8Array.from(A.message1);
  pnMax.set(u32be(0xffffffff), 34);
  await check('decrypt: PN = 2^32 - 1', dec('rb', pnMax), err('counter_overflow'));
  const farN = Uint8Array.from(A.message1);
  farN.set(u32be(1001), 38);
  await check('decrypt: new key, N = 1001 > max_skip', dec('rb', farN), err('too_many_skipped'));
  const smallKeyFar = concat(Uint8Array.of(1), enc05(smallOrderU[3]), u32be(0), u32be(1001), new Uint8Array(16));
  await check('decrypt: small-order key with N > max_skip (limits before DH)', dec('rb', smallKeyFar), err('too_many_skipped'));
  await check('decrypt: small-order key within limits', dec('rb', concat(Uint8Array.of(1), enc05(smallOrderU[3]), u32be(0), u32be(0), new Uint8Array(16))), err('bad_key'));
  await check('decrypt: tampered ciphertext', dec('rb', flip(A.message1, 8 * 50)), err('auth_failed'));
  await check('decrypt: tampered header PN', dec('rb', flip(A.message1, 8 * 37)), err('auth_failed'));
  await check('decrypt: bad dh_priv length', dec('rb', A.message1, new Uint8Array(31)), err('bad_key'));
  await check('decrypt: Appendix A message', dec('rb', A.message1, A.dhsB), { pt: hex(A.plaintext1) });
  await check('decrypt: the same message again', dec('rb', A.message1, A.dhsB), err('duplicate'));
  await check('encrypt: Appendix A reply', enc('rb', A.plaintext2), { msg: hex(A.reply) });
  const fakeSpk = concat(Uint8Array.of(1), A.encoded.spkB, u32be(5000), u32be(5000), new Uint8Array(16));
  await check('decrypt: Alice, header key = SPK_B before any receiving chain', dec('ra', fakeSpk), err('auth_failed'));
  await check('decrypt: reply at Alice', dec('ra', A.reply, h('42'.repeat(32))), { pt: hex(A.plaintext2) });

  await check('ratchet_init_bob: sk of 31 bytes', initBob('bad', { sk: hex(A.sk.subarray(1)) }), err('malformed'));
  await check('ratchet_init_bob: dh_priv missing', initBob('bad', { dh_priv: undefined }), err('malformed'));
  await check('ratchet_init_alice: small-order peer_dh', initAlice('bad', { peer_dh: hex(enc05(smallOrderU[1])) }), err('bad_key'));
  await check('ratchet_init_alice: undecodable peer_dh', initAlice('bad', { peer_dh: hex(A.encoded.spkB.subarray(1)) }), err('bad_key'));
  await check('ratchet_init_alice: max_skip negative', initAlice('bad', { max_skip: -1 }), err('malformed'));
  await check('ratchet_init_alice: max_skip fractional', initAlice('bad', { max_skip: 1.5 }), err('malformed'));
  await check('failed init leaves no session', enc('bad', A.plaintext1), err('unknown_session'));

  // Skipping limits with max_skip = 2, max_skipped_keys = 3, computed locally.
  const la = RatchetSession.initAlice({ sk: A.sk, ad: h(ad), peerDh: A.encoded.spkB, dhPriv: A.dhsA });
  await check('ratchet_init_alice: limits (sender)', initAlice('la'), {});
  await check('ratchet_init_bob: limits', initBob('lb', { max_skip: 2, max_skipped_keys: 3 }), {});
  const sent = [];
  for (let i = 0; i < 8; i++) {
    const pt = Uint8Array.of(i);
    sent.push(await check(`limits: encrypt #${i}`, enc('la', pt), { msg: hex(la.encrypt(pt)) }));
  }
  const m = (i) => msgOf(sent[i]);
  await check('limits: N = 3 with Nr = 0 and max_skip 2', dec('lb', m(3), A.dhsB), err('too_many_skipped'));
  await check('limits: N = 2 skips 0, 1', dec('lb', m(2), A.dhsB), { pt: '02' });
  await check('limits: N = 5 skips 3, 4 (4 stored keys > 3: key 0 evicted)', dec('lb', m(5)), { pt: '05' });
  await check('limits: evicted key 0 is a duplicate', dec('lb', m(0)), err('duplicate'));
  await check('limits: stored key 1', dec('lb', m(1)), { pt: '01' });
  await check('limits: stored key 1 again', dec('lb', m(1)), err('duplicate'));
  await check('limits: stored key 4', dec('lb', m(4)), { pt: '04' });
  await check('limits: N = 7 within max_skip of Nr = 6', dec('lb', m(7)), { pt: '07' });
  await check('limits: stored key 3', dec('lb', m(3)), { pt: '03' });
  await check('limits: stored key 6', dec('lb', m(6)), { pt: '06' });

  // A peer that reuses a ratchet key (PROTOCOL.md 5.7): Alice's dh_priv
  // takes her back to her first ratchet key, so (key, N) repeats in Bob's
  // skipped keys. The repeated entry replaces the old one and becomes the
  // newest; with max_skipped_keys 5 the next eviction shows the order.
  // Expected answers come from this implementation, step by step.
  const ra = RatchetSession.initAlice({ sk: A.sk, ad: h(ad), peerDh: A.encoded.spkB, dhPriv: A.dhsA });
  const rb = RatchetSession.initBob({ sk: A.sk, ad: h(ad), dhPriv: A.spkB, maxSkippedKeys: 5 });
  await check('reuse: init alice', initAlice('ua'), {});
  await check('reuse: init bob', initBob('ub', { max_skipped_keys: 5 }), {});
  const local = (fn) => {
    try {
      return fn();
    } catch (e) {
      if (e instanceof ProtocolError) return { error: e.kind };
      throw e;
    }
  };
  const rsend = async (who, pt) => {
    const want = local(() => ({ msg: hex((who === 'ua' ? ra : rb).encrypt(pt)) }));
    await check(`reuse: ${who} encrypts ${hex(pt)}`, enc(who, pt), want);
    return want.msg ? h(want.msg) : new Uint8Array(0);
  };
  const rrecv = async (who, name, msg, dhPriv, expect) => {
    const want = local(() => ({ pt: hex((who === 'ua' ? ra : rb).decrypt(msg, { dhPriv })) }));
    if (expect !== undefined && !sameJSON(want, expect)) throw new Error(`driver suite: reuse: ${name}: reference answers ${JSON.stringify(want)}`);
    await check(`reuse: ${name}`, dec(who, msg, dhPriv), want);
  };
  const first = [];
  for (let i = 0; i < 4; i++) first.push(await rsend('ua', Uint8Array.of(i))); // chain of A0
  await rrecv('ub', 'A0 #3 stores (A0, 0..2)', first[3], A.dhsB, { pt: '03' });
  await rrecv('ua', 'Alice moves to k1', await rsend('ub', h('b1')), h('81'.repeat(32)), { pt: 'b1' });
  const onK1 = [await rsend('ua', h('c0')), await rsend('ua', h('c1'))];
  await rrecv('ub', 'k1 #1 stores (k1, 0)', onK1[1], h('82'.repeat(32)), { pt: 'c1' });
  await rrecv('ua', 'Alice back to the key of A0', await rsend('ub', h('b2')), A.dhsA, { pt: 'b2' });
  const again = [];
  for (let i = 0; i < 7; i++) again.push(await rsend('ua', Uint8Array.of(0x10 + i)));
  // (A0, 4) is not stored: a new-key step that stores (A0, 0..3), three of
  // them over the first chain's entries. Order: (k1,0), (A0,0..3).
  await rrecv('ub', 'A0 again #4: repeated indexes', again[4], h('83'.repeat(32)), { pt: '14' });
  await rrecv('ub', 'A0 again #6: stores (A0, 5), evicts (k1, 0)', again[6], undefined, { pt: '16' });
  await rrecv('ub', 'the evicted (k1, 0)', onK1[0], undefined, { error: 'auth_failed' });
  await rrecv('ub', 'first A0 #0: its key was replaced', first[0], undefined, { error: 'auth_failed' });
  for (const i of [0, 1, 2, 3, 5]) await rrecv('ub', `A0 again #${i}`, again[i], undefined, { pt: hex(Uint8Array.of(0x10 + i)) });

  // ------------------------------------------------------- session layer
  if (!sessions) return results;
  const respond = (id, extra = {}) => ({
    op: 'session_respond', id, ik_priv: hex(A.ikB), spk: { id: A.spkId, priv: hex(A.spkB) }, opks: [{ id: A.opkId, priv: hex(A.opkB) }], ...extra,
  });
  const initiate = (id, extra = {}) => ({
    op: 'session_initiate', id, ik_priv: hex(A.ikA), ek_priv: hex(A.ekA), dh_priv: hex(A.dhsA), bundle, ...extra,
  });
  await check('session_respond', respond('bob'), {});
  await check('session_initiate', initiate('alice'), {});
  await check('session: responder encrypts before any session', enc('bob', A.plaintext2), err('no_session'));
  await check('session: responder gets a ratchet message first', dec('bob', A.message1), err('no_session'));
  await check('session: responder, truncated ratchet message first', dec('bob', A.message1.subarray(0, 20)), err('malformed'));
  await check('session: first message is the Appendix A prekey message', enc('alice', A.plaintext1), { msg: hex(A.prekeyMessage1) });
  const pk = A.prekeyMessage1;
  await check('session: flags 0x02', dec('bob', concat(pk.subarray(0, 1), Uint8Array.of(2), pk.subarray(2))), err('malformed'));
  await check('session: prekey message of 133 bytes', dec('bob', pk.subarray(0, 133)), err('malformed'));
  await check('session: inner type 0x02', dec('bob', concat(pk.subarray(0, 76), Uint8Array.of(2), pk.subarray(77))), err('malformed'));
  await check('session: IK_A type byte 0x06', dec('bob', concat(pk.subarray(0, 2), Uint8Array.of(6), pk.subarray(3))), err('bad_key'));
  const wrongSpk = Uint8Array.from(pk);
  wrongSpk.set(u32be(2), 68);
  await check('session: unknown spk_id', dec('bob', wrongSpk), err('unknown_prekey'));
  const wrongOpk = Uint8Array.from(pk);
  wrongOpk.set(u32be(8), 72);
  await check('session: unknown opk_id', dec('bob', wrongOpk), err('unknown_prekey'));
  await check('session: tampered prekey message', dec('bob', flip(pk, 8 * 130), A.dhsB), err('auth_failed'));
  await check('session: initiator given a prekey message', dec('alice', pk), err('no_session'));
  await check('session: genuine prekey message (one-time prekey not consumed by the failure)', dec('bob', pk, A.dhsB), { pt: hex(A.plaintext1) });
  await check('session: the same prekey message again', dec('bob', pk, A.dhsB), err('duplicate'));
  await check('session: same EK_A, different spk_id', dec('bob', wrongSpk), err('malformed'));
  await check('session: responder reply', enc('bob', A.plaintext2), { msg: hex(A.reply) });
  await check('session: second prekey message before the reply', enc('alice', h('02')), (g) => typeof g.msg === 'string' && g.msg.startsWith('0201'));
  const second = await call(enc('alice', h('03')));
  await check('session: initiator decrypts the reply', dec('alice', A.reply, h('43'.repeat(32))), { pt: hex(A.plaintext2) });
  await check('session: initiator now sends ratchet messages', enc('alice', h('04')), (g) => typeof g.msg === 'string' && g.msg.startsWith('01'));
  await check('session: a late prekey message still decrypts', dec('bob', msgOf(second)), { pt: '03' });

  // Another initiator with a different identity key: refused after TOFU.
  const other = Initiator.create({
    ikPriv: h('99'.repeat(32)), ekPriv: h('98'.repeat(32)), dhPriv: h('97'.repeat(32)),
    bundle: { ik: ikB.pub.encoded, spk: spkB.pub.encoded, spkId: A.spkId, spkSig },
  });
  await check('session: new identity key is untrusted', dec('bob', other.encrypt(h('05'))), err('untrusted_identity'));

  // Two sessions from the same identity: the older one keeps working.
  await check('session_respond: second responder', respond('bob2', { opks: [] }), {});
  const a1 = Initiator.create({ ikPriv: A.ikA, ekPriv: h('21'.repeat(32)), dhPriv: h('22'.repeat(32)), bundle: { ik: ikB.pub.encoded, spk: spkB.pub.encoded, spkId: A.spkId, spkSig } });
  const a2 = Initiator.create({ ikPriv: A.ikA, ekPriv: h('23'.repeat(32)), dhPriv: h('24'.repeat(32)), bundle: { ik: ikB.pub.encoded, spk: spkB.pub.encoded, spkId: A.spkId, spkSig } });
  await check('sessions: first session', dec('bob2', a1.encrypt(h('a1')), h('31'.repeat(32))), { pt: 'a1' });
  await check('sessions: second session (current)', dec('bob2', a2.encrypt(h('a2')), h('32'.repeat(32))), { pt: 'a2' });
  const replyTo2 = await check('sessions: reply uses the newest session', enc('bob2', h('b2')), (g) => typeof g.msg === 'string');
  let a2pt = null;
  try {
    a2pt = hex(a2.decrypt(msgOf(replyTo2), { dhPriv: h('33'.repeat(32)) }));
  } catch {
    a2pt = null;
  }
  results.push({ name: 'sessions: the newest session replied', pass: a2pt === 'b2', got: a2pt, want: 'b2' });
  await check('sessions: ratchet message from the older session', dec('bob2', a1.ratchet.encrypt(h('a3'))), { pt: 'a3' });
  const replyTo1 = await check('sessions: the older session was promoted', enc('bob2', h('b3')), (g) => typeof g.msg === 'string');
  let promoted = false;
  try {
    promoted = hex(a1.decrypt(msgOf(replyTo1), { dhPriv: h('34'.repeat(32)) })) === 'b3';
  } catch {
    promoted = false;
  }
  results.push({ name: 'sessions: the promoted session replied', pass: promoted, got: promoted, want: true });
  await check('sessions: unknown message fails with the current session\'s error', dec('bob2', flip(a1.ratchet.encrypt(h('a4')), 8 * 45)), err('auth_failed'));

  await check('session_respond: duplicate one-time prekey ids', respond('bad2', { opks: [{ id: 1, priv: hex(A.opkB) }, { id: 1, priv: hex(A.spkB) }] }), err('malformed'));
  await check('session_respond: spk missing', respond('bad2', { spk: undefined }), err('malformed'));
  await check('session_initiate: bad signature', initiate('bad2', { bundle: { ...bundle, spk_sig: hex(flip(spkSig, 3)) } }), err('invalid_signature'));
  await check('session_initiate: ek_priv of 31 bytes', initiate('bad2', { ek_priv: '00'.repeat(31) }), err('bad_key'));
  await check('session_initiate: without injected keys', initiate('rand', { ek_priv: undefined, dh_priv: null }), {});
  await check('session_initiate: random keys still make prekey messages', enc('rand', h('00')), (g) => typeof g.msg === 'string' && g.msg.startsWith('0201'));
  return results;
}
