// bench.mjs measures libsignal itself (@signalapp/libsignal-client, pinned
// in package-lock.json) on the three Signal cases that session's
// benchmarks measure, and prints Go benchmark lines that benchstat reads
// beside them:
//
//   cd testdata/libsignal && npm ci && node bench.mjs [-count 8] [-benchtime 1]
//
// The names are session's with impl=libsignal (BenchmarkSignalSteady/
// impl=libsignal-2), so that `benchstat -col /impl -ignore pkg` puts
// libsignal in a column beside impl=session and impl=floor. The cases:
//
//   - Setup: Bob's bundle built from its bytes (PreKeyBundle.new with the
//     keys deserialized), processPreKeyBundle, signalEncrypt of 1 KiB, and
//     Bob's signalDecryptPreKey of the serialized PreKeySignalMessage, with
//     a one-time EC and a one-time Kyber prekey; a new Alice and new
//     prekeys each time, made outside the timed part.
//   - Steady: one 1 KiB message on an established chain: signalEncrypt,
//     serialize, deserialize, signalDecrypt.
//   - PingPong: the same with the parties taking turns, so that every
//     message is a DH ratchet step.
//
// The stores are in memory and as cheap as JavaScript allows: they keep
// libsignal's record objects, not serialized bytes (session's memory
// store keeps its records decoded too). ns/op is wall-clock time
// (process.hrtime.bigint) of the timed part only; cpu-ns/op is the
// process's CPU time (process.cpuUsage: every thread, so libsignal's own
// threads and the garbage collector's too) over the same timed part.
// Each repetition runs until it has taken -benchtime seconds, as Go's do.

import {
  IdentityKeyPair, PrivateKey, PublicKey, KEMKeyPair, KEMPublicKey,
  PreKeyRecord, SignedPreKeyRecord, KyberPreKeyRecord, PreKeyBundle,
  ProtocolAddress, SignalMessage, PreKeySignalMessage,
  processPreKeyBundle, signalEncrypt, signalDecrypt, signalDecryptPreKey,
  SessionStore, IdentityKeyStore, PreKeyStore, SignedPreKeyStore, KyberPreKeyStore,
  IdentityChange, NOW,
} from './lib.mjs';
import { createRequire } from 'node:module';
import os from 'node:os';

const args = process.argv.slice(2);
const flag = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const count = flag('-count', 1);
const benchtime = flag('-benchtime', 1) * 1e9;
const only = args.includes('-bench') ? new RegExp(args[args.indexOf('-bench') + 1]) : /./;

// A party with in-memory stores holding libsignal's objects.
class Party {
  constructor(name, regId) {
    this.address = ProtocolAddress.new(name, 1);
    this.identity = IdentityKeyPair.generate();
    const sessions = new Map(), identities = new Map();
    this.prekeys = new Map(); this.signed = new Map(); this.kyber = new Map();
    const self = this;
    this.sessionStore = new (class extends SessionStore {
      async saveSession(a, r) { sessions.set(a.toString(), r); }
      async getSession(a) { return sessions.get(a.toString()) ?? null; }
      async getExistingSessions(as) { return as.map((a) => sessions.get(a.toString())); }
    })();
    this.identityStore = new (class extends IdentityKeyStore {
      async getIdentityKey() { return self.identity.privateKey; }
      async getLocalRegistrationId() { return regId; }
      async saveIdentity(a, k) { identities.set(a.toString(), k); return IdentityChange.NewOrUnchanged; }
      async isTrustedIdentity(a, k) { const old = identities.get(a.toString()); return !old || old.equals(k); }
      async getIdentity(a) { return identities.get(a.toString()) ?? null; }
    })();
    this.preKeyStore = new (class extends PreKeyStore {
      async savePreKey(id, r) { self.prekeys.set(id, r); }
      async getPreKey(id) { return self.prekeys.get(id); }
      async removePreKey(id) { self.prekeys.delete(id); }
    })();
    this.signedStore = new (class extends SignedPreKeyStore {
      async saveSignedPreKey(id, r) { self.signed.set(id, r); }
      async getSignedPreKey(id) { return self.signed.get(id); }
    })();
    this.kyberStore = new (class extends KyberPreKeyStore {
      async saveKyberPreKey(id, r) { self.kyber.set(id, r); }
      async getKyberPreKey(id) { return self.kyber.get(id); }
      async markKyberPreKeyUsed() {}
    })();
  }
}

const pt = new Uint8Array(1024);
const TYPE_PREKEY = 3;

async function send(from, to, msg) {
  const ct = await signalEncrypt(msg, to.address, from.address, from.sessionStore, from.identityStore, NOW);
  return { type: ct.type(), wire: ct.serialize() };
}

async function receive(to, from, m) {
  if (m.type === TYPE_PREKEY) {
    return signalDecryptPreKey(PreKeySignalMessage.deserialize(m.wire), from.address, to.address,
      to.sessionStore, to.identityStore, to.preKeyStore, to.signedStore, to.kyberStore);
  }
  return signalDecrypt(SignalMessage.deserialize(m.wire), from.address, to.address, to.sessionStore, to.identityStore);
}

