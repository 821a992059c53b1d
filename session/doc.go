// Package session is what a messaging application calls to talk to its
// peers: it starts sessions from prekey bundles, encrypts and decrypts
// messages, checks identity keys, computes safety numbers and keeps the
// device's prekeys stocked, with everything persisted in a [store.Store]
// so that sessions survive restarts and crashes.
//
// It implements section 7 of ratchetkit's PROTOCOL.md (profile v1) on top
// of the x3dh and ratchet packages, or, configured with Config.Protocol
// ratchet.Signal, libsignal 0.103's session management on top of the pqxdh
// and ratchet packages (see "The Signal protocol" below), and adds the
// parts an application needs around them: trust decisions, persistence,
// concurrency. Both protocols go through the same Manager methods.
//
// # Lifecycle
//
// A device makes a [Manager] over its store and calls [Manager.Init]
// once, which creates its identity key. [Manager.Upkeep] makes its signed
// prekey and a stock of one-time prekeys and returns the public material
// ([PreKeyUpload]) for the application to publish on its server; it is
// called again from time to time, and rotates the signed prekey and
// refills the one-time prekeys as needed.
//
// To talk to a peer device (a [store.Address]: a name and a device id),
// the application fetches the peer's bundle from the server and calls
// [Manager.StartSession]. [Manager.Encrypt] then returns prekey messages
// (type byte 0x02), which carry what the peer needs to run X3DH, until
// the peer has answered; afterwards, ratchet messages (0x01).
// [Manager.Decrypt] accepts both: a prekey message either continues a
// session this device already has or starts a new one. Messages may
// arrive late, out of order, twice or never; the ratchet copes within
// its limits (see package ratchet), and a message that fails leaves
// everything as it was.
//
// A peer may have several sessions with this device, for example when both
// started one at the same time, or when the peer lost its state and
// started over. The newest is current; up to 40 older ones are archived
// and still tried for incoming ratchet messages, so that messages in
// flight when a session was replaced can be read. Whichever session
// decrypts a message becomes current, so that both sides converge on one.
//
// # The Signal protocol
//
// A Manager made with Config{Protocol: ratchet.Signal} speaks libsignal
// 0.103's protocol (message version 4; SIGNAL.md) and interoperates with
// libsignal itself (checked live in CI, both roles). What changes for the
// application:
//
//   - Init refuses a store without Kyber prekeys (store.KyberTx; package
//     memory and package sqlstore have them).
//   - Upkeep also keeps Kyber1024 prekeys: a stock of one-time ones and a
//     last-resort one rotated like the signed prekey; the PreKeyUpload
//     carries them and SignalBundle builds the pqxdh.Bundle a server
//     hands out. ResetIdentity replaces them too.
//   - StartSignalSession takes that pqxdh.Bundle; StartSession (an
//     x3dh.Bundle) is for profile v1 and returns ErrWrongProtocol here.
//   - Encrypt returns PreKeySignalMessages until the session has received
//     a message, then SignalMessages; SignalMessageType tells them apart
//     for a transport that carries libsignal's type beside the bytes.
//     An initiator session unanswered for MaxUnacknowledgedAge (30 days,
//     as libsignal) is refused with an error wrapping ErrNoSession.
//   - Decrypt takes both kinds, telling them apart itself. A
//     PreKeySignalMessage whose base key belongs to a session this device
//     holds continues that session (its outer fields must be those that
//     started it, else ErrMalformed; libsignal checks only the base key);
//     otherwise PQXDH runs with the signed, one-time and Kyber prekeys it
//     names, and one write saves the new session, removes the one-time EC
//     prekey and marks the Kyber prekey used with (Kyber id, signed id,
//     base key): a one-time Kyber prekey is removed, a last-resort one
//     refuses the same triple again, so a replayed PreKeySignalMessage
//     whose session is gone fails (ErrUnknownPreKey, or an error wrapping
//     store.ErrReusedBaseKey) and saves nothing. SignalMessages are tried
//     on the current session, then on the archived ones (up to 40, the
//     one that stopped being current most recently first; a new session
//     beyond 40 drops the one archived longest), and the one that
//     decrypts becomes current. A used or dropped Double Ratchet key
//     (ratchet.ErrDuplicate) from any session ends the search at once,
//     as in libsignal; an SPQR key already used
//     (ratchet.ErrSPQRKeyUsed) fails that session only.
//
// Records of Signal sessions are version 2 (signal_record.go); a store's
// records of one protocol are refused by a Manager of the other with
// ErrInvalidRecord. Config.Info, Config.Ratchet and the conformance key
// source do not apply: libsignal's constants are fixed, and PQXDH draws
// from crypto/rand.
//
// # Several devices and groups
//
// A user's devices are separate addresses (one name, several device ids),
// each with sessions of its own. [Manager.EncryptToDevices] encrypts one
// plaintext for every device of the lists the server gives (the
// recipient's, and the sender's own, which keep the sender's other devices
// in step), leaving out the sending device. It starts a session, from a
// bundle its [BundleFetcher] fetches, with each device it has none with,
// and returns a [FanoutReport]: per device, the message and its type, or
// the error (ErrBundleFetch, an *IdentityError, a bundle that does not
// verify); devices with sessions that the lists no longer name are
// reported stale and their sessions kept. A device that fails is left as
// it was, and never stops the others. Group messages (package senderkey)
// use it to hand a distribution message to every member device.
//
// # Persistence and concurrency
//
// Every operation works on what the Manager knows of the address: its
// session record, parsed, and its trusted identity key, read from the
// store in one read-only transaction, or kept from the last operation on
// the address (a write-through cache of Config.CachedRecords addresses).
// It does its cryptography outside the store's write transaction, then
// saves everything it changed in one write: the session record, the
// one-time prekey a new session consumed, the peer's identity key on
// first use. The write checks that the store still holds the record and
// the trusted key the operation started from. Nothing is saved unless
// the operation succeeded, and a result (a message from Encrypt, a
// plaintext from Decrypt) is returned only once its state is saved, so
// that a crash can never make the device reuse a message key or accept a
// message twice. Calls for one address are serialized by a lock per
// address; calls for different addresses run in parallel. If another
// writer (a second Manager or process on the same store) changed the
// record or the trusted key meanwhile, the operation is redone from what
// is stored now; a one-time prekey that another session consumed in the
// meantime makes a new session fail with [ErrUnknownPreKey], and nothing
// is saved. A steady-state message, which changes only the record, is
// written with [store.SessionSwapper] where the store offers it (package
// memory does): one compare-and-swap instead of a transaction.
//
// A session record holds the current session and the archived ones, each
// with its ratchet state, the identity key of the peer it was made with,
// and its X3DH header (its layout is documented in record.go, versioned,
// and parsed strictly).
//
// # Where PROTOCOL.md leaves room
//
// PROTOCOL.md section 7 describes an initiator and a responder; a device
// is both, for each peer. This package keeps one list of sessions per
// address, those it started (from a bundle) and those the peer started
// (from a prekey message), newest-created first, and applies section 7 to
// the list: encryption uses the current one, ratchet messages try the
// current one then those of the others that can take it (the ratchet key
// is one they receive under, or they await an answer: see
// [Manager.Decrypt]), and a prekey message whose EK_A matches a
// session the peer started goes to that session (sessions this device
// started are never matched: their EK_A is this device's own). A prekey
// message is always handled as a responder would; the conformance
// driver's rule that an initiator answers one with no_session is the
// driver's, for its initiator-only sessions.
//
// Trust on first use also covers the sessions this device starts: the
// bundle's identity key is recorded with the new session (PROTOCOL.md only
// says when a responder records one). A session whose peer key is not the
// trusted one is skipped when a ratchet message is tried on the sessions;
// if it is the current session, its error is the *IdentityError.
//
// # Identity keys and safety numbers
//
// X3DH proves that a peer holds the private key of an identity key; it
// cannot say whose key that is. The Manager records the first identity
// key seen for each address (trust on first use, the default
// [TrustPolicy]) and refuses a different one afterwards with an
// [*IdentityError], which carries both keys, until the application
// approves the new key with [Manager.ApproveIdentity]. Sessions made with
// a key that is not the trusted one are not used. Trust on first use does
// not detect an impostor present from the first message: users detect
// that by comparing [SafetyNumber]s, which is the identity binding this
// package offers; [TrustExplicit] refuses every key the application did
// not approve, for applications that learn keys through a trusted channel.
//
// # Errors
//
// Errors are sentinels to test with errors.Is: this package's
// [ErrMalformed], [ErrUnknownType], [ErrNoSession], [ErrUnknownPreKey],
// [ErrUntrustedIdentity], [ErrConflict], [ErrTooLarge] and
// [ErrInvalidRecord]; the ratchet's
// ratchet.ErrAuthentication, ratchet.ErrDuplicate (a message already
// read: drop it quietly), ratchet.ErrTooManySkipped and
// ratchet.ErrCounterOverflow; x3dh.ErrInvalidSignature and
// x3dh.ErrMalformed for bundles; keys.ErrInvalidPublicKey and
// keys.ErrSmallOrder for bad keys; and store errors, wrapped. The order in
// which they are checked is that of PROTOCOL.md section 8, so that
// another implementation of the profile reports the same kind for the
// same message; ErrTooLarge, a local limit the profile does not define,
// comes right after the stateless checks of section 6.3. No error
// contains secret bytes.
//
// # Limits and what hostile messages cost
//
// A message whose plaintext exceeds Config.MaxMessageSize (64 KiB by
// default) is refused with [ErrTooLarge] before any cryptography or store
// access, on Encrypt and on Decrypt. A ratchet message is tried on the
// current session and on the archived sessions that can take it: those
// that know its ratchet key, and those that have sent under their
// current ratchet key (so that the peer may answer with a new one) when
// the message is among the first 32 of its chain. So a forged message
// costs at most one DH ratchet step with MaxSkip chain steps on the
// current session, plus either MaxSkip chain steps on the one archived
// session whose ratchet key it carries or one X25519 and 31 chain steps
// on each archived session that awaits an answer. Measured
// (BenchmarkForged, 41 sessions that all await an answer, one 2-core
// run, benchstat medians): at the default limits the worst case is
// 2.1 ms (an unknown ratchet key at N=31: 41 X25519), against 0.30 ms
// for the current session alone and 0.26 ms for the bare ratchet's
// costliest forgery; with MaxSkip at ratchet.MaxLimit it is 36 ms (the
// ratchet key of an archived session at N=MaxSkip). Before archived
// sessions were filtered, every forgery was tried on all 41: 13 ms and
// 0.8 s. Applications exposed to floods should still rate-limit per
// peer.
//
// # Performance
//
// A steady-state message costs its ratchet work plus one write: with the
// record cached, no read transaction and no parsing. On the memory store,
// whose SwapSession compares the record in place and copies the new one
// into the stored buffer, a message costs 1.22 times the bare ratchet
// (1.77 before the cache), and a ping-pong message (a DH ratchet step
// each) 1.01 times (thread CPU time, BenchmarkRatio), and the session layer allocates
// nothing beyond the ratchet's AES-GCM key schedules. On SQLite with
// synchronous=FULL the fsync of each commit dominates: about half a
// millisecond per message on an ordinary disk, against a few
// microseconds of cryptography (BenchmarkSteady). Starting a session
// (X3DH both ways, the first message and the reply) takes under a
// millisecond of CPU.
//
// # Starting over: ResetIdentity, prekey pruning, telling a peer
//
// [Manager.ResetIdentity] gives the device a new identity key and deletes
// its sessions and prekeys, keeping its device id and the keys it trusts
// for peers; [Manager.PruneOneTimePreKeys] deletes one-time prekeys that
// a server handed out and nobody used.
//
// Telling a peer to start over is left to the application layer: the
// profile has no message for it, and a message the device cannot decrypt
// gives it nothing authenticated to answer with. What an application can
// do: when Decrypt reports
// ErrNoSession for a ratchet message (the device reset, lost its state,
// or deleted the session), send the sender a plain "session reset"
// notice over the transport, rate-limited per sender. The notice is not
// authenticated, so its receiver must treat it as a hint only: delete
// nothing, fetch the peer's current bundle and call StartSession, which
// reports an *IdentityError if the peer's identity key changed (the user
// then decides, with the new safety number) and otherwise makes a new
// session; a forged notice costs a bundle fetch and one session.
//
// # Files
//
//   - doc.go: this overview; config.go: Config, its defaults and checks;
//     errors.go: the sentinels and IdentityError;
//   - manager.go: Manager, New, Init, the retry loop every operation runs
//     in, and the per-address calls HasSession, DeleteSession, Devices;
//   - state.go: addrState, what an operation knows of an address, its
//     read and its checked write; lock.go: the per-address locks, which
//     also hold the cache of addrStates;
//   - encrypt.go, decrypt.go, start.go: one type and file per operation
//     (Encrypt, Decrypt with trial decryption and new responder
//     sessions, StartSession);
//   - signal_start.go, signal_encrypt.go, signal_decrypt.go: the same
//     operations' Signal parts (StartSignalSession, PreKeySignalMessage
//     wrapping and the 30-day limit, PQXDH responder sessions and the
//     Kyber prekeys marked used);
//   - fanout.go: EncryptToDevices, one plaintext for several devices;
//   - identity.go: trusted identity keys and ResetIdentity; prekeys.go:
//     Upkeep, signed prekey rotation, one-time prekey generation and
//     pruning; kyber_prekeys.go: Upkeep's Kyber prekeys and
//     SignalBundle; safety.go: safety numbers;
//   - message.go: the wire layout of messages (PROTOCOL.md section 6);
//     record.go: the session record's layout and its parsing (version 1,
//     profile v1); signal_record.go: version 2, Signal sessions.
//
// # Security notes
//
// What the store holds is secret: the identity private key, prekey
// private keys, and ratchet states whose keys decrypt the session's
// future messages and the skipped ones it keeps. Encrypting the store at
// rest is the application's job (an encrypted file system or database,
// or a store wrapper that seals records under a key from the platform's
// keystore). Deleting a record or consuming a prekey removes the store's
// copy only; see package store for what databases keep. Secrets in
// memory are wiped after use where this package owns them, best effort:
// Go gives no control over copies the runtime made.
//
// The package inherits what the protocol does not protect (PROTOCOL.md
// section 11): metadata and message lengths, the header in clear, a
// replayed first message without a one-time prekey once its session is
// no longer kept, and everything that rests on X25519 against a future
// quantum computer. What a hostile message costs is bounded as described
// under Limits above. The Manager keeps the records of recently used
// addresses parsed in memory (Config.CachedRecords), so their ratchet
// secrets stay in memory between operations; they are wiped when
// evicted, deleted or reset.
//
// Profile v1 is not wire-compatible with Signal; a Manager configured for
// ratchet.Signal is, with the limits SIGNAL.md lists (full SPQR included).
package session
