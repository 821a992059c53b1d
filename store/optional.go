package store

import (
	"context"

	"github.com/ratchetkit/ratchetkit/keys"
)

// SessionSwapper is an optional interface of a Store: the write of a
// steady-state message as one compare-and-swap, which a store can do
// much more cheaply than an Update transaction that loads the record,
// compares it and saves the new one. The session layer uses it for
// writes that change nothing but the record of an address whose
// identity key is trusted; for every other write, and with stores that
// do not implement it, it uses Update.
type SessionSwapper interface {
	// SwapSession replaces addr's session record with a copy of record if
	// the stored record equals old and the identity key stored for addr
	// equals trusted, and reports whether it did. The check and the
	// write are one atomic step with respect to Update and View: an
	// Update that read addr's record or identity key either commits
	// before it or sees its result. With ok false or an error nothing
	// changed. If ctx is done first, it returns an error wrapping
	// ctx.Err().
	SwapSession(ctx context.Context, addr Address, old, record []byte, trusted *keys.PublicKey) (ok bool, err error)
}

// SessionsClearer is an optional interface of the Sessions a Tx returns:
// removing every session record at once, which the session layer's
// ResetIdentity needs (the store interfaces cannot list the names that
// have records).
type SessionsClearer interface {
	// DeleteAll removes every session record. Removing none is not an
	// error.
	DeleteAll(ctx context.Context) error
}

// PreKeyLister is an optional interface of the PreKeys a Tx returns:
// listing the stored one-time prekeys, which the session layer's
// PruneOneTimePreKeys needs.
type PreKeyLister interface {
	// IDs returns the ids of the stored one-time prekeys in increasing
	// order; none is an empty result, not an error.
	IDs(ctx context.Context) ([]uint32, error)
}
