// Package senderkey implements Sender Keys, the group messages of the Signal
// protocol, byte for byte as libsignal 0.103 does them
// (rust/protocol/src/sender_keys.rs, group_cipher.rs): a group message is
// encrypted once for every member, not once per pairwise session.
//
// # How it works
//
// Each sender has, per group (a [DistributionID]), a sender chain: a 32-byte
// chain key with an iteration count, and an XEdDSA signing key pair (an
// X25519 key pair, as an identity key is). The sender hands the chain key,
// its iteration and the signing public key to every member in a
// [DistributionMessage], sent over the pairwise sessions, which
// authenticate and encrypt it. Each group message then uses the chain's
// next message key:
//
//	seed      = HMAC-SHA256(chain key, 0x01)
//	chain key = HMAC-SHA256(chain key, 0x02)   (iteration + 1)
//	IV || key = HKDF-SHA256(no salt, seed, "WhisperGroup", 48)
//
// and is AES-256-CBC with PKCS#7 padding, framed as
//
//	0x33 || protobuf(distribution id, chain id, iteration, ciphertext) || XEdDSA signature (64)
//
// the signature by the sender's signing key over everything before it.
// 0x33 is Sender Key message version 3 in both nibbles.
//
// # State
//
// A [Record] is what a member keeps for one (sender, distribution id): up
// to [MaxStates] chains, newest first, each with up to [MaxSkippedKeys]
// keys of messages not yet received. A sender's own record is the same type
// and also holds the signing private key. Record.Bytes serializes it; the
// bytes contain secrets critical to forward secrecy and belong in a store
// that protects them.
//
// Decrypt is all or nothing: when it fails, the record is exactly as it was
// (Bytes returns the same bytes). Bounds are libsignal's: a message may skip
// at most [MaxForwardJump] iterations, the newest [MaxSkippedKeys] skipped
// keys are kept, and [MaxStates] chains per record.
//
// # What Sender Keys protect and what they don't
//
// Messages are confidential to the members that hold the chain and
// authenticated as coming from the holder of the signing key. There is
// forward secrecy along the chain (old message keys cannot be derived from
// a later chain key) but no post-compromise security: whoever learns a
// chain key reads every later message of that chain until the sender
// rotates, by dropping its record and distributing a new chain. Remove a
// member by rotating: the removed member keeps the old chain and nothing
// else. The signature says which chain sent a message: only the sender
// holds the chain's signing private key, so members cannot forge each
// other's messages, but the binding of a chain to a person is only as good
// as the pairwise session that delivered its distribution message.
//
// # Distribution over pairwise sessions
//
// A distribution message carries the chain key in clear: it must travel
// inside a pairwise session, to every device of every other member and
// to the sender's own other devices (a chain is per sending device, as
// libsignal keys records by device address). Package session's
// Manager.EncryptToDevices does that fan-out over sessions of either
// protocol, and its Example_groups runs a group of three through
// creation, a group message and a removal with rotation. Records belong
// in a store's SenderKeys area (store.SenderKeysOf): a member's decrypt
// is Load, Record.Decrypt and Save in one transaction.
//
// # Strictness
//
// The parsers accept exactly libsignal's canonical encoding (see
// internal/signalwire): version byte 0x33, every field present once in
// ascending order, minimal varints, a 16-byte distribution id, a 32-byte
// chain key and a canonical 0x05 signing key. libsignal (prost) also
// accepts a distribution message whose version byte has another low
// nibble, an unknown field or a repeated one; none of those comes from
// libsignal's encoder.
package senderkey
