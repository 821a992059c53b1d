package session

import (
	"bytes"
	"context"
	"errors"
	"sync"

	"github.com/ratchetkit/ratchetkit/internal/hazmat"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/store"
)

// addrState is what a Manager knows of one address between its read and
// its write: the parsed session record, the bytes it was parsed from, and
// the trusted identity key; and what the next write adds to the record.
// An operation works on it under the address's lock. After a successful
// write it holds exactly what the store holds, so the Manager may keep it
// for the next operation (see lock.go) instead of reading the store
// again; the write still checks that the store holds what it read.
//
// States are pooled, and the functions handed to the store are bound
// once per state, so that a steady-state message allocates no closures.
type addrState struct {
	ctx  context.Context // of the running operation; nil between operations
	addr store.Address

	rec   record
	orig  []byte // the stored record as read or last written; owned
	found bool   // whether a record is stored

	trusted    [encodedKeySize]byte // Encode(trusted identity key)
	trustedKey *keys.PublicKey      // the same, decoded; nil if none
	hasTrusted bool

	// The write: the encoded record, the identity key of the session the
	// operation used or made (recorded when no key is trusted: first
	// use), and the one-time prekey a new session consumed.
	out     []byte
	dirty   bool // rec has changed since it was read or written
	peer    [encodedKeySize]byte
	consume bool
	opkID   uint32
	// markKyber asks the write to mark Kyber prekey kyberID used with
	// signed prekey spkID and base key kyberBase (a new Signal responder
	// session).
	markKyber      bool
	kyberID, spkID uint32
	kyberBase      *keys.PublicKey
	// local is Encode(this device's identity key) as a new session's
	// X3DH used it, checked in the write when checkLocal is set, so that
	// no session made under a key that ResetIdentity replaced meanwhile
	// is saved.
	local      [encodedKeySize]byte
	checkLocal bool

	keySource hazmat.KeySource
	loadFn    func(store.Tx) error
	commitFn  func(store.Tx) error
}

var statePool = sync.Pool{New: func() any {
	s := new(addrState)
	s.loadFn, s.commitFn = s.loadTx, s.commitTx
	return s
}}

func newState(addr store.Address, src hazmat.KeySource) *addrState {
	s := statePool.Get().(*addrState)
	s.addr, s.keySource = addr, src
	return s
}

// free wipes s and returns it to the pool.
func (s *addrState) free() {
	s.forget()
	s.ctx, s.keySource = nil, nil
	statePool.Put(s)
}

// forget drops what s read, wiping its secrets.
func (s *addrState) forget() {
	s.rec.wipe()
	clear(s.orig)
	s.orig = s.orig[:0]
	s.found, s.hasTrusted, s.trustedKey = false, false, nil
	s.discard()
}

// discard drops the pending write.
func (s *addrState) discard() {
	clear(s.out)
	s.out = s.out[:0]
	s.consume, s.dirty, s.checkLocal = false, false, false
	s.markKyber, s.kyberBase = false, nil
}

// load reads the address's record and trusted identity key in one
// read-only transaction.
func (s *addrState) load(ctx context.Context, st store.Store) error {
	s.forget()
	s.ctx = ctx
	return st.View(ctx, s.loadFn)
}

func (s *addrState) loadTx(tx store.Tx) error {
	rec, err := tx.Sessions().Load(s.ctx, s.addr)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return storeError("loading the session record", err)
	default:
		s.orig, s.found = rec, true
		if err := s.rec.parse(s.orig); err != nil {
			return err
		}
		if s.keySource != nil {
			for i := range s.rec.n {
				hazmat.SetRatchetKeySource(s.rec.entries[i].sess, s.keySource)
			}
		}
	}
	k, err := tx.Identities().Load(s.ctx, s.addr)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return storeError("loading the identity key", err)
	default:
		k.AppendEncode(s.trusted[:0])
		s.trustedKey, s.hasTrusted = k, true
	}
	return nil
}

