// Package kyber implements the Kyber1024 key encapsulation that the Signal
// protocol's PQXDH handshake uses, and the signed Kyber prekeys that carry it.
//
// # Kyber1024 is not ML-KEM-1024
//
// libsignal (0.103) speaks round-3 CRYSTALS-Kyber1024, key type 0x08, not the
// FIPS 203 ML-KEM that Go's crypto/mlkem implements. The two share their
// key, ciphertext and shared-secret sizes and their whole lattice core; they
// differ only in how the final shared secret is hashed out. For a valid
// ciphertext c (the 1568 raw bytes), round-3 Kyber's secret is
//
//	K_kyber = SHAKE-256(K_mlkem || SHA3-256(c), 32 bytes)
//
// where K_mlkem is what ML-KEM-1024 decapsulation (or encapsulation) returns
// for the same key and ciphertext. Encapsulation in round 3 also hashes its
// 32 random bytes once more before use (m = SHA3-256(random)), which changes
// nothing a peer can observe, so this package calls crypto/mlkem unchanged
// and applies the formula above to its result. The committed libsignal
// vectors (testdata/libsignal) check the formula: Go decapsulates
// libsignal's ciphertexts and derives libsignal's root and chain keys.
//
// # Implicit rejection
//
// Both schemes answer an invalid ciphertext with a pseudorandom key instead
// of an error (implicit rejection), with z the key's secret rejection seed:
//
//	round-3 Kyber (reference):  K = SHAKE-256(z || SHA3-256(c), 32)
//	ML-KEM-1024 (FIPS 203):     K = SHAKE-256(z || c, 32)
//	this package:               K = SHAKE-256(SHAKE-256(z || c, 32) || SHA3-256(c), 32)
//
// This package runs ML-KEM's rejection and then the Kyber output step on its
// result, so it never returns the round-3 reference's rejection key. libsignal
// does not either: its Kyber1024 is libcrux's "kyber" variant of the ML-KEM
// code (libcrux-ml-kem 0.0.10 in libsignal 0.101), whose decapsulation hashes
// z || c with the ML-KEM PRF and then applies the same Kyber output step to
// the rejection key as to the real one, which is this package's formula.
// libsignal's API never shows a rejection key, but a first message does:
// internal/signalsuite's TestLiveKyberRejection forges the Kyber ciphertext,
// derives the session keys from this package's rejection key, and libsignal
// 0.103 decrypts that message (and refuses it when the keys come from the
// genuine secret instead). Nothing else depends on the formula:
// a rejected ciphertext gives a key that no honest sender holds, the first
// message's MAC then fails on either side, and the key stays a secret
// function of z and c, so a failure reveals nothing.
//
// ML-KEM also checks the encapsulation key's coefficients (each below
// q = 3329) when it is loaded; round-3 Kyber does not. ParsePublicKey
// therefore refuses keys that no honest key generator makes but that
// libsignal might accept.
//
// # Keys and their encodings
//
// Public keys and ciphertexts travel with libsignal's type byte: 0x08 followed
// by the 1568-byte key or ciphertext, 1569 bytes in all. libsignal stores a
// secret key in the 3168-byte expanded form of FIPS 203 (dk_PKE || ek ||
// H(ek) || z); crypto/mlkem holds decapsulation keys only as their 64-byte
// seed (d || z) and has no way to load the expanded form, so this package
// stores the seed. It can therefore not import a secret key that libsignal
// made (PublicKeyOfLibsignalSecret reads only its public half), and libsignal cannot
// load a seed; public keys, ciphertexts and signatures are the same bytes on
// both sides, and those are all that travel.
//
// # Prekeys
//
// A PreKey is a Kyber1024 key pair with a 32-bit id, signed by the identity
// key with XEdDSA over the 1569-byte encoded public key, exactly as libsignal
// signs (and verifies) its Kyber prekeys. Signal distinguishes one-time Kyber
// prekeys, used once and deleted, from a last-resort key that stays until it
// is replaced; libsignal itself does not, so the flag lives here, for the
// store. A last-resort key must refuse a repeated (Kyber id, signed-prekey
// id, base key) triple; that bookkeeping is the session layer's.
//
// # Secrets
//
// crypto/mlkem gives no way to wipe a decapsulation key, so PrivateKey.Clear
// only drops this package's copy of the seed; the shared secrets returned
// are the caller's to wipe.
package kyber
