// Package x3dh implements the [X3DH] ("Extended Triple Diffie-Hellman") key
// agreement as ratchetkit's profile v1 pins it: how two parties who need not
// be online at the same time agree on a shared secret that starts a Double
// Ratchet session. It is pure computation: no I/O, no storage, no clocks.
//
// # How it works
//
// The responder, Bob, publishes a [Bundle] through a server: his identity key
// IK_B, a signed prekey SPK_B (a medium-term key whose XEdDSA signature by
// IK_B shows he made it) and, while the server has any, a one-time prekey
// OPK_B that the server hands out only once. The initiator, Alice, fetches a
// bundle and calls [Initiate] with her identity key IK_A. It checks the
// signature, makes a fresh ephemeral key EK_A and combines four
// Diffie-Hellman agreements:
//
//	DH1 = DH(IK_A, SPK_B)   Alice's identity, Bob's prekey
//	DH2 = DH(EK_A, IK_B)    Alice's ephemeral, Bob's identity
//	DH3 = DH(EK_A, SPK_B)   forward secrecy against a later IK theft
//	DH4 = DH(EK_A, OPK_B)   only with a one-time prekey
//	SK  = HKDF-SHA256(0x00*32, 0xFF*32 || DH1 || DH2 || DH3 [|| DH4], info, 32)
//	AD  = Encode(IK_A) || Encode(IK_B)
//
// DH1 and DH2 authenticate both parties to each other (only the holders of
// IK_A and IK_B can compute them), DH3 and DH4 add keys that are deleted
// soon, so that a later compromise of both identity keys does not reveal SK.
// Alice then sends her first message with a [Header] (IK_A, EK_A and the
// prekey ids), and keeps sending it with every message until Bob answers.
// Bob looks up the named prekeys and calls [Respond], which computes the same
// SK and AD from the other side of each agreement.
//
// SK seeds the Double Ratchet; AD is authenticated with every message. X3DH
// has no key confirmation of its own: the first message that decrypts is
// what shows both sides hold the same SK. A one-time prekey's private key
// should be deleted once such a message has decrypted, never before (a
// forged message would otherwise destroy it).
//
// # What X3DH does not protect
//
// X3DH proves that the peer holds the private key of the identity key in the
// bundle or header; it does not say whose key that is. A server that hands
// Alice a bundle under its own identity key reads everything. Binding keys
// to people is the application's job: show users safety numbers (a
// fingerprint of both identity keys) to compare out of band, trust on first
// use and warn loudly when a known contact's key changes, or check keys
// against a transparency log.
//
// Nor does X3DH hide metadata: the header carries IK_A in the clear, and the
// server sees who fetches whose bundle. A server that withholds one-time
// prekeys cannot break a session, but the first messages then depend on the
// signed prekey alone for forward secrecy until it is rotated. A first
// message without a one-time prekey can be replayed to Bob and yields the
// same SK again; the session layer must recognise a repeated EK_A (profile
// v1 makes it reuse that session, whose ratchet rejects the duplicate).
// Finally, X3DH gives deniability, not non-repudiation: nothing a party
// receives proves to a third party who sent it.
//
// # Deviations from the X3DH specification
//
// The curve, hash and KDF are the specification's X25519 and SHA-256
// choices, with these application-level fixes (they are the specification's
// to leave open, but a Signal implementation will not interoperate):
//
//   - The HKDF info string defaults to "ratchetkit_X3DH_X25519_SHA-256_v1"
//     (Signal used "WhisperText"); [Config.Info] changes it.
//   - Public keys are encoded as 0x05 || u, as libsignal does, and the
//     decoder accepts only canonical u (u < p), so AD has one possible value.
//   - Signed-prekey signatures are checked with ratchetkit's XEdDSA
//     verifier. It accepts spec-exact signatures and libsignal's variant
//     (the Edwards sign bit in the top bit of the last byte), but is
//     stricter than both the specification and libsignal: it rejects
//     s ≥ q and identity keys of small order, and, unlike libsignal,
//     non-canonical u.
//   - Small-order keys are refused explicitly, before any secret is
//     computed, and an all-zero DH output is an error. The specification
//     leaves this open.
//
// # Errors
//
// Failures are distinguished by the sentinels [ErrInvalidSignature],
// [ErrSmallOrder], [ErrMalformed] and [ErrPreKeyMismatch]; test with
// errors.Is. No error message contains secret bytes.
//
// The checks run in a fixed order, so that every bad input has exactly one
// answer: encodings first ([ParseBundle], [ParseHeader]: ErrMalformed, and
// keys.ErrInvalidPublicKey for a key that does not decode), then small-order
// keys (ErrSmallOrder), then the signature (ErrInvalidSignature), and only
// then anything secret. A small-order identity key is therefore reported as
// such, although XEdDSA would also refuse to verify under it.
//
// # Secrets
//
// Initiate and Respond wipe the ephemeral private key and the DH outputs
// before returning; [Initiation.Clear] and [Response.Clear] wipe SK once the
// ratchet has it. In Go this is best effort: the runtime may have copied
// the bytes (stack growth, registers) where no code can reach them. SK never
// appears in formatted output.
//
// [X3DH]: https://signal.org/docs/specifications/x3dh/
package x3dh
