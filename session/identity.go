package session

import (
	"context"
	"errors"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/store"
)

// Identity returns the identity key trusted for addr; the error wraps
// store.ErrNotFound if there is none.
func (m *Manager) Identity(ctx context.Context, addr store.Address) (*keys.PublicKey, error) {
	var k *keys.PublicKey
	err := m.st.View(ctx, func(tx store.Tx) error {
		var err error
		if k, err = tx.Identities().Load(ctx, addr); err != nil {
			return storeError("loading the identity key", err)
		}
		return nil
	})
	return k, err
}

// ApproveIdentity records key as the trusted identity key of addr,
// replacing any other: the application's answer to an *IdentityError,
// once the user has accepted the new key (ideally after comparing safety
// numbers). Sessions made with another key stay stored but are not used
// while that key is not the trusted one.
func (m *Manager) ApproveIdentity(ctx context.Context, addr store.Address, key *keys.PublicKey) error {
	if key == nil {
		return errors.New("session: nil identity key")
	}
	return m.withLock(ctx, addr, func() error {
		return m.st.Update(ctx, func(tx store.Tx) error {
			if _, err := tx.Identities().Save(ctx, addr, key); err != nil {
				return storeError("saving the identity key", err)
			}
			return nil
		})
	})
}

// errNoReset reports a store without the optional interfaces that
// ResetIdentity and PruneOneTimePreKeys need.
var errNoReset = errors.New("session: the store cannot list prekeys or clear sessions (store.PreKeyLister, store.SessionsClearer)")

// ResetIdentity starts this device over under a new identity key, as a
// reinstall would, but keeps its device id and its trust decisions about
// peers. In one transaction it replaces the identity key pair, deletes
// every session (current and archived, with every peer), every one-time
// prekey and every signed prekey, all of which belong to the old
// identity, and saves a new signed prekey, signed by the new key, whose
// id follows the old ones (so that no bundle still held anywhere names
// it). The identity keys trusted for peers stay. It then makes
// Config.OneTimePreKeys new one-time prekeys, with ids above every old
// one, and returns what to publish, with Rotated set: the server must
// replace the device's whole bundle and drop every one-time prekey it
// holds for the device. If it fails after the transaction, Upkeep makes
// the one-time prekeys.
//
// What peers see: every session they have with this device stops
// working. Their ratchet messages fail here with ErrNoSession, their
// prekey messages made from an old bundle with ErrUnknownPreKey, and
// they learn of it only if the application tells them (see "Starting
// over" in the package documentation). Once they fetch the
// new bundle, StartSession reports an *IdentityError, since the device's
// identity key changed: they approve the new key, ideally after
// comparing the new safety number.
//
// The store's transactions must implement store.SessionsClearer and
// store.PreKeyLister (package memory and package sqlstore do). A call on
// this Manager that runs meanwhile takes effect before the reset or after
// it (then under the new key), or fails: no session made under the old
// key is saved after the reset. The old key pair and the deleted secrets are wiped from the store's
// copy, best effort (see package store on what databases keep).
func (m *Manager) ResetIdentity(ctx context.Context) (*PreKeyUpload, error) {
	m.upkeep.Lock()
	defer m.upkeep.Unlock()
	ik, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		return nil, err
	}
	defer ik.Clear()
	err = m.st.Update(ctx, func(tx store.Tx) error {
		sessions, ok1 := tx.Sessions().(store.SessionsClearer)
		opks, ok2 := tx.PreKeys().(store.PreKeyLister)
		if !ok1 || !ok2 {
			return errNoReset
		}
		old, err := loadLocal(ctx, tx)
		if err != nil {
			return err
		}
		old.KeyPair.Clear()
		if err := sessions.DeleteAll(ctx); err != nil {
			return storeError("deleting the session records", err)
		}
		if err := removeOneTimePreKeys(ctx, tx, opks, func(uint32) bool { return false }, nil); err != nil {
			return err
		}
		if err := removeKyberPreKeys(ctx, tx); err != nil {
			return err
		}
		list, err := tx.SignedPreKeys().List(ctx)
		if err != nil {
			return storeError("listing signed prekeys", err)
		}
		id, err := nextSignedPreKeyID(list)
		if err != nil {
			return err
		}
		for _, s := range list {
			if err := tx.SignedPreKeys().Remove(ctx, s.ID); err != nil {
				return storeError("removing a signed prekey", err)
			}
		}
		spk, priv, err := m.newSignedPreKey(ik, id)
		if err != nil {
			return err
		}
		defer priv.Clear()
		if err := tx.SignedPreKeys().Add(ctx, spk); err != nil {
			return storeError("saving the signed prekey", err)
		}
		if err := tx.Local().Save(ctx, &store.LocalIdentity{KeyPair: ik, DeviceID: old.DeviceID}); err != nil {
			return storeError("saving the local identity", err)
		}
		return nil
	})
	// Whatever the outcome, nothing cached may outlive the old identity.
	for _, s := range m.locks.dropAll() {
		s.free()
	}
	if err != nil {
		return nil, err
	}
	fresh, err := m.generate(ctx, m.otpTarget)
	if err != nil {
		return nil, err
	}
	var kyberFresh []PublicKyberPreKey
	if m.proto == ratchet.Signal {
		if _, kyberFresh, err = m.kyberUpkeep(ctx); err != nil {
			return nil, err
		}
	}
	u, err := m.PreKeyUpload(ctx)
	if err != nil {
		return nil, err
	}
	u.Rotated, u.OneTimePreKeys = true, fresh
	u.KyberRotated, u.KyberOneTimePreKeys = m.proto == ratchet.Signal, kyberFresh
	return u, nil
}
