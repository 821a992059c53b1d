// Package signalsuite holds libsignal's Double Ratchet cipher suite (0.103,
// message version 4) as pure functions: the root and chain KDFs, the
// message-key derivation, and AES-256-CBC with an 8-byte HMAC-SHA256 tag.
// It keeps no state: the ratchet core decides which keys to use when, and
// commits nothing until Open succeeds.
//
//	root step:     RK', CK = HKDF-SHA256(salt = RK, ikm = DH, "WhisperRatchet", 64)
//	chain step:    seed = HMAC-SHA256(CK, 0x01), CK' = HMAC-SHA256(CK, 0x02)
//	message keys:  HKDF-SHA256(salt = SPQR key or none, ikm = seed, "WhisperMessageKeys", 80)
//	               = AES key (32) || MAC key (32) || IV (16)
//	ciphertext:    AES-256-CBC(AES key, IV, PKCS#7(plaintext))
//	tag:           HMAC-SHA256(MAC key, IK_sender || IK_receiver || 0x44 || protobuf)[:8]
//
// The identity keys in the tag are their 33-byte encodings (0x05 || u), and
// the protobuf is the whole SignalMessage body as it travels (see
// internal/signalwire), so the tag covers the ratchet key, both counters,
// the ciphertext, the SPQR payload and the addresses. The salt is the
// per-message key of SPQR (internal/spqr); libsignal omits it only for
// sessions without SPQR, which 0.103 no longer accepts. A skipped message
// is stored as its 32-byte seed, not its keys, because the SPQR key is only
// known when the message arrives.
//
// This is the suite libsignal runs, not profile v1's: CBC plus a truncated
// HMAC is encrypt-then-MAC and sound, but 64-bit tags are shorter than
// GCM's, and there is no nonce to misuse: the IV is derived with the keys.
package signalsuite
