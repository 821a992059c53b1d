package session

import (
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"sync"
	"time"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/store"
)

// Manager is what an application talks to its peers through. It keeps
// every session, identity and prekey in a store.Store and saves each
// change in one transaction, so that a crash loses nothing that was
// acknowledged: a message Encrypt returned, or a plaintext Decrypt
// returned, has its state saved.
//
// A Manager is safe for concurrent use. Calls for one address run one at
// a time, in the order they get the address's lock; calls for different
// addresses run in parallel, each doing its cryptography outside the
// store's write transaction and then writing in one short transaction.
// Several Managers (or processes) may share a store: a write that finds
// the record changed since it was read is redone from the new state.
type Manager struct {
	st store.Store
	settings

	locks addrLocks // and the cache of addrStates
	// upkeep serializes the prekey operations of this Manager.
	upkeep sync.Mutex
}

// New returns a Manager over st. It does no I/O: call Init before
// anything else on a new store.
func New(st store.Store, cfg *Config) (*Manager, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if st == nil {
		return nil, errors.New("session: nil store")
	}
	s, err := c.settings()
	if err != nil {
		return nil, err
	}
	m := &Manager{st: st, settings: s}
	m.locks.max = s.cached
	return m, nil
}

// Init makes sure the store holds this device's identity: on first use it
// generates an identity key pair and saves it with deviceID; afterwards
// it checks that the stored device id is deviceID. Under ratchet.Signal
// it refuses a store that keeps no Kyber prekeys (an error wrapping
// store.ErrNoKyberPreKeys).
func (m *Manager) Init(ctx context.Context, deviceID uint32) error {
	return m.st.Update(ctx, func(tx store.Tx) error {
		if m.proto == ratchet.Signal {
			if _, err := store.KyberPreKeysOf(tx); err != nil {
				return fmt.Errorf("session: Config.Protocol is ratchet.Signal: %w", err)
			}
		}
		id, err := tx.Local().Load(ctx)
		switch {
		case err == nil:
			id.KeyPair.Clear()
			if id.DeviceID != deviceID {
				return fmt.Errorf("session: the store belongs to device %d, not %d", id.DeviceID, deviceID)
			}
			return nil
		case !errors.Is(err, store.ErrNotFound):
			return storeError("loading the local identity", err)
		}
		ik, err := keys.GenerateIdentityKeyPair()
		if err != nil {
			return err
		}
		defer ik.Clear()
		if err := tx.Local().Save(ctx, &store.LocalIdentity{KeyPair: ik, DeviceID: deviceID}); err != nil {
			return storeError("saving the local identity", err)
		}
		return nil
	})
}

// LocalIdentity returns this device's identity key and device id. Before
// Init, the error wraps store.ErrNotFound.
func (m *Manager) LocalIdentity(ctx context.Context) (*keys.PublicKey, uint32, error) {
	var pub *keys.PublicKey
	var dev uint32
	err := m.st.View(ctx, func(tx store.Tx) error {
		id, err := loadLocal(ctx, tx)
		if err != nil {
			return err
		}
		pub, dev = id.KeyPair.PublicKey(), id.DeviceID
		id.KeyPair.Clear()
		return nil
	})
	return pub, dev, err
}

func loadLocal(ctx context.Context, tx store.Tx) (*store.LocalIdentity, error) {
	id, err := tx.Local().Load(ctx)
	if err != nil {
		return nil, storeError("loading the local identity (call Init first)", err)
	}
	return id, nil
}

