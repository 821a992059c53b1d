// The conformance driver protocol of PROTOCOL.md section 9, as a function
// from one request object to one answer object. driver.mjs wraps it in
// JSON lines on stdin/stdout; tests call it directly.
//
// Order of checks for every request: the request's shape (fields present,
// right JSON types, lowercase hex, u32 ranges) → malformed; then for
// encrypt/decrypt the session id → unknown_session; then the operation,
// whose errors are the protocol's own.

import { hex, unhex } from './bytes.mjs';
import { Kind, ProtocolError, fail } from './errors.mjs';
import { RatchetSession } from './ratchet.mjs';
import { BareSession, Initiator, Responder } from './session.mjs';
import * as x3dh from './x3dh.mjs';
import * as xeddsa from './xeddsa.mjs';

const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const absent = (v) => v === undefined || v === null;

/** A required hex field → bytes; malformed if missing or not lowercase hex. */
function bytes(obj, name) {
  const b = unhex(obj[name]);
  if (b === null) fail(Kind.malformed);
  return b;
}

function optBytes(obj, name) {
  return absent(obj[name]) ? null : bytes(obj, name);
}

function u32(obj, name) {
  const v = obj[name];
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) fail(Kind.malformed);
  return v;
}

function optU32(obj, name) {
  return absent(obj[name]) ? null : u32(obj, name);
}

function str(obj, name) {
  if (typeof obj[name] !== 'string') fail(Kind.malformed);
  return obj[name];
}

function object(obj, name) {
  if (!isObject(obj[name])) fail(Kind.malformed);
  return obj[name];
}

/** The bundle object of x3dh_initiate and session_initiate. */
function bundle(req) {
  const b = object(req, 'bundle');
  const out = {
    ik: bytes(b, 'ik'),
    spk: bytes(b, 'spk'),
    spkId: u32(b, 'spk_id'),
    spkSig: bytes(b, 'spk_sig'),
    opk: optBytes(b, 'opk'),
    opkId: optU32(b, 'opk_id'),
  };
  if ((out.opk === null) !== (out.opkId === null)) fail(Kind.malformed);
  return out;
}

function info(req) {
  return optBytes(req, 'info') ?? undefined; // undefined selects the default
}

function injectedKey(req, name) {
  const k = optBytes(req, name);
  if (k !== null && k.length !== 32) fail(Kind.badKey);
  return k;
}

export function createDriver() {
  const sessions = new Map();

  function lookup(id) {
    const s = sessions.get(id);
    if (s === undefined) fail(Kind.unknownSession);
    return s;
  }

  const ops = {
    xeddsa_sign(req) {
      const priv = bytes(req, 'priv');
      const msg = bytes(req, 'msg');
      const z = bytes(req, 'z');
      if (z.length !== 64) fail(Kind.malformed);
      if (priv.length !== 32) fail(Kind.badKey);
      return { sig: hex(xeddsa.sign(priv, msg, z)) };
    },

    xeddsa_verify(req) {
      // Never an error: anything unusable is simply not a valid signature.
      const pub = unhex(req.pub);
      const msg = unhex(req.msg);
      const sig = unhex(req.sig);
      if (pub === null || msg === null || sig === null) return { ok: false };
      return { ok: xeddsa.verify(pub, msg, sig) };
    },

    x3dh_initiate(req) {
      const ikPriv = bytes(req, 'ik_priv');
      const ekPriv = bytes(req, 'ek_priv');
      const b = bundle(req);
      const inf = info(req);
      const r = x3dh.initiate({ ikPriv, ekPriv, bundle: b, info: inf });
      return { sk: hex(r.sk), ad: hex(r.ad) };
    },

    x3dh_respond(req) {
      const p = {
        ikPriv: bytes(req, 'ik_priv'),
        spkPriv: bytes(req, 'spk_priv'),
        opkPriv: optBytes(req, 'opk_priv'),
        peerIk: bytes(req, 'peer_ik'),
        peerEk: bytes(req, 'peer_ek'),
        info: info(req),
      };
      const r = x3dh.respond(p);
      return { sk: hex(r.sk), ad: hex(r.ad) };
    },

    ratchet_init_alice(req) {
      const id = str(req, 'id');
      const p = {
        sk: bytes(req, 'sk'),
        ad: bytes(req, 'ad'),
        peerDh: bytes(req, 'peer_dh'),
        dhPriv: optBytes(req, 'dh_priv'),
        maxSkip: optU32(req, 'max_skip'),
        maxSkippedKeys: optU32(req, 'max_skipped_keys'),
      };
      sessions.set(id, new BareSession(RatchetSession.initAlice(p)));
      return {};
    },

    ratchet_init_bob(req) {
      const id = str(req, 'id');
      const p = {
        sk: bytes(req, 'sk'),
        ad: bytes(req, 'ad'),
        dhPriv: bytes(req, 'dh_priv'),
        maxSkip: optU32(req, 'max_skip'),
        maxSkippedKeys: optU32(req, 'max_skipped_keys'),
      };
      sessions.set(id, new BareSession(RatchetSession.initBob(p)));
      return {};
    },

    session_initiate(req) {
      const id = str(req, 'id');
      const p = {
        ikPriv: bytes(req, 'ik_priv'),
        ekPriv: optBytes(req, 'ek_priv'),
        dhPriv: optBytes(req, 'dh_priv'),
        bundle: bundle(req),
        info: info(req),
      };
      sessions.set(id, Initiator.create(p));
      return {};
    },

    session_respond(req) {
      const id = str(req, 'id');
      const spk = object(req, 'spk');
      const opks = absent(req.opks) ? [] : req.opks;
      if (!Array.isArray(opks)) fail(Kind.malformed);
      const p = {
        ikPriv: bytes(req, 'ik_priv'),
        spk: { id: u32(spk, 'id'), priv: bytes(spk, 'priv') },
        opks: opks.map((o) => {
          if (!isObject(o)) fail(Kind.malformed);
          return { id: u32(o, 'id'), priv: bytes(o, 'priv') };
        }),
        info: info(req),
      };
      if (new Set(p.opks.map((o) => o.id)).size !== p.opks.length) fail(Kind.malformed);
      sessions.set(id, new Responder(p));
      return {};
    },

    encrypt(req) {
      const id = str(req, 'id');
      const pt = bytes(req, 'pt');
      return { msg: hex(lookup(id).encrypt(pt)) };
    },

    decrypt(req) {
      const id = str(req, 'id');
      const msg = bytes(req, 'msg');
      const dhPriv = optBytes(req, 'dh_priv');
      const s = lookup(id);
      if (dhPriv !== null && dhPriv.length !== 32) fail(Kind.badKey);
      return { pt: hex(s.decrypt(msg, { dhPriv })) };
    },
  };

  /** Answers one parsed request (any JSON value). */
  function handle(req) {
    try {
      if (!isObject(req) || typeof req.op !== 'string' || !Object.hasOwn(ops, req.op)) fail(Kind.malformed);
      return ops[req.op](req);
    } catch (err) {
      if (err instanceof ProtocolError) return { error: err.kind };
      // A bug in this implementation, not a protocol outcome: answer with a
      // kind no harness expects, and keep running.
      process.stderr.write(`driver: internal error: ${err && err.stack}\n`);
      return { error: 'internal' };
    }
  }

  /** Answers one input line (PROTOCOL.md 9.1). */
  function handleLine(line) {
    let req;
    try {
      req = JSON.parse(line.endsWith('\r') ? line.slice(0, -1) : line);
    } catch {
      return { error: Kind.malformed };
    }
    return handle(req);
  }

  return { handle, handleLine, sessions };
}
