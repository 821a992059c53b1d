// Package ratchet implements the Double Ratchet algorithm of Signal's
// [Double Ratchet] specification (revision 1, section 3, without header
// encryption) as pinned by ratchetkit's wire profile v1, and, on the same
// core, libsignal 0.103's Double Ratchet with SPQR (see "Signal sessions"
// below and SIGNAL.md).
//
// Two parties that share a secret, typically from X3DH (package x3dh),
// use a pair of Sessions to exchange messages with forward secrecy (a
// message key, once used or deleted, cannot be recomputed from later state)
// and break-in recovery (a stolen state stops decrypting once both parties
// have taken a DH ratchet step past it). Messages may arrive late, out of
// order, twice, or not at all; hostile bytes are rejected without changing
// anything.
//
// Most applications want the session layer (package session), which adds
// X3DH, prekey messages and storage. This package is for those who bring
// their own key agreement and transport: bytes in, bytes out.
//
// # The algorithm
//
// Each party holds a root key RK, a ratchet key pair DHs, the peer's
// ratchet public key DHr, a sending chain key CKs and a receiving chain key
// CKr, with message numbers Ns and Nr and the length PN of its previous
// sending chain.
//
// The symmetric ratchet turns a chain key into one message key per
// message:
//
//	KDF_CK(ck): mk = HMAC-SHA256(ck, 0x01), next ck = HMAC-SHA256(ck, 0x02)
//
// Each message key encrypts exactly one message and is then wiped; the
// chain key moves forward and the old one is gone, which is where forward
// secrecy comes from.
//
// The DH ratchet replaces both chains whenever a message carries a ratchet
// public key the receiver has not seen. The receiver computes
//
//	RK, CKr = KDF_RK(RK, DH(DHs, new DHr))
//	DHs     = a fresh key pair
//	RK, CKs = KDF_RK(RK, DH(DHs, DHr))
//
// with KDF_RK(rk, dh) = HKDF-SHA256(salt rk, input dh, info
// "ratchetkit_Ratchet_v1", 64 bytes) split into the new root key and a
// chain key. Its next message carries the fresh public key, so the peer
// steps too: the parties take turns, and every turn mixes new DH output
// into the root chain, which is where break-in recovery comes from.
//
// The initiator (Alice) starts with a fresh DHs, DHr = the responder's
// prekey (X3DH's signed prekey), and RK, CKs = KDF_RK(SK, DH(DHs, DHr)): it
// can send at once. The responder (Bob) starts with DHs = that prekey pair
// and RK = SK and no chains; Alice's first message gives him both.
//
// A message whose number is ahead of the receiving chain makes the receiver
// derive and store the keys of the messages in between ("skipped" keys),
// under (ratchet key, N); at a DH ratchet step, the header's PN says how
// many messages the previous chain had, and the rest of that chain's keys
// are stored too. A late message is then decrypted with its stored key,
// which is deleted.
//
// # Wire format
//
// A message is a 42-byte header followed by the AEAD ciphertext:
//
//	0x01 || 0x05 || DHs.pub (32 bytes) || u32be(PN) || u32be(N) || ciphertext || tag (16 bytes)
//
// 0x01 says "ratchet message" (ratchetkit's prekey message, 0x02, wraps one;
// see the session layer), and 0x05 || u is the profile's public key
// encoding. The shortest message, of an empty plaintext, is 58 bytes.
//
// Message keys go through HKDF-SHA256(32 zero bytes, mk,
// "ratchetkit_MessageKeys_AES-256-GCM_v1", 44): the first 32 bytes key
// AES-256-GCM, the last 12 are its nonce, and the associated data is the
// session's AD (from X3DH: both identity keys) followed by the header. Since
// every message key is used once, the derived nonce never repeats under a
// key.
//
// # Deviations from Signal's specification
//
// These choices make ratchetkit not wire-compatible with Signal:
//
//   - Messages are encrypted with AES-256-GCM under an HKDF-derived key and
//     nonce (package aead), not AES-256-CBC with a truncated HMAC.
//   - The header is ratchetkit's fixed 42-byte layout above, not a protobuf,
//     and it is authenticated as associated data, not encrypted: header
//     encryption (section 4 of the specification) is not implemented.
//   - Both MaxSkip checks of a DH ratchet step (for the old chain up to PN
//     and for the new chain up to N) come before any DH computation, and the
//     new ratchet key pair is generated only once the message has
//     authenticated; the old chain's skipped keys are derived only then.
//     This changes nothing a peer can observe except which error a message
//     that fails two checks reports, and a forged message costs one X25519
//     and the new chain's steps instead of two X25519, a key generation and
//     the steps of both chains.
//   - Counters are 32-bit and never wrap: a header with PN or N equal to
//     2^32−1 is rejected with ErrCounterOverflow before any key is derived,
//     and a sending chain ends after N = 2^32−3 (so PN never exceeds 2^32−2).
//   - A message on the current receiving chain with a number below Nr and no
//     stored key is reported as ErrDuplicate rather than failing
//     authentication.
//
// # Limits
//
// Skipping is bounded twice. [Config.MaxSkip] (default 1000) bounds how
// far one message may jump ahead in one chain: an unauthenticated header
// could otherwise make the receiver derive billions of keys. It is
// checked separately for the old chain at a DH step and for the message's
// own chain, so one message can store up to 2·MaxSkip keys.
// [Config.MaxSkippedKeys] (default 2000, two maximal jumps) bounds how many
// keys a session keeps: beyond it the oldest are deleted, and their
// messages can no longer be read. That bounds memory (40 bytes per key in
// memory, 36 in the state) and, since every stored key is a secret that
// decrypts a message, the exposure of a stolen state. Evicting instead of
// refusing keeps a long-lived session working however many messages were
// lost. Both limits are stored with the session and fixed for its life.
//
// # Atomicity
//
// Decrypt computes every change it would make, verifies the message's
// authentication tag, and only then commits them. Any error, including a
// failed authentication, leaves the session byte-for-byte as it was, so a
// forged, replayed or corrupted message cannot desynchronize a session.
// (The skipped-key store is not copied for this: candidate keys are
// recomputed from the chain key on commit.)
//
// # State
//
// [Session.MarshalBinary] and [ParseSession] save and restore a session in
// a small, versioned binary format (documented in state.go): a magic "rkdr"
// and a version byte, then the fields. Every released version is parsed
// forever; only the newest is written. The state contains the secrets the
// session's forward secrecy depends on: store it encrypted, and treat an
// old copy as a liability, since it can decrypt every message sent after
// it was taken until the next DH ratchet step, and every skipped message
// whose key it holds.
//
// # What is not protected
//
//   - Metadata: headers are in the clear, so an observer sees each party's
//     ratchet public key (linking messages of one session), message
//     numbers, chain lengths and when DH steps happen, and ciphertext
//     lengths reveal plaintext lengths. Pad plaintexts if length matters.
//   - Secrets in memory are wiped when replaced and by [Session.Clear], but
//     only on a best-effort basis: Go can copy memory behind the program's
//     back (stack growth, the garbage collector), and values returned to the
//     caller (plaintexts, state blobs) are the caller's to wipe.
//   - A Session is not safe for concurrent use; a session layer must
//     serialize operations per session (and per stored state).
//   - The peer is trusted with the conversation: a malicious peer can, for
//     instance, make the session store MaxSkippedKeys keys or reuse ratchet
//     keys. It cannot make the session exceed its limits.
//
// # Signal sessions
//
// [NewSignalInitiator] and [NewSignalResponder] start a session that speaks
// libsignal 0.103's protocol (message version 4) from PQXDH's keys (package
// pqxdh). The state machine is the one above: the same sending chain, DH
// ratchet steps, skipped-key store and compute-then-commit decryption. What
// differs is libsignal's protocol part:
//
//   - KDFs: the root step is HKDF-SHA256 with info "WhisperRatchet"; the
//     chain step is the same HMAC pair; a message's keys are
//     HKDF(salt = its SPQR key, seed, "WhisperMessageKeys", 80), AES-256-CBC
//     with PKCS#7 and an 8-byte HMAC-SHA256 over IK_sender ‖ IK_receiver ‖
//     the message (internal/signalsuite).
//   - Messages are 0x44 ‖ SignalMessage protobuf ‖ tag (internal/signalwire),
//     previous_counter is max(n − 1, 0) for a previous chain of n messages.
//   - Receiving chains are kept, not skipped through: a session holds the
//     chains of the peer's SignalMaxReceivingChains (5) newest ratchet keys,
//     and a late message on any of them is derived from its chain key, where
//     profile v1 stores the old chain's keys up to PN at each step. Skipped
//     messages are stored as 32-byte seeds, the newest
//     SignalMaxKeysPerChain (2 000) per chain, expanded only when used,
//     since the SPQR key that salts them is known only then; a jump of more
//     than SignalMaxJump (25 000) skipped keys is refused.
//   - The initiator starts, as libsignal does, with a receiving chain on the
//     responder's signed prekey keyed by PQXDH's chain key, and takes its
//     first sending step at once.
//   - SPQR runs beside the Double Ratchet behind a small interface: sending
//     gives a payload and a key, receiving gives a key that is committed
//     only with the message, braid and chains together. It is
//     internal/spqr's full SPQR V1: an ML-KEM-768 braid whose epoch
//     secrets start new chains, so the message keys heal against a quantum
//     attacker as epochs advance. Its bounds (an index at most 25 000 ahead
//     in its epoch, late indexes at most 2 000 behind) make libsignal's
//     effective limit 24 999 skipped messages. A state written before
//     full SPQR (pq_kind 1, minimal SPQR: the first epoch's chains and None
//     messages) is loaded with its chains as they were and a fresh braid,
//     and moves to full SPQR with its first message sent or decrypted.
//
// A Signal session's state is version 2 of the state format (the layout is
// in signal_state.go); profile v1 sessions keep writing version 1. Config's
// limits and Suite do not apply: libsignal's are fixed.
//
// [Double Ratchet]: https://signal.org/docs/specifications/doubleratchet/
package ratchet
