package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/ratchetkit/ratchetkit/pqxdh"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/store"
)

// StartSignalSession is StartSession for a Manager configured with
// Config.Protocol ratchet.Signal: it runs PQXDH with the peer's bundle
// (both prekey signatures checked, pqxdh.ErrInvalidSignature, then
// pqxdh.ErrMalformed or keys.ErrSmallOrder) and makes the resulting
// session the current one for addr; older sessions are archived. Until
// the peer answers, Encrypt sends PreKeySignalMessages, for at most
// MaxUnacknowledgedAge; the identity checks and what is saved are those
// of StartSession.
//
// It is a method of its own, rather than StartSession taking either
// bundle, so that profile v1 callers keep their signature and a bundle
// of the wrong protocol is a compile-time error, not a run-time one.
// On a profile v1 Manager it returns ErrWrongProtocol.
func (m *Manager) StartSignalSession(ctx context.Context, addr store.Address, b *pqxdh.Bundle) error {
	if m.proto != ratchet.Signal {
		return fmt.Errorf("%w: StartSignalSession on a profile v1 Manager", ErrWrongProtocol)
	}
	if b == nil || b.IdentityKey == nil {
		return fmt.Errorf("%w: bundle without an identity key", pqxdh.ErrMalformed)
	}
	st := signalStart{m: m, bundle: b}
	_, err := m.run(ctx, addr, st.attempt)
	return err
}

// signalStart is one StartSignalSession call.
type signalStart struct {
	m      *Manager
	bundle *pqxdh.Bundle
}

func (st *signalStart) attempt(s *addrState) ([]byte, error) {
	m, b := st.m, st.bundle
	var e entry
	local, err := m.beginStart(s, &e, b.IdentityKey, b.Verify)
	if err != nil {
		return nil, err
	}
	localPub := local.KeyPair.PublicKey()
	in, err := pqxdh.Initiate(local.KeyPair, b)
	local.KeyPair.Clear()
	if err != nil {
		return nil, err
	}
	defer in.Clear()
	if e.sess, err = ratchet.NewSignalInitiator(&in.Keys, localPub, b.IdentityKey, b.SignedPreKey, &m.ratchet); err != nil {
		return nil, err
	}
	h := &in.Header
	e.role = roleInitiator
	e.sig = signalHeader{
		flags:   sigFlagPending,
		spkID:   h.SignedPreKeyID,
		kyberID: h.KyberPreKeyID,
		created: m.now().Unix(),
		local:   s.local,
		ct:      bytes.Clone(h.KyberCiphertext),
	}
	h.BaseKey.AppendEncode(e.sig.baseKey[:0])
	if h.HasOneTimePreKey {
		e.sig.flags |= sigFlagOPK
		e.sig.opkID = h.OneTimePreKeyID
	}
	s.rec.add(&e, m.maxArchived)
	return nil, s.commit(m.st)
}

// checkRecord refuses a stored record of the other protocol, and gives
// an address without one a record of the Manager's protocol.
func (m *Manager) checkRecord(s *addrState) error {
	if !s.found || s.rec.n == 0 {
		s.rec.proto = m.proto
		return nil
	}
	if s.rec.proto != m.proto {
		return errOtherProtocol
	}
	return nil
}

// loadLocalIdentity reads this device's identity in a read-only
// transaction of its own.
func (m *Manager) loadLocalIdentity(s *addrState) (*store.LocalIdentity, error) {
	var local *store.LocalIdentity
	err := m.st.View(s.ctx, func(tx store.Tx) error {
		var err error
		local, err = loadLocal(s.ctx, tx)
		return err
	})
	return local, err
}

// ErrWrongProtocol reports a call that belongs to the other protocol than
// the Manager's Config.Protocol: StartSession on a Signal Manager,
// StartSignalSession on a profile v1 one.
var ErrWrongProtocol = errors.New("session: call for the other protocol than Config.Protocol")

var errOtherProtocol = fmt.Errorf("%w: the address's sessions are of the other protocol (Config.Protocol); DeleteSession to start over", ErrInvalidRecord)