// Bob: a signed prekey once, and per setup a one-time EC and a one-time
// Kyber prekey, handed out as bytes.
function newBob() {
  const bob = new Party('bob', 2);
  const spk = PrivateKey.generate();
  const spkSig = bob.identity.privateKey.sign(spk.getPublicKey().serialize());
  bob.signed.set(1, SignedPreKeyRecord.new(1, NOW.getTime(), spk.getPublicKey(), spk, spkSig));
  let next = 10;
  bob.bundleBytes = () => {
    const id = next++;
    const opk = PrivateKey.generate();
    bob.prekeys.set(id, PreKeyRecord.new(id, opk.getPublicKey(), opk));
    const kp = KEMKeyPair.generate();
    const kpub = kp.getPublicKey().serialize();
    const ksig = bob.identity.privateKey.sign(kpub);
    bob.kyber.set(id, KyberPreKeyRecord.new(id, NOW.getTime(), kp, ksig));
    return {
      id, ik: bob.identity.publicKey.serialize(), spk: spk.getPublicKey().serialize(), spkSig,
      opk: opk.getPublicKey().serialize(), kpk: kpub, ksig,
    };
  };
  return bob;
}

function bundleOf(b) {
  return PreKeyBundle.new(2, 1, b.id, PublicKey.deserialize(b.opk), 1, PublicKey.deserialize(b.spk), b.spkSig,
    PublicKey.deserialize(b.ik), b.id, KEMPublicKey.deserialize(b.kpk), b.ksig);
}

// established returns two parties whose session has been answered.
async function established() {
  const alice = new Party('alice', 1), bob = newBob();
  await processPreKeyBundle(bundleOf(bob.bundleBytes()), bob.address, alice.address, alice.sessionStore, alice.identityStore, NOW);
  await receive(bob, alice, await send(alice, bob, pt));
  await receive(alice, bob, await send(bob, alice, pt));
  return { alice, bob };
}

// Each case returns { prepare, run }: prepare is untimed.
const cases = {
  async BenchmarkSignalSetup() {
    const bob = newBob();
    let alice, b, n = 0;
    return {
      prepare() { alice = new Party(`alice${n++}`, 1); b = bob.bundleBytes(); },
      async run() {
        await processPreKeyBundle(bundleOf(b), bob.address, alice.address, alice.sessionStore, alice.identityStore, NOW);
        const m = await send(alice, bob, pt);
        if (m.type !== TYPE_PREKEY) throw new Error('not a PreKeySignalMessage');
        await receive(bob, alice, m);
      },
    };
  },
  async BenchmarkSignalSteady() {
    const { alice, bob } = await established();
    return { async run() { await receive(bob, alice, await send(alice, bob, pt)); } };
  },
  async BenchmarkSignalPingPong() {
    let { alice: from, bob: to } = await established();
    [from, to] = [to, from];
    return {
      async run() {
        await receive(to, from, await send(from, to, pt));
        [from, to] = [to, from];
      },
    };
  },
};

// measure runs c n times and returns the timed nanoseconds and the CPU
// nanoseconds. process.cpuUsage costs some microseconds, so it is read
// around each call only for a case with an untimed prepare step, and
// around the whole loop otherwise.
async function measure(c, n) {
  let ns = 0n, cpu = 0;
  const whole = !c.prepare && process.cpuUsage();
  for (let i = 0; i < n; i++) {
    let c0;
    if (c.prepare) {
      c.prepare();
      c0 = process.cpuUsage();
    }
    const t0 = process.hrtime.bigint();
    await c.run();
    ns += process.hrtime.bigint() - t0;
    if (c0) {
      const d = process.cpuUsage(c0);
      cpu += d.user + d.system;
    }
  }
  if (whole) {
    const d = process.cpuUsage(whole);
    cpu = d.user + d.system;
  }
  return { ns: Number(ns), cpu: cpu * 1000 };
}

const procs = Math.min(os.availableParallelism?.() ?? os.cpus().length);
const version = createRequire(import.meta.url)('@signalapp/libsignal-client/package.json').version;
console.log(`goos: ${process.platform}`);
console.log(`goarch: ${process.arch === 'x64' ? 'amd64' : process.arch}`);
console.log(`pkg: @signalapp/libsignal-client@${version} on node ${process.version}`);
console.log(`cpu: ${os.cpus()[0]?.model.trim() ?? 'unknown'}`);
for (let rep = 0; rep < count; rep++) {
  for (const [name, make] of Object.entries(cases)) {
    if (!only.test(name)) continue;
    const c = await make();
    // Grow n as Go's testing does until a run takes benchtime.
    let n = 1, r = await measure(c, n);
    while (r.ns < benchtime && n < 1e9) {
      const per = Math.max(r.ns / n, 1);
      n = Math.max(n + 1, Math.min(100 * n, Math.ceil(1.2 * benchtime / per)));
      r = await measure(c, n);
    }
    console.log(`${name}/impl=libsignal-${procs}\t${n}\t${(r.ns / n).toFixed(0)} ns/op\t${(r.cpu / n).toFixed(0)} cpu-ns/op`);
  }
}
console.log('PASS');
