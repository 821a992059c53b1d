// Byte layouts of PROTOCOL.md section 6, and the parsing order of 6.3.
//
//   ratchet message = 0x01 || Encode(DHs) || u32be(PN) || u32be(N) || ct
//                     0      1..34          34..38       38..42       42..
//   prekey message  = 0x02 || flags || Encode(IK_A) || Encode(EK_A)
//                     || u32be(spk_id) [|| u32be(opk_id)] || ratchet message

import { concat, readU32be, u32be } from './bytes.mjs';
import { Kind, fail } from './errors.mjs';
import { PublicKey } from './keys.mjs';

export const TYPE_RATCHET = 0x01;
export const TYPE_PREKEY = 0x02;
export const HEADER_LEN = 42;
export const TAG_LEN = 16;
export const MIN_RATCHET_LEN = HEADER_LEN + TAG_LEN; // 58
export const PREKEY_FIXED_LEN = 72; // without opk_id; 76 with it
export const FLAG_OPK = 0x01;
export const MAX_N = 0xfffffffe; // the largest message number and PN (PROTOCOL.md 5.8)

export function buildHeader(dhPub, pn, n) {
  return concat(Uint8Array.of(TYPE_RATCHET), dhPub.encoded, u32be(pn), u32be(n));
}

/**
 * ParseRatchetMessage of PROTOCOL.md 6.3: malformed (shorter than any valid
 * message), unknown_type, bad_key, counter_overflow, in that order.
 */
export function parseRatchetMessage(msg) {
  if (msg.length < MIN_RATCHET_LEN) fail(Kind.malformed);
  if (msg[0] !== TYPE_RATCHET) fail(Kind.unknownType);
  const dh = PublicKey.decode(msg.subarray(1, 34));
  const pn = readU32be(msg, 34);
  const n = readU32be(msg, 38);
  if (n > MAX_N || pn > MAX_N) fail(Kind.counterOverflow);
  return { header: msg.subarray(0, HEADER_LEN), dh, pn, n, ct: msg.subarray(HEADER_LEN) };
}

export function buildPrekeyMessage({ ikA, ekA, spkId, opkId, inner }) {
  const hasOpk = opkId != null;
  return concat(
    Uint8Array.of(TYPE_PREKEY, hasOpk ? FLAG_OPK : 0),
    ikA.encoded,
    ekA.encoded,
    u32be(spkId),
    hasOpk ? u32be(opkId) : new Uint8Array(0),
    inner,
  );
}

/** ParsePrekeyMessage of PROTOCOL.md 6.3; msg[0] must already be 0x02. */
export function parsePrekeyMessage(msg) {
  if (msg.length < 2) fail(Kind.malformed);
  const flags = msg[1];
  if ((flags & ~FLAG_OPK) !== 0) fail(Kind.malformed);
  const fixed = flags === FLAG_OPK ? PREKEY_FIXED_LEN + 4 : PREKEY_FIXED_LEN;
  if (msg.length < fixed + MIN_RATCHET_LEN) fail(Kind.malformed);
  if (msg[fixed] !== TYPE_RATCHET) fail(Kind.malformed);
  const ikA = PublicKey.decode(msg.subarray(2, 35));
  const ekA = PublicKey.decode(msg.subarray(35, 68));
  const spkId = readU32be(msg, 68);
  const opkId = flags === FLAG_OPK ? readU32be(msg, 72) : null;
  const innerBytes = msg.subarray(fixed);
  const inner = parseRatchetMessage(innerBytes);
  return { flags, ikA, ekA, spkId, opkId, innerBytes, inner };
}
