package session

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/pqxdh"
	"github.com/ratchetkit/ratchetkit/store"
)

// PublicKyberPreKey is the public half of a Kyber prekey and its XEdDSA
// signature, for the server to hand out (a one-time one in at most one
// bundle, the last-resort one whenever no one-time one is left).
type PublicKyberPreKey struct {
	ID        uint32
	Key       *kyber.PublicKey
	Signature []byte
}

// SignalBundle returns the bundle a server hands out for this device
// under the Signal protocol: with the one-time EC prekey opk (or none if
// nil) and the Kyber prekey kpk, or the last-resort Kyber prekey if kpk
// is nil. The upload must come from a Signal Manager.
func (u *PreKeyUpload) SignalBundle(opk *PublicPreKey, kpk *PublicKyberPreKey) *pqxdh.Bundle {
	if kpk == nil {
		kpk = u.KyberLastResort
	}
	b := &pqxdh.Bundle{
		DeviceID:              u.DeviceID,
		IdentityKey:           u.IdentityKey,
		SignedPreKeyID:        u.SignedPreKeyID,
		SignedPreKey:          u.SignedPreKey,
		SignedPreKeySignature: u.SignedPreKeySignature,
	}
	if opk != nil {
		b.OneTimePreKeyID, b.OneTimePreKey = opk.ID, opk.Key
	}
	if kpk != nil {
		b.KyberPreKeyID, b.KyberPreKey, b.KyberPreKeySignature = kpk.ID, kpk.Key, kpk.Signature
	}
	return b
}

// kyberUpkeep is Upkeep's Kyber part: a new last-resort prekey if there
// is none or the newest is older than Config.SignedPreKeyRotation, the
// one-time stock refilled to Config.OneTimePreKeys when below
// Config.MinOneTimePreKeys, and last-resort prekeys replaced more than
// Config.SignedPreKeyGrace ago removed. Ids follow KyberPreKeys.LastID.
func (m *Manager) kyberUpkeep(ctx context.Context) (rotated bool, fresh []PublicKyberPreKey, err error) {
	for range maxAttempts {
		var last uint32
		var oneTime int
		var list []store.KyberPreKeyInfo
		var local *store.LocalIdentity
		err := m.st.View(ctx, func(tx store.Tx) error {
			kp, err := store.KyberPreKeysOf(tx)
			if err != nil {
				return err
			}
			if list, err = kp.List(ctx); err != nil {
				return storeError("listing Kyber prekeys", err)
			}
			if last, err = kp.LastID(ctx); err != nil {
				return storeError("reading the last Kyber prekey id", err)
			}
			local, err = loadLocal(ctx, tx)
			return err
		})
		if err != nil {
			return false, nil, err
		}
		lastResort := lastResorts(list)
		for _, k := range list {
			if !k.LastResort {
				oneTime++
			}
		}
		rotate := len(lastResort) == 0 || m.now().Sub(lastResort[len(lastResort)-1].Created) >= m.rotation
		n := 0
		if oneTime < m.otpMin {
			n = m.otpTarget - oneTime
		}
		if rotate {
			n++
		}
		if uint64(last)+uint64(n) > math.MaxUint32 {
			local.KeyPair.Clear()
			return false, nil, errors.New("session: Kyber prekey ids exhausted")
		}
		// Keys are made outside the write transaction; the id range is
		// checked again inside it.
		// The last one is the new last-resort prekey, if due.
		pks := make([]*kyber.PreKey, 0, n)
		for i := range n {
			var pk *kyber.PreKey
			if pk, err = m.newKyberPreKey(local.KeyPair, last+1+uint32(i), rotate && i == n-1); err != nil {
				break
			}
			pks = append(pks, pk)
		}
		local.KeyPair.Clear()
		if err != nil {
			for _, pk := range pks {
				pk.PrivateKey().Clear()
			}
			return false, nil, err
		}
		err = m.st.Update(ctx, func(tx store.Tx) error {
			kp, err := store.KyberPreKeysOf(tx)
			if err != nil {
				return err
			}
			if now, err := kp.LastID(ctx); err != nil {
				return storeError("reading the last Kyber prekey id", err)
			} else if now != last {
				return errRetry
			}
			if len(pks) > 0 {
				if err := kp.Add(ctx, pks); err != nil {
					return storeError("saving Kyber prekeys", err)
				}
			}
			return m.pruneLastResort(ctx, kp)
		})
		fresh = fresh[:0]
		for _, pk := range pks {
			if !pk.LastResort() {
				fresh = append(fresh, PublicKyberPreKey{ID: pk.ID(), Key: pk.PublicKey(), Signature: pk.Signature()})
			}
			pk.PrivateKey().Clear()
		}
		switch {
		case err == errRetry:
			continue
		case err != nil:
			return false, nil, err
		}
		return rotate, fresh, nil
	}
	return false, nil, ErrConflict
}

