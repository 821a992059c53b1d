package store

import (
	"context"
	"errors"

	"github.com/ratchetkit/ratchetkit/senderkey"
)

// ErrNoSenderKeys is returned, wrapped, by [SenderKeysOf] for a
// transaction that does not implement [SenderKeyTx]: a store that keeps no
// group state.
var ErrNoSenderKeys = errors.New("store: the store keeps no sender keys (store.SenderKeyTx)")

// SenderKeyTx is an optional interface of a [Tx]: the sender-key records
// of group messaging (package senderkey), in the same transaction as the
// other areas. Pairwise sessions do not need them, which is why Tx does
// not require it. Package memory and package sqlstore (schema version 3,
// migration 0003_sender_keys.sql) implement it.
type SenderKeyTx interface {
	SenderKeys() SenderKeys
}

// SenderKeysOf returns tx's sender keys, or an error wrapping
// [ErrNoSenderKeys] if tx does not implement [SenderKeyTx].
func SenderKeysOf(tx Tx) (SenderKeys, error) {
	if st, ok := tx.(SenderKeyTx); ok {
		return st.SenderKeys(), nil
	}
	return nil, ErrNoSenderKeys
}

// SenderKeys holds one [senderkey.Record] per (sender address,
// distribution id), as libsignal's SenderKeyStore does, our own sending
// records under our own address. Records are the opaque bytes
// Record.Bytes makes; they contain secrets critical to forward secrecy.
//
// A group decrypt is Load, Record.Decrypt and Save in one Update: on a
// failed decrypt the record is unchanged and nothing need be saved.
type SenderKeys interface {
	// Load returns a copy of the record of sender and id, or an error
	// wrapping ErrNotFound.
	Load(ctx context.Context, sender Address, id senderkey.DistributionID) ([]byte, error)
	// Save stores a copy of record for sender and id, replacing any.
	Save(ctx context.Context, sender Address, id senderkey.DistributionID, record []byte) error
	// Delete removes the record of sender and id (a rekey of our own
	// chain, or a member leaving), or returns an error wrapping
	// ErrNotFound.
	Delete(ctx context.Context, sender Address, id senderkey.DistributionID) error
}
