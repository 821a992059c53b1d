package store

import (
	"context"
	"errors"
	"time"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
)

var (
	// ErrReusedBaseKey is returned, wrapped, by [KyberPreKeys.MarkUsed]
	// when a last-resort Kyber prekey was already used with the same
	// signed prekey and base key: a replayed PreKey message, which
	// libsignal refuses ("reused base key").
	ErrReusedBaseKey = errors.New("store: Kyber prekey already used with this signed prekey and base key")

	// ErrNoKyberPreKeys is returned, wrapped, by [KyberPreKeysOf] for a
	// transaction that does not implement [KyberTx]: a store that can
	// serve profile v1 but not the Signal protocol.
	ErrNoKyberPreKeys = errors.New("store: the store keeps no Kyber prekeys (store.KyberTx)")
)

// KyberTx is an optional interface of a [Tx]: the Kyber prekeys that the
// Signal protocol's PQXDH needs, in the same transaction as the other
// areas. Profile v1 does not use them, which is why Tx does not require
// it: a store written for profile v1 keeps working unchanged, and the
// session layer refuses the Signal protocol on it (see [KyberPreKeysOf]).
// Package memory and package sqlstore implement it.
type KyberTx interface {
	KyberPreKeys() KyberPreKeys
}

// KyberPreKeysOf returns tx's Kyber prekeys, or an error wrapping
// [ErrNoKyberPreKeys] if tx does not implement [KyberTx].
func KyberPreKeysOf(tx Tx) (KyberPreKeys, error) {
	if kt, ok := tx.(KyberTx); ok {
		return kt.KyberPreKeys(), nil
	}
	return nil, ErrNoKyberPreKeys
}

// KyberPreKeyInfo describes a stored Kyber prekey without its secret.
type KyberPreKeyInfo struct {
	ID         uint32
	LastResort bool
	// Used reports that a PreKey message used this last-resort prekey
	// (MarkUsed); one-time prekeys are removed when used instead.
	Used    bool
	Created time.Time // to the second
}

// KyberPreKeys holds the Kyber prekeys ([kyber.PreKey]), one-time and last
// resort, under one space of uint32 ids (libsignal's KyberPreKeyId), and
// the record of which (Kyber prekey, signed prekey, base key) triples
// PreKey messages have used.
//
// Stores keep each prekey as the blob [kyber.PreKey.MarshalBinary] makes
// (its private key is the 64-byte seed) and the prekey's id, kind and
// creation time beside it, so that List need not parse blobs.
//
// # The used triples
//
// After a PreKey message decrypts, the session layer calls MarkUsed in the
// transaction that saves the new session, as libsignal calls its store's
// mark_kyber_pre_key_used. A one-time prekey is then removed, which makes
// a replay of the message fail to find it. A last-resort prekey stays, for
// every peer that finds no one-time prekey, so a replay would find it: the
// store records the triple instead and refuses it the second time with
// [ErrReusedBaseKey]. A replay needs the same signed prekey and base key,
// since another base key is another session and another signed prekey
// gives other keys.
//
// libsignal's own in-memory store keeps the triples for ever. Here they
// are forgotten with the keys they name: [KyberPreKeys.Remove] forgets a
// Kyber prekey's triples, and [SignedPreKeys.Remove] (on a store that
// implements KyberTx) forgets those naming the signed prekey. A replay
// after either removal fails anyway, because it needs the removed key.
// So the table holds at most one triple per PreKey message accepted on a
// last-resort prekey while that prekey and its signed prekey are both
// kept, which the rotation of either bounds: it grows no faster than the
// session records those messages made.
type KyberPreKeys interface {
	// Load returns the Kyber prekey with the given id, or ErrNotFound.
	// The caller owns the returned prekey.
	Load(ctx context.Context, id uint32) (*kyber.PreKey, error)
	// Add stores every prekey of pks or, if any of their ids is stored
	// already or repeats within pks, none of them, returning ErrExists.
	// Prekeys are never overwritten, whatever their kind.
	Add(ctx context.Context, pks []*kyber.PreKey) error
	// Remove deletes the prekey with the given id and forgets the used
	// triples that name it, or returns ErrNotFound.
	Remove(ctx context.Context, id uint32) error
	// List describes every stored Kyber prekey in increasing order of id;
	// none is an empty result, not an error.
	List(ctx context.Context) ([]KyberPreKeyInfo, error)
	// Count returns how many one-time and how many last-resort prekeys
	// are stored.
	Count(ctx context.Context) (oneTime, lastResort int, err error)
	// LastID returns the highest id ever added, or 0 if none was. Like
	// PreKeys.LastID it survives the removal of that prekey, so ids above
	// it are fresh.
	LastID(ctx context.Context) (uint32, error)
	// MarkUsed records that a PreKey message used Kyber prekey id with
	// signed prekey signedID and base key baseKey. A one-time prekey is
	// removed. A last-resort prekey is kept and marked used, and the
	// triple recorded; if it was recorded already, MarkUsed returns
	// ErrReusedBaseKey and changes nothing. An id that is not stored is
	// ErrNotFound: of two transactions that use the same one-time prekey,
	// or the same triple, one fails. baseKey must not be nil.
	MarkUsed(ctx context.Context, id, signedID uint32, baseKey *keys.PublicKey) error
}