// run runs attempt under addr's lock on what the Manager knows of addr:
// its cached state, or one read from the store. attempt either fails
// before changing the state or ends with s.commit. It runs again, from a
// fresh read, while it returns errRetry.
func (m *Manager) run(ctx context.Context, addr store.Address, attempt func(s *addrState) ([]byte, error)) ([]byte, error) {
	l, err := m.locks.lock(ctx, addr)
	if err != nil {
		return nil, err
	}
	s, fresh := l.state, l.state == nil
	if fresh {
		s = newState(addr, m.keySource)
	}
	out, keep, err := m.attempts(ctx, s, fresh, attempt)
	// A state without a record is not worth a place: hostile messages
	// from unknown addresses would fill the cache with them.
	if !keep || !s.found {
		// Freed once unlock has taken it out of the lock's entry.
		defer s.free()
		s = nil
	} else {
		s.ctx = nil
	}
	if evicted := m.locks.unlock(addr, l, s); evicted != nil {
		evicted.free()
	}
	return out, err
}

// attempts runs attempt on s, from a fresh read of the store whenever s
// holds nothing or another writer changed the record, and reports
// whether s is left holding what the store holds. fresh says that s
// holds nothing yet.
func (m *Manager) attempts(ctx context.Context, s *addrState, fresh bool, attempt func(s *addrState) ([]byte, error)) (out []byte, keep bool, err error) {
	s.ctx = ctx
	for try := range maxAttempts {
		if fresh {
			if err := s.load(ctx, m.st); err != nil {
				return nil, false, err
			}
		}
		out, err := attempt(s)
		switch {
		case err == nil:
			return out, true, nil
		case err != errRetry:
			// Unless the failed step was the write, nothing changed:
			// what s holds is still what was read.
			keep := !s.dirty
			s.discard()
			return nil, keep, err
		}
		fresh = true
		if err := backoff(ctx, try); err != nil {
			return nil, false, err
		}
	}
	return nil, false, ErrConflict
}

// backoff waits a random time that grows with the attempt, so that
// writers competing for one record (several processes on one store) stop
// colliding: up to 50 µs after the first conflict, doubling, at most
// 6.4 ms.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(mathrand.Int64N(int64(50*time.Microsecond) << min(attempt, 7)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// withLock runs f under addr's lock, for an operation that changes what
// is stored for addr without an addrState: the cached state is dropped.
// f must not call withLock or run.
func (m *Manager) withLock(ctx context.Context, addr store.Address, f func() error) error {
	l, err := m.locks.lock(ctx, addr)
	if err != nil {
		return err
	}
	cached := l.state
	err = f()
	if evicted := m.locks.unlock(addr, l, nil); evicted != nil {
		evicted.free()
	}
	if cached != nil {
		cached.free()
	}
	return err
}

// HasSession reports whether a session with addr is stored.
func (m *Manager) HasSession(ctx context.Context, addr store.Address) (bool, error) {
	var ok bool
	err := m.st.View(ctx, func(tx store.Tx) error {
		rec, err := tx.Sessions().Load(ctx, addr)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil
		case err != nil:
			return storeError("loading the session record", err)
		}
		clear(rec)
		ok = true
		return nil
	})
	return ok, err
}

// DeleteSession deletes every session with addr, current and archived.
// The address's trusted identity key stays. Deleting what does not exist
// is not an error.
func (m *Manager) DeleteSession(ctx context.Context, addr store.Address) error {
	return m.withLock(ctx, addr, func() error {
		return m.st.Update(ctx, func(tx store.Tx) error {
			return deleteRecord(ctx, tx, addr)
		})
	})
}

func deleteRecord(ctx context.Context, tx store.Tx, addr store.Address) error {
	err := tx.Sessions().Delete(ctx, addr)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return storeError("deleting the session record", err)
	}
	return nil
}

// Devices returns the device ids of name that this device has sessions
// with, in increasing order: the addresses a message to that user goes to.
func (m *Manager) Devices(ctx context.Context, name string) ([]uint32, error) {
	var devs []uint32
	err := m.st.View(ctx, func(tx store.Tx) error {
		var err error
		if devs, err = tx.Sessions().Devices(ctx, name); err != nil {
			return storeError("listing devices", err)
		}
		return nil
	})
	return devs, err
}
