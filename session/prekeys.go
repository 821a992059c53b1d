package session

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// PublicPreKey is the public half of a one-time prekey, for the server to
// hand out in at most one bundle.
type PublicPreKey struct {
	ID  uint32
	Key *keys.PublicKey
}

// PreKeyUpload is the public material a device publishes so that peers can
// start sessions with it while it is offline. Nothing in it is secret.
type PreKeyUpload struct {
	IdentityKey           *keys.PublicKey
	DeviceID              uint32
	SignedPreKeyID        uint32
	SignedPreKey          *keys.PublicKey
	SignedPreKeySignature []byte
	// Rotated reports that the signed prekey is new: the server must hand
	// it out instead of the previous one.
	Rotated bool
	// OneTimePreKeys are new one-time prekeys, to add to those the server
	// holds already.
	OneTimePreKeys []PublicPreKey

	// Signal protocol only (Config.Protocol ratchet.Signal), nil or false
	// otherwise. KyberLastResort is the current last-resort Kyber prekey,
	// new if KyberRotated; KyberOneTimePreKeys are new one-time Kyber
	// prekeys, to add to those the server holds already.
	KyberLastResort     *PublicKyberPreKey
	KyberRotated        bool
	KyberOneTimePreKeys []PublicKyberPreKey
}

// Bundle returns the bundle a server hands out for this device, with the
// one-time prekey opk, or without one if opk is nil.
func (u *PreKeyUpload) Bundle(opk *PublicPreKey) *x3dh.Bundle {
	b := &x3dh.Bundle{
		IdentityKey:           u.IdentityKey,
		SignedPreKeyID:        u.SignedPreKeyID,
		SignedPreKey:          u.SignedPreKey,
		SignedPreKeySignature: u.SignedPreKeySignature,
	}
	if opk != nil {
		b.OneTimePreKeyID, b.OneTimePreKey = opk.ID, opk.Key
	}
	return b
}

// PreKeyStatus describes the device's prekeys.
type PreKeyStatus struct {
	// OneTimePreKeys is the number of one-time prekeys in stock, and Low
	// whether that is below Config.MinOneTimePreKeys.
	OneTimePreKeys int
	Low            bool
	// SignedPreKeys is the number of signed prekeys kept, the current one
	// and those in their grace period.
	SignedPreKeys int
	// SignedPreKeyID and SignedPreKeyCreated describe the current (newest)
	// signed prekey; RotationDue reports that there is none or that it is
	// older than Config.SignedPreKeyRotation.
	SignedPreKeyID      uint32
	SignedPreKeyCreated time.Time
	RotationDue         bool
}

