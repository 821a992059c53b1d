// Package spqr is the part of SPQR, Signal's Sparse Post-Quantum Ratchet,
// that ratchetkit implements so far: the symmetric epoch chains that turn
// SPQR's epoch secrets into one key per message, and the "None" message of
// protocol version 1. libsignal 0.103 salts every message key with the SPQR
// key of that message, so even a session whose post-quantum ratchet never
// advances needs this part.
//
//	start:  HKDF-SHA256(salt = 0*32, ikm = PQR key, "Signal PQ Ratchet V1 Chain  Start", 96)
//	        = next root (32) || A2B chain (32) || B2A chain (32)
//	next:   ctr += 1
//	        HKDF-SHA256(salt = 0*32, ikm = chain, be32(ctr) || "Signal PQ Ratchet V1 Chain Next", 64)
//	        = chain' (32) || message key (32)
//
// (The start label has two spaces.) The PQR key is the third 32 bytes of
// the PQXDH output; A2B is the initiator's sending direction. The first
// message of each direction has index 1.
//
// # Minimum conforming behaviour
//
// A peer that always sends well-formed V1 None messages (0x01 || epoch ||
// index || 0x00, varints) and keeps to the first epoch's chains is
// accepted by libsignal 0.103, which then never leaves epoch 1 itself: the
// session has PQXDH's post-quantum protection of its first keys and a hash
// chain, but no post-quantum ratcheting. Start, Chain, AppendNone and
// Minimal are that behaviour, which Signal sessions used before full SPQR;
// Minimal.Initiator and Minimal.Upgrade move such a state to full SPQR
// (its first epoch's chains kept, a fresh braid).
//
// # Full SPQR
//
// The rest of the package is full SPQR V1, what Signal sessions run: the
// erasure code that carries the braid's pieces in 32-byte chunks
// (reedsolomon.go), the authenticator (authenticator.go), the chains of
// every epoch with SPQR's out-of-order history (chain_epochs.go), and the
// ML-KEM-768 braid (braid.go) with Ratchet, the per-message layer over it
// (ratchet.go), and Ratchet's serialized state (ratchet_state.go). The
// incremental ML-KEM-768 is internal/mlkem768.
package spqr
