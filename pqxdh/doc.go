// Package pqxdh implements PQXDH ("Post-Quantum Extended Diffie-Hellman"),
// the key agreement that starts a Signal-protocol session, exactly as
// libsignal 0.103 runs it: four X25519 agreements (the fourth only with a
// one-time prekey) and one Kyber1024 encapsulation. Like package x3dh it is
// pure computation: no I/O, no storage, no clocks.
//
// # How it works
//
// The responder, Bob, publishes a Bundle: his identity key IK_B, a signed
// prekey SPK_B, optionally a one-time prekey OPK_B, and a Kyber1024 prekey
// PQPK_B (one-time or last resort), each prekey signed by IK_B with XEdDSA
// over its encoding (0x05 || u for X25519 keys, 0x08 || key for Kyber keys).
// The initiator, Alice, calls Initiate, which checks both signatures before
// anything secret is computed, draws a fresh base key EK_A, encapsulates to
// PQPK_B and derives
//
//	DH1 = DH(IK_A, SPK_B)   DH2 = DH(EK_A, IK_B)   DH3 = DH(EK_A, SPK_B)
//	DH4 = DH(EK_A, OPK_B)   only with a one-time prekey
//	(SS, CT) = Kyber1024-Encaps(PQPK_B)
//	out = HKDF-SHA256(salt = none, ikm = 0xFF*32 || DH1 || DH2 || DH3 [|| DH4] || SS,
//	                  info = "WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024", 96)
//	root key = out[0:32], chain key = out[32:64], PQR key = out[64:96]
//
// The Kyber secret comes last, after the optional DH4. An absent HKDF salt is
// the all-zero 32-byte salt (RFC 5869). The root and chain keys start
// libsignal's Double Ratchet; the third 32 bytes are the initial key of SPQR,
// the post-quantum ratchet that libsignal runs beside it (the "auth key" from
// which SPQR's first epoch chains are derived).
//
// Alice's first message carries a Header: IK_A, EK_A, the ids of the prekeys
// she used and CT. Bob looks the prekeys up and calls Respond, which first
// refuses a base key that is not canonical (on the curve, not the twist,
// torsion-free, u < p, bit 255 clear: libsignal's is_canonical), then
// computes the same output with every agreement mirrored and the Kyber
// ciphertext decapsulated.
//
// # What is checked, and where this package is stricter than libsignal
//
// Like libsignal, Initiate verifies the signed-prekey and the Kyber-prekey
// signatures, and both sides refuse an all-zero X25519 output. keys' XEdDSA
// verification is stricter than libsignal's (it refuses s ≥ q and small-order
// identity keys); honest signers never produce either, and libsignal's own
// signatures verify here (testdata/libsignal). keys.DecodePublicKey refuses
// non-canonical u where libsignal reduces them, and package kyber refuses
// Kyber keys with coefficients ≥ q.
//
// PQXDH, like X3DH, has no key confirmation: a wrong prekey or a forged Kyber
// ciphertext yields different keys (implicit rejection), and only the first
// message's MAC shows it. Delete a one-time prekey only after that message
// decrypts. It authenticates the identity keys, not whose keys they are;
// binding keys to people is the application's job.
//
// # What the post-quantum part protects
//
// An attacker who records the handshake and later breaks X25519 still needs
// the Kyber secret to recover the session keys: PQXDH gives the session's
// first keys post-quantum confidentiality (a "harvest now, decrypt later"
// defence). Authentication stays classical (XEdDSA). Post-quantum protection
// of later messages is SPQR's job, not this package's.
package pqxdh
