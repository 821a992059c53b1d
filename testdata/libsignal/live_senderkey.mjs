// live_senderkey.mjs: libsignal as live group members for the Go tests
// (senderkey/live_test.go). One process holds any number of members, each
// with its own sender-key store, named by "as"; group senders are named by
// "from" (device 1). One JSON request per line on stdin, one JSON line on
// stdout:
//
//   {"op":"create","as":m,"dist":"<16-byte hex>"}        -> {"ok":true,"wire":"<SKDM hex>"}
//   {"op":"forget","as":m,"dist":...}                    -> {"ok":true}   (drops m's own record: a rekey)
//   {"op":"process","as":m,"from":s,"wire":"<SKDM hex>"} -> {"ok":true}
//   {"op":"encrypt","as":m,"dist":...,"plaintext":"<hex>"} -> {"ok":true,"wire":"<hex>"}
//   {"op":"decrypt","as":m,"from":s,"wire":"<hex>"}      -> {"ok":true,"plaintext":"<hex>"}
//
// A failure is {"ok":false,"error":"...","code":n}; for decrypt also
// "unchanged": whether m's records were byte-identical afterwards.
//
//   node live_senderkey.mjs < requests.jsonl

import readline from 'node:readline';
import {
  SenderKeyDistributionMessage, ProtocolAddress, processSenderKeyDistributionMessage,
  groupEncrypt, groupDecrypt, MemorySenderKeys, uuidString,
} from './senderkey_lib.mjs';
import { hex, u8 } from './lib.mjs';

const members = new Map();
const member = (name) => {
  if (!members.has(name)) members.set(name, { address: ProtocolAddress.new(name, 1), store: new MemorySenderKeys() });
  return members.get(name);
};
const fromHex = (h) => u8(Buffer.from(h, 'hex'));

async function handle(req, state) {
  const me = member(req.as);
  switch (req.op) {
    case 'create': {
      const m = await SenderKeyDistributionMessage.create(me.address, uuidString(fromHex(req.dist)), me.store);
      return { ok: true, wire: hex(m.serialize()) };
    }
    case 'forget':
      me.store.forget(me.address, uuidString(fromHex(req.dist)));
      return { ok: true };
    case 'process':
      await processSenderKeyDistributionMessage(ProtocolAddress.new(req.from, 1),
        SenderKeyDistributionMessage.deserialize(fromHex(req.wire)), me.store);
      return { ok: true };
    case 'encrypt': {
      const m = await groupEncrypt(me.address, uuidString(fromHex(req.dist)), me.store, fromHex(req.plaintext));
      return { ok: true, wire: hex(m.serialize()) };
    }
    case 'decrypt':
      state.before = me.store.snapshot();
      state.store = me.store;
      return { ok: true, plaintext: hex(await groupDecrypt(ProtocolAddress.new(req.from, 1), me.store, fromHex(req.wire))) };
  }
  throw new Error(`unknown op ${req.op}`);
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
for await (const line of rl) {
  const state = {};
  let out;
  try { out = await handle(JSON.parse(line), state); } catch (e) {
    out = { ok: false, error: String(e.message), code: e.code ?? null };
    if (state.store) out.unchanged = state.store.snapshot() === state.before;
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}
