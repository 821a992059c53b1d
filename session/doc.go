// Package session is what a messaging application calls to talk to its
// peers: it starts sessions from prekey bundles, encrypts and decrypts
// messages, checks identity keys, computes safety numbers and keeps the
// device's prekeys stocked, with everything persisted in a [store.Store]
// so that sessions survive restarts and crashes.
//
// It implements section 7 of ratchetkit's PROTOCOL.md (profile v1) on top
// of the x3dh and ratchet packages, and adds the parts an application
// needs around them: trust decisions, persistence, concurrency.
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
// # Persistence and concurrency
//
// Every operation reads the address's session record, does its
// cryptography without holding the store's write transaction, and then
// saves everything it changed in one [store.Store.Update]: the session
// record, the one-time prekey a new session consumed, the peer's identity
// key on first use. Nothing is saved unless the operation succeeded, and
// a result (a message from Encrypt, a plaintext from Decrypt) is returned
// only once its state is saved, so that a crash can never make the device
// reuse a message key or accept a message twice. Calls for one address
// are serialized by a lock per address; calls for different addresses run
// in parallel. If another writer (a second Manager or process on the same
// store) changed the record between the read and the write, the operation
// is redone from the new record; a one-time prekey that another session
// consumed in the meantime makes a new session fail with
// [ErrUnknownPreKey], and nothing is saved.
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
// current one then the others, and a prekey message whose EK_A matches a
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
// [ErrUntrustedIdentity], [ErrConflict] and [ErrInvalidRecord]; the ratchet's
// ratchet.ErrAuthentication, ratchet.ErrDuplicate (a message already
// read: drop it quietly), ratchet.ErrTooManySkipped and
// ratchet.ErrCounterOverflow; x3dh.ErrInvalidSignature and
// x3dh.ErrMalformed for bundles; keys.ErrInvalidPublicKey and
// keys.ErrSmallOrder for bad keys; and store errors, wrapped. The order in
// which they are checked is that of PROTOCOL.md section 8, so that
// another implementation of the profile reports the same kind for the
// same message. No error contains secret bytes.
//
// # Performance
//
// A steady-state message costs its ratchet work plus two store
// transactions: a read (the record and the trusted identity key) and a
// write (the record compared with what was read, then saved). Loading and
// saving a record allocates nothing in this package (the ratchet states
// are parsed into pooled Sessions). On the memory store a message costs
// about 1.6 times the bare ratchet (thread CPU time, BenchmarkRatio), of
// which 1.4 is the memory store's two transactions alone. On SQLite with
// synchronous=FULL the fsync of each commit dominates: about half a
// millisecond per message on an ordinary disk, against a few
// microseconds of cryptography (BenchmarkSteady). Starting a session
// (X3DH both ways, the first message and the reply) takes under a
// millisecond of CPU.
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
// quantum computer. A hostile ratchet message costs up to one trial per
// stored session (41 at most); applications exposed to floods should
// rate-limit per peer.
//
// Profile v1 is not wire-compatible with Signal.
package session