// PreKeyStatus reports the state of the prekeys, so that the application
// can tell when to call Upkeep or upload more.
func (m *Manager) PreKeyStatus(ctx context.Context) (*PreKeyStatus, error) {
	st := new(PreKeyStatus)
	err := m.st.View(ctx, func(tx store.Tx) error {
		n, err := tx.PreKeys().Count(ctx)
		if err != nil {
			return storeError("counting one-time prekeys", err)
		}
		list, err := tx.SignedPreKeys().List(ctx)
		if err != nil {
			return storeError("listing signed prekeys", err)
		}
		st.OneTimePreKeys, st.Low = n, n < m.otpMin
		st.SignedPreKeys = len(list)
		if len(list) == 0 {
			st.RotationDue = true
			return nil
		}
		cur := list[len(list)-1]
		st.SignedPreKeyID, st.SignedPreKeyCreated = cur.ID, cur.Created
		st.RotationDue = m.now().Sub(cur.Created) >= m.rotation
		return nil
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// Upkeep does the routine prekey work, and is meant to run at start-up and
// then every few hours: it makes a new signed prekey if there is none or
// the current one is due for rotation, deletes signed prekeys whose grace
// period has passed, and refills the one-time prekeys to
// Config.OneTimePreKeys if fewer than Config.MinOneTimePreKeys are left.
// It returns what to upload: the current signed prekey (new if Rotated)
// and the new one-time prekeys, if any. Under ratchet.Signal it does the
// same for Kyber prekeys: a last-resort Kyber prekey, rotated and kept
// for the grace period like the signed prekey, and a stock of one-time
// Kyber prekeys refilled like the one-time EC prekeys.
func (m *Manager) Upkeep(ctx context.Context) (*PreKeyUpload, error) {
	m.upkeep.Lock()
	defer m.upkeep.Unlock()
	st, err := m.PreKeyStatus(ctx)
	if err != nil {
		return nil, err
	}
	rotated := false
	if st.RotationDue {
		if err := m.rotate(ctx); err != nil {
			return nil, err
		}
		rotated = true
	}
	if err := m.pruneSignedPreKeys(ctx); err != nil {
		return nil, err
	}
	var fresh []PublicPreKey
	if st.Low {
		if fresh, err = m.generate(ctx, m.otpTarget-st.OneTimePreKeys); err != nil {
			return nil, err
		}
	}
	var kyberRotated bool
	var kyberFresh []PublicKyberPreKey
	if m.proto == ratchet.Signal {
		if kyberRotated, kyberFresh, err = m.kyberUpkeep(ctx); err != nil {
			return nil, err
		}
	}
	u, err := m.PreKeyUpload(ctx)
	if err != nil {
		return nil, err
	}
	u.Rotated, u.OneTimePreKeys = rotated, fresh
	u.KyberRotated, u.KyberOneTimePreKeys = kyberRotated, kyberFresh
	return u, nil
}

// PreKeyUpload returns the device's identity key and current signed
// prekey (and, under ratchet.Signal, last-resort Kyber prekey), without
// one-time prekeys: what a server needs besides the
// one-time prekeys, for example after it lost its copy.
func (m *Manager) PreKeyUpload(ctx context.Context) (*PreKeyUpload, error) {
	u := new(PreKeyUpload)
	err := m.st.View(ctx, func(tx store.Tx) error {
		id, err := loadLocal(ctx, tx)
		if err != nil {
			return err
		}
		u.IdentityKey, u.DeviceID = id.KeyPair.PublicKey(), id.DeviceID
		id.KeyPair.Clear()
		list, err := tx.SignedPreKeys().List(ctx)
		if err != nil {
			return storeError("listing signed prekeys", err)
		}
		if len(list) == 0 {
			return errors.New("session: no signed prekey: call Upkeep or RotateSignedPreKey")
		}
		spk, err := tx.SignedPreKeys().Load(ctx, list[len(list)-1].ID)
		if err != nil {
			return storeError("loading the signed prekey", err)
		}
		u.SignedPreKeyID, u.SignedPreKey, u.SignedPreKeySignature = spk.ID(), spk.PublicKey(), spk.Signature()
		spk.PrivateKey().Clear()
		if m.proto == ratchet.Signal {
			u.KyberLastResort, err = currentLastResort(ctx, tx)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// GenerateOneTimePreKeys makes n new one-time prekeys, with ids above any
// this device ever used (store LastID), saves them, and returns their
// public halves for upload.
func (m *Manager) GenerateOneTimePreKeys(ctx context.Context, n int) ([]PublicPreKey, error) {
	m.upkeep.Lock()
	defer m.upkeep.Unlock()
	return m.generate(ctx, n)
}

func (m *Manager) generate(ctx context.Context, n int) ([]PublicPreKey, error) {
	if n <= 0 {
		return nil, nil
	}
	for range maxAttempts {
		var last uint32
		err := m.st.View(ctx, func(tx store.Tx) error {
			var err error
			if last, err = tx.PreKeys().LastID(ctx); err != nil {
				return storeError("reading the last prekey id", err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if uint64(last)+uint64(n) > math.MaxUint32 {
			return nil, errors.New("session: one-time prekey ids exhausted")
		}
		// Keys are made outside the write transaction, which other
		// addresses' commits wait for; the id range is checked again
		// inside it.
		pks, err := keys.GenerateOneTimePreKeys(last+1, n)
		if err != nil {
			return nil, err
		}
		err = m.st.Update(ctx, func(tx store.Tx) error {
			now, err := tx.PreKeys().LastID(ctx)
			if err != nil {
				return storeError("reading the last prekey id", err)
			}
			if now != last {
				return errRetry
			}
			if err := tx.PreKeys().Add(ctx, pks); err != nil {
				return storeError("saving one-time prekeys", err)
			}
			return nil
		})
		pubs := make([]PublicPreKey, len(pks))
		for i, pk := range pks {
			pubs[i] = PublicPreKey{ID: pk.ID(), Key: pk.PublicKey()}
			pk.PrivateKey().Clear()
		}
		switch {
		case err == errRetry:
			continue
		case err != nil:
			return nil, err
		}
		return pubs, nil
	}
	return nil, ErrConflict
}

// RotateSignedPreKey makes a new signed prekey the current one, whatever
// the age of the current one (for example after a suspected compromise),
// and deletes those whose grace period has passed. Call PreKeyUpload
// for the material to publish.
func (m *Manager) RotateSignedPreKey(ctx context.Context) error {
	m.upkeep.Lock()
	defer m.upkeep.Unlock()
	if err := m.rotate(ctx); err != nil {
		return err
	}
	return m.pruneSignedPreKeys(ctx)
}

// rotate adds a signed prekey whose id follows the highest stored one.
func (m *Manager) rotate(ctx context.Context) error {
	for range maxAttempts {
		var id uint32
		var ik *keys.IdentityKeyPair
		err := m.st.View(ctx, func(tx store.Tx) error {
			local, err := loadLocal(ctx, tx)
			if err != nil {
				return err
			}
			ik = local.KeyPair
			list, err := tx.SignedPreKeys().List(ctx)
			if err != nil {
				return storeError("listing signed prekeys", err)
			}
			id, err = nextSignedPreKeyID(list)
			return err
		})
		if err != nil {
			return err
		}
		spk, priv, err := m.newSignedPreKey(ik, id)
		ik.Clear()
		if err != nil {
			return err
		}
		err = m.st.Update(ctx, func(tx store.Tx) error {
			if err := tx.SignedPreKeys().Add(ctx, spk); err != nil {
				if errors.Is(err, store.ErrExists) {
					return errRetry
				}
				return storeError("saving the signed prekey", err)
			}
			return nil
		})
		priv.Clear()
		if err != errRetry {
			return err
		}
	}
	return ErrConflict
}

// nextSignedPreKeyID returns the id after the highest in list, or 1.
func nextSignedPreKeyID(list []store.SignedPreKeyInfo) (uint32, error) {
	var id uint32 = 1
	for _, s := range list {
		if s.ID >= id {
			if s.ID == math.MaxUint32 {
				return 0, errors.New("session: signed prekey ids exhausted")
			}
			id = s.ID + 1
		}
	}
	return id, nil
}

// newSignedPreKey makes signed prekey id, signed by ik. The caller
// clears the returned private key once the prekey is saved.
func (m *Manager) newSignedPreKey(ik *keys.IdentityKeyPair, id uint32) (*keys.SignedPreKey, *keys.PrivateKey, error) {
	priv, err := keys.GeneratePrivateKey()
	if err != nil {
		return nil, nil, err
	}
	spk, err := keys.NewSignedPreKey(id, priv, ik.Sign(priv.PublicKey().Encode()), m.now())
	if err != nil {
		priv.Clear()
		return nil, nil, err
	}
	return spk, priv, nil
}

// pruneSignedPreKeys deletes every signed prekey that was replaced more
// than the grace period ago. A key counts as replaced when the next newer
// one was created.
func (m *Manager) pruneSignedPreKeys(ctx context.Context) error {
	return m.st.Update(ctx, func(tx store.Tx) error {
		list, err := tx.SignedPreKeys().List(ctx)
		if err != nil {
			return storeError("listing signed prekeys", err)
		}
		now := m.now()
		for i := 0; i+1 < len(list); i++ {
			if now.Sub(list[i+1].Created) < m.grace {
				continue
			}
			if err := tx.SignedPreKeys().Remove(ctx, list[i].ID); err != nil {
				return storeError(fmt.Sprintf("removing signed prekey %d", list[i].ID), err)
			}
		}
		return nil
	})
}

// PruneOneTimePreKeys deletes the stored one-time prekeys for which keep
// returns false, and returns how many it deleted. It is for the prekeys
// that a server handed out in bundles that nobody used: a one-time
// prekey is removed when a prekey message consumes it, but one whose
// bundle was fetched and never used (a client that gave up, or someone
// draining the server's stock) stays stored, with its private key,
// forever.
//
// The application decides, typically from its server's list of the
// device's one-time prekeys that it has not handed out yet: keep those,
// those uploaded since the list was made, and those handed out recently
// enough that their prekey message may still be on its way (a grace
// period like Config.SignedPreKeyGrace's). A prekey message that names a
// pruned key fails with ErrUnknownPreKey; its sender has to fetch a new
// bundle. keep runs inside the store's write transaction and must not
// call the Manager. Ids of pruned keys are never reused (store LastID).
//
// The store's PreKeys must implement store.PreKeyLister (package memory
// and package sqlstore do).
func (m *Manager) PruneOneTimePreKeys(ctx context.Context, keep func(id uint32) bool) (int, error) {
	if keep == nil {
		return 0, errors.New("session: nil keep function")
	}
	m.upkeep.Lock()
	defer m.upkeep.Unlock()
	n := 0
	err := m.st.Update(ctx, func(tx store.Tx) error {
		n = 0
		opks, ok := tx.PreKeys().(store.PreKeyLister)
		if !ok {
			return errNoReset
		}
		return removeOneTimePreKeys(ctx, tx, opks, keep, &n)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// removeOneTimePreKeys removes the listed one-time prekeys that keep
// refuses, counting them in *n if n is not nil.
func removeOneTimePreKeys(ctx context.Context, tx store.Tx, l store.PreKeyLister, keep func(uint32) bool, n *int) error {
	ids, err := l.IDs(ctx)
	if err != nil {
		return storeError("listing one-time prekeys", err)
	}
	for _, id := range ids {
		if keep(id) {
			continue
		}
		if err := tx.PreKeys().Remove(ctx, id); err != nil {
			return storeError("removing a one-time prekey", err)
		}
		if n != nil {
			*n++
		}
	}
	return nil
}
