// Two byte formats of the Go x3dh package that are not exchanged between
// peers but appear in its vectors (PROTOCOL.md Appendix B):
//
//   bundle = 0x01 || flags || Encode(IK_B) || u32be(spk_id) || Encode(SPK_B)
//            || spk_sig(64) [|| u32be(opk_id) || Encode(OPK_B)]    136 or 173 bytes
//   x3dh header = flags || Encode(IK_A) || Encode(EK_A) || u32be(spk_id)
//            [|| u32be(opk_id)]                                    71 or 75 bytes
//
// The header is exactly bytes 1.. of a prekey message's fixed part.
// Parsing: version, flags and exact length (malformed) before key
// decoding (bad_key).

import { concat, readU32be, u32be } from './bytes.mjs';
import { Kind, fail } from './errors.mjs';
import { PublicKey } from './keys.mjs';

export const BUNDLE_VERSION = 0x01;

export function encodeBundle({ ik, spkId, spk, spkSig, opkId = null, opk = null }) {
  const hasOpk = opk !== null;
  return concat(
    Uint8Array.of(BUNDLE_VERSION, hasOpk ? 1 : 0),
    ik,
    u32be(spkId),
    spk,
    spkSig,
    hasOpk ? concat(u32be(opkId), opk) : new Uint8Array(0),
  );
}

export function parseBundle(b) {
  if (b.length < 2) fail(Kind.malformed);
  if (b[0] !== BUNDLE_VERSION) fail(Kind.malformed);
  if ((b[1] & 0xfe) !== 0) fail(Kind.malformed);
  const hasOpk = b[1] === 1;
  if (b.length !== (hasOpk ? 173 : 136)) fail(Kind.malformed);
  const ik = PublicKey.decode(b.subarray(2, 35));
  const spkId = readU32be(b, 35);
  const spk = PublicKey.decode(b.subarray(39, 72));
  const spkSig = b.slice(72, 136);
  const opkId = hasOpk ? readU32be(b, 136) : null;
  const opk = hasOpk ? PublicKey.decode(b.subarray(140, 173)) : null;
  return { ik, spkId, spk, spkSig, opkId, opk };
}

export function encodeX3dhHeader({ ikA, ekA, spkId, opkId = null }) {
  const hasOpk = opkId !== null;
  return concat(Uint8Array.of(hasOpk ? 1 : 0), ikA, ekA, u32be(spkId), hasOpk ? u32be(opkId) : new Uint8Array(0));
}

export function parseX3dhHeader(b) {
  if (b.length < 1) fail(Kind.malformed);
  if ((b[0] & 0xfe) !== 0) fail(Kind.malformed);
  const hasOpk = b[0] === 1;
  if (b.length !== (hasOpk ? 75 : 71)) fail(Kind.malformed);
  const ikA = PublicKey.decode(b.subarray(1, 34));
  const ekA = PublicKey.decode(b.subarray(34, 67));
  return { flags: b[0], ikA, ekA, spkId: readU32be(b, 67), opkId: hasOpk ? readU32be(b, 71) : null };
}
