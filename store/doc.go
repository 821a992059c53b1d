// Package store defines where ratchetkit keeps what must survive a restart:
// this device's identity, its signed and one-time prekeys, the identity key
// seen for each peer device, and one session record per peer device; and,
// for the Signal protocol, its Kyber prekeys and the (Kyber prekey, signed
// prekey, base key) triples that PreKey messages used ([KyberPreKeys]);
// and, for groups, the Sender Key records of package senderkey
// ([SenderKeys]).
//
// The package holds interfaces and their contracts. Implementations live in
// subpackages: [github.com/ratchetkit/ratchetkit/store/memory] (in process),
// [github.com/ratchetkit/ratchetkit/store/sqlstore] (database/sql, on
// SQLite or PostgreSQL), and any third-party one that passes the
// conformance suite in [github.com/ratchetkit/ratchetkit/store/storetest].
//
// # Transactions
//
// Every access goes through [Store.Update] or [Store.View] and a [Tx],
// because the session layer's writes come in groups that must land
// together or not at all. After a prekey message decrypts, three things
// change: the new session record is saved, the one-time prekey it used is
// removed (which is what makes that session forward secret), and the
// peer's identity key is recorded. A crash or error between those writes
// would leave a session without its prekey consumed, or a consumed prekey
// without its session, and the next message would fail. One method per
// write cannot express "all or nothing"; a closure can:
//
//	err := st.Update(ctx, func(tx store.Tx) error {
//		rec, err := tx.Sessions().Load(ctx, addr)
//		// ... decrypt with rec; on failure return the error: nothing is saved
//		if err := tx.Sessions().Save(ctx, addr, newRec); err != nil {
//			return err
//		}
//		if err := tx.PreKeys().Remove(ctx, opkID); err != nil {
//			return err // already consumed: a replay, refused
//		}
//		_, err = tx.Identities().Save(ctx, addr, peerIK)
//		return err
//	})
//
// Because a failing fn rolls everything back, "nothing is saved unless the
// operation succeeded" is what a caller gets by returning its error, not
// something each call site has to arrange. A panic in fn rolls back too.
//
// Update transactions are serializable: implementations run them one at a
// time (the SQL store also across processes sharing a database), so a
// session record read inside fn cannot change before fn writes it back, and
// of two transactions consuming the same one-time prekey exactly one
// succeeds. The cost is that writers queue: fn should do its work and
// return, not wait on the network. View transactions read one consistent
// snapshot and need not wait for a running Update.
//
// The small interfaces a Tx hands out ([Local], [Identities], [PreKeys],
// [SignedPreKeys], [Sessions]) let code ask for only what it uses; a Tx
// groups them so that one transaction spans them all.
//
// # Optional interfaces
//
// A store may offer more than the required interfaces, and the session
// layer uses it where it does: [SessionSwapper] on the Store, one
// compare-and-swap for the write of a steady-state message instead of an
// Update; [SessionsClearer] on the Sessions and [PreKeyLister] on the
// PreKeys of a Tx, which the session layer's ResetIdentity and
// PruneOneTimePreKeys need; and [KyberTx] on a Tx, the Kyber prekeys
// without which the session layer refuses the Signal protocol
// ([KyberPreKeysOf] says which); and [SenderKeyTx] on a Tx, the group
// records ([SenderKeysOf]). Package memory implements all five, package
// sqlstore the last four; the conformance suite checks those a store has.
//
// KyberTx is optional rather than a part of Tx because profile v1 never
// uses it: making it required would break every store written for profile
// v1 at compile time, to give it methods it would never be asked to run.
// As an optional interface it costs such a store nothing, and a messenger
// configured for the Signal protocol on it fails at once with
// [ErrNoKyberPreKeys] instead of at its first PreKey message.
//
// # Contracts
//
// A Load of something absent, and a Remove or Delete of something absent,
// return an error wrapping [ErrNotFound]; code tests it with errors.Is. A
// prekey is never overwritten: [PreKeys.Add], [SignedPreKeys.Add] and
// [KyberPreKeys.Add] return [ErrExists] for a stored id and change nothing.
// [KyberPreKeys.MarkUsed] returns ErrNotFound for a Kyber prekey that is
// not stored (a one-time one already used) and [ErrReusedBaseKey] for a
// triple already recorded, and changes nothing then either.
//
// Keys go in and out as the keys package's types, Kyber prekeys as package
// kyber's; stores keep private keys as their 32 raw bytes, public keys as
// their 32-byte u-coordinate, and Kyber prekeys as the blob
// [kyber.PreKey.MarshalBinary] makes. A
// session record is opaque bytes owned by the session layer. Every Load
// returns a fresh copy that the caller owns and may wipe.
//
// An [Address] names a peer device. Its Name is opaque: stores keep any
// bytes, of any length, and compare them exactly (no case folding, no
// Unicode normalization).
//
// # What this package does not protect
//
// Stored records hold secrets: private keys, and ratchet states whose
// chain keys decrypt messages not yet received. No store encrypts them at
// rest; that is the application's job (an encrypted file system, a
// database with encryption at rest, or a [Store] wrapper that seals each
// record under a key the platform's keystore holds). Deleting a record
// ends the store's copy only: the memory store overwrites bytes it drops,
// best effort, but a database may keep old versions of rows in free pages,
// a write-ahead log, replicas and backups until they are overwritten (see
// the sqlstore package for the SQLite settings that narrow this). Forward
// secrecy is therefore only as good as the storage under the store.
//
// Stores do not log. Their errors name the operation and never contain key
// bytes or record contents.
package store