// checkIdentity applies the trust policy to the identity key whose
// encoding is key.
func (s *addrState) checkIdentity(trust TrustPolicy, key []byte) error {
	if s.hasTrusted {
		if string(s.trusted[:]) == string(key) {
			return nil
		}
		return &IdentityError{Address: s.addr, Trusted: decodeKey(s.trusted[:]), Received: decodeKey(key)}
	}
	if trust == TrustExplicit {
		return &IdentityError{Address: s.addr, Received: decodeKey(key)}
	}
	return nil
}

// commit writes the record in one transaction, with the prekey
// consumption and first-use identity the operation needs, recording the
// current session's peer as that identity. It returns errRetry if the
// store no longer holds the record or the trusted key that s read. On
// success s holds what the store holds.
func (s *addrState) commit(st store.Store) error {
	s.dirty = true
	s.peer = s.rec.entries[s.rec.current].peer
	var err error
	if s.out, err = s.rec.appendBinary(s.out[:0]); err != nil {
		return err
	}
	if sw, ok := st.(store.SessionSwapper); ok && s.found && s.hasTrusted && !s.consume && !s.checkLocal && !s.markKyber {
		// A steady-state write: only the record changes.
		done, err := sw.SwapSession(s.ctx, s.addr, s.orig, s.out, s.trustedKey)
		switch {
		case err != nil:
			return storeError("saving the session record", err)
		case !done:
			return errRetry
		}
	} else if err := st.Update(s.ctx, s.commitFn); err != nil {
		return err
	}
	s.orig, s.out = s.out, s.orig
	clear(s.out)
	s.out = s.out[:0]
	s.found, s.consume, s.dirty, s.checkLocal = true, false, false, false
	s.markKyber, s.kyberBase = false, nil
	if !s.hasTrusted {
		s.trusted, s.trustedKey, s.hasTrusted = s.peer, decodeKey(s.peer[:]), true
	}
	return nil
}

func (s *addrState) commitTx(tx store.Tx) error {
	ctx := s.ctx
	cur, err := tx.Sessions().Load(ctx, s.addr)
	switch {
	case err == nil:
		same := s.found && bytes.Equal(cur, s.orig)
		clear(cur)
		if !same {
			return errRetry
		}
	case errors.Is(err, store.ErrNotFound):
		if s.found {
			return errRetry
		}
	default:
		return storeError("loading the session record", err)
	}
	if s.checkLocal {
		id, err := loadLocal(ctx, tx)
		if err != nil {
			return err
		}
		var enc [encodedKeySize]byte
		same := string(id.KeyPair.PublicKey().AppendEncode(enc[:0])) == string(s.local[:])
		id.KeyPair.Clear()
		if !same {
			return errRetry
		}
	}
	if s.consume {
		if err := tx.PreKeys().Remove(ctx, s.opkID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return errNoOPKCommit
			}
			return storeError("removing the one-time prekey", err)
		}
	}
	if s.markKyber {
		if err := s.markKyberUsed(tx); err != nil {
			return err
		}
	}
	if s.hasTrusted {
		// The trusted key may have been replaced by another writer since
		// s read it (ApproveIdentity in another process).
		k, err := tx.Identities().Load(ctx, s.addr)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return errRetry
		case err != nil:
			return storeError("loading the identity key", err)
		}
		var enc [encodedKeySize]byte
		if string(k.AppendEncode(enc[:0])) != string(s.trusted[:]) {
			return errRetry
		}
	} else {
		changed, err := tx.Identities().Save(ctx, s.addr, decodeKey(s.peer[:]))
		if err != nil {
			return storeError("saving the identity key", err)
		}
		if changed {
			// Another writer trusted a different key meanwhile; the
			// retry sees it and refuses.
			return errRetry
		}
	}
	if err := tx.Sessions().Save(ctx, s.addr, s.out); err != nil {
		return storeError("saving the session record", err)
	}
	return nil
}