// newKyberPreKey makes Kyber prekey id signed by ik, stamped with the
// Manager's clock (kyber.GeneratePreKey stamps time.Now), so that its age
// is measured on the clock Upkeep rotates by.
func (m *Manager) newKyberPreKey(ik *keys.IdentityKeyPair, id uint32, lastResort bool) (*kyber.PreKey, error) {
	priv, err := kyber.GeneratePrivateKey()
	if err != nil {
		return nil, err
	}
	pk, err := kyber.NewPreKey(id, priv, ik.Sign(priv.PublicKey().Encode()), m.now().Truncate(time.Second), lastResort)
	if err != nil {
		priv.Clear()
	}
	return pk, err
}

// lastResorts returns the last-resort prekeys of list, oldest first.
func lastResorts(list []store.KyberPreKeyInfo) []store.KyberPreKeyInfo {
	var lr []store.KyberPreKeyInfo
	for _, k := range list {
		if k.LastResort {
			lr = append(lr, k)
		}
	}
	// Ids grow with time (LastID), so list order is creation order.
	return lr
}

// pruneLastResort removes the last-resort prekeys whose successor was
// made more than the grace period ago, as pruneSignedPreKeys does for
// signed prekeys.
func (m *Manager) pruneLastResort(ctx context.Context, kp store.KyberPreKeys) error {
	list, err := kp.List(ctx)
	if err != nil {
		return storeError("listing Kyber prekeys", err)
	}
	lr := lastResorts(list)
	now := m.now()
	for i := 0; i+1 < len(lr); i++ {
		if now.Sub(lr[i+1].Created) < m.grace {
			continue
		}
		if err := kp.Remove(ctx, lr[i].ID); err != nil {
			return storeError("removing a last-resort Kyber prekey", err)
		}
	}
	return nil
}

// currentLastResort loads the newest last-resort Kyber prekey's public
// half.
func currentLastResort(ctx context.Context, tx store.Tx) (*PublicKyberPreKey, error) {
	kp, err := store.KyberPreKeysOf(tx)
	if err != nil {
		return nil, err
	}
	list, err := kp.List(ctx)
	if err != nil {
		return nil, storeError("listing Kyber prekeys", err)
	}
	lr := lastResorts(list)
	if len(lr) == 0 {
		return nil, errors.New("session: no last-resort Kyber prekey: call Upkeep")
	}
	pk, err := kp.Load(ctx, lr[len(lr)-1].ID)
	if err != nil {
		return nil, storeError("loading the last-resort Kyber prekey", err)
	}
	defer pk.PrivateKey().Clear()
	return &PublicKyberPreKey{ID: pk.ID(), Key: pk.PublicKey(), Signature: pk.Signature()}, nil
}

// removeKyberPreKeys removes every Kyber prekey, for ResetIdentity; a
// store without them has none to remove.
func removeKyberPreKeys(ctx context.Context, tx store.Tx) error {
	kp, err := store.KyberPreKeysOf(tx)
	if err != nil {
		return nil
	}
	list, err := kp.List(ctx)
	if err != nil {
		return storeError("listing Kyber prekeys", err)
	}
	for _, k := range list {
		if err := kp.Remove(ctx, k.ID); err != nil {
			return storeError("removing a Kyber prekey", err)
		}
	}
	return nil
}
