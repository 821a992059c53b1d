package store

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/ratchetkit/ratchetkit/keys"
)

var (
	// ErrNotFound is the not-found contract: every implementation must
	// return an error wrapping ErrNotFound (test it with errors.Is) from a
	// Load of something that is not stored, and from a Remove or Delete of
	// something that is not stored.
	ErrNotFound = errors.New("store: not found")

	// ErrExists is returned, wrapped, when an Add would replace a prekey
	// whose id is already stored. Prekeys are never overwritten: the public
	// half of the old one may still sit in a peer's copy of the bundle.
	ErrExists = errors.New("store: prekey id already exists")
)

// Address names one device of a peer. It is comparable, so it can key a map.
// Name is opaque to the store: any bytes, empty included, are stored and
// compared exactly.
type Address struct {
	Name     string
	DeviceID uint32
}

// String returns the address for display, as the quoted name, a dot and
// the device id: "alice".1. Quoting keeps control characters and invalid
// UTF-8 in a name from reaching a terminal or a log as they are.
func (a Address) String() string {
	b := strconv.AppendQuote(make([]byte, 0, len(a.Name)+13), a.Name)
	b = append(b, '.')
	return string(strconv.AppendUint(b, uint64(a.DeviceID), 10))
}

// Store is a transactional store for one local device. Every read and write
// happens inside fn, on the Tx it is given; fn runs at most once.
//
// Update runs fn in a read-write transaction. If fn returns nil, Update
// commits every write fn made and returns nil or the commit's error. If fn
// returns an error, Update discards every write and returns that error as
// it is. If fn panics, Update discards every write and panics again with
// the same value. If ctx is done before Update commits, it discards every
// write and returns an error wrapping ctx.Err(). Update transactions are
// serializable: while one runs, no other Update runs on the same data, so
// a value read in fn stays as read until fn returns. Waiting for another
// Update ends when ctx is done.
//
// View runs fn in a read-only transaction that sees one consistent
// snapshot of the committed data. Writes inside View fail and change
// nothing. View returns fn's error as it is.
//
// A Tx, and the stores it returns, may be used only by fn and only until
// fn returns; afterwards every method fails. fn must not call Update or
// View on the same Store: that may deadlock.
type Store interface {
	Update(ctx context.Context, fn func(tx Tx) error) error
	View(ctx context.Context, fn func(tx Tx) error) error
}

// Tx gives access to the stores of one transaction.
type Tx interface {
	Local() Local
	Identities() Identities
	PreKeys() PreKeys
	SignedPreKeys() SignedPreKeys
	Sessions() Sessions
}

// LocalIdentity is this device's long-term identity. Stores keep the
// identity key pair as its 32 raw private bytes.
type LocalIdentity struct {
	KeyPair  *keys.IdentityKeyPair
	DeviceID uint32
}

// Local holds this device's identity: one record per store.
type Local interface {
	// Load returns a new copy of the local identity, or ErrNotFound. The
	// caller owns the key pair and may Clear it.
	Load(ctx context.Context) (*LocalIdentity, error)
	// Save stores id, replacing any local identity stored before. id and
	// its KeyPair must not be nil.
	Save(ctx context.Context, id *LocalIdentity) error
}

// Identities holds the identity key trusted for each peer device. It records
// keys; deciding whether a key is acceptable is the session layer's trust
// policy (trust on first use, then refuse a different key until the
// application approves it by saving the new one).
type Identities interface {
	// Load returns the identity key saved for addr, or ErrNotFound.
	Load(ctx context.Context, addr Address) (*keys.PublicKey, error)
	// Save records key as addr's identity key. changed reports whether a
	// different key was stored for addr before; it is false for the first
	// key of an address and for the key already stored. key must not be
	// nil.
	Save(ctx context.Context, addr Address, key *keys.PublicKey) (changed bool, err error)
}

// PreKeys holds the one-time prekeys, each used in at most one X3DH
// agreement. Removing the one a session used is what makes that session's
// first messages forward secret, so the session layer removes it in the
// transaction that saves the session.
type PreKeys interface {
	// Load returns the prekey with the given id, or ErrNotFound.
	Load(ctx context.Context, id uint32) (*keys.OneTimePreKey, error)
	// Add stores every prekey of pks or, if any of their ids is stored
	// already or repeats within pks, none of them, returning ErrExists.
	Add(ctx context.Context, pks []*keys.OneTimePreKey) error
	// Remove deletes the prekey with the given id, or returns ErrNotFound:
	// of two transactions that remove the same id, one gets ErrNotFound.
	Remove(ctx context.Context, id uint32) error
	// Count returns how many prekeys are stored.
	Count(ctx context.Context) (int, error)
	// LastID returns the highest id ever added, or 0 if none was. It
	// survives the removal of that prekey, so ids above it are fresh: no
	// published bundle can still name them.
	LastID(ctx context.Context) (uint32, error)
}

// SignedPreKeyInfo describes a stored signed prekey without its secret.
type SignedPreKeyInfo struct {
	ID      uint32
	Created time.Time // to the second
}

// SignedPreKeys holds the signed prekeys. Rotation adds a new one and, after
// a grace period during which peers may still start sessions with the old
// one, removes the old one; the session layer decides when, from List.
type SignedPreKeys interface {
	// Load returns the signed prekey with the given id, or ErrNotFound.
	Load(ctx context.Context, id uint32) (*keys.SignedPreKey, error)
	// Add stores spk, or returns ErrExists if its id is stored already.
	Add(ctx context.Context, spk *keys.SignedPreKey) error
	// List describes every stored signed prekey, oldest first (by creation
	// time, then by id).
	List(ctx context.Context) ([]SignedPreKeyInfo, error)
	// Remove deletes the signed prekey with the given id, or returns
	// ErrNotFound.
	Remove(ctx context.Context, id uint32) error
}

// Sessions holds one opaque session record per peer device. The session
// layer owns the record's format; stores keep its bytes exactly, whatever
// their length, and never look inside.
type Sessions interface {
	// Load returns a copy of addr's record, or ErrNotFound. The caller owns
	// the copy and should wipe it when done.
	Load(ctx context.Context, addr Address) ([]byte, error)
	// Save stores a copy of record as addr's record, replacing any record
	// saved before.
	Save(ctx context.Context, addr Address, record []byte) error
	// Delete removes addr's record, or returns ErrNotFound.
	Delete(ctx context.Context, addr Address) error
	// Devices returns, in increasing order, the device ids that have a
	// record under name; none is an empty result, not an error.
	Devices(ctx context.Context, name string) ([]uint32, error)
}
