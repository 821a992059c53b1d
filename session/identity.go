package session

import (
	"context"
	"errors"

	"github.com/ratchetkit/ratchetkit/keys"
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
