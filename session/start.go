package session

import (
	"context"
	"fmt"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// StartSession runs X3DH with the peer's bundle and makes the resulting
// session the current one for addr; older sessions are archived. Until
// the peer answers, Encrypt sends prekey messages, from which the peer
// can start its side of the session.
//
// The bundle's identity key is checked first, against the key trusted
// for addr: a different one is an *IdentityError (reported only for a
// bundle that passes x3dh.Bundle.Verify, so that nobody is asked to
// approve a forged key). Then x3dh.Initiate checks the bundle:
// x3dh.ErrMalformed, x3dh.ErrSmallOrder, x3dh.ErrInvalidSignature. On
// success the session and, on first use, the peer's identity key are
// saved in one transaction; on any error nothing is.
func (m *Manager) StartSession(ctx context.Context, addr store.Address, b *x3dh.Bundle) error {
	if m.proto != ratchet.ProfileV1 {
		return fmt.Errorf("%w: StartSession on a Signal Manager (use StartSignalSession)", ErrWrongProtocol)
	}
	if b == nil || b.IdentityKey == nil {
		return fmt.Errorf("%w: bundle without an identity key", x3dh.ErrMalformed)
	}
	st := start{m: m, bundle: b}
	_, err := m.run(ctx, addr, st.attempt)
	return err
}

// start is one StartSession call.
type start struct {
	m      *Manager
	bundle *x3dh.Bundle
}

// beginStart is what both protocols' starts do before their key
// agreement: it checks the record's protocol and the bundle's identity key
// ik (an *IdentityError only for a bundle that verify accepts, so that
// nobody is asked to approve a forged key), records ik as e's peer, and
// loads the local identity, whose public key the write checks. The caller
// clears the returned key pair.
func (m *Manager) beginStart(s *addrState, e *entry, ik *keys.PublicKey, verify func() error) (*store.LocalIdentity, error) {
	if err := m.checkRecord(s); err != nil {
		return nil, err
	}
	ik.AppendEncode(e.peer[:0])
	if err := s.checkIdentity(m.trust, e.peer[:]); err != nil {
		if verr := verify(); verr != nil {
			return nil, verr
		}
		return nil, err
	}
	local, err := m.loadLocalIdentity(s)
	if err != nil {
		return nil, err
	}
	local.KeyPair.PublicKey().AppendEncode(s.local[:0])
	s.checkLocal = true
	return local, nil
}

func (st *start) attempt(s *addrState) ([]byte, error) {
	m, b := st.m, st.bundle
	var e entry
	local, err := m.beginStart(s, &e, b.IdentityKey, b.Verify)
	if err != nil {
		return nil, err
	}
	in, err := x3dh.Initiate(local.KeyPair, b, &m.x3dh)
	local.KeyPair.Clear()
	if err != nil {
		return nil, err
	}
	defer in.Clear()
	e.role = roleInitiator
	h, err := in.Header.AppendBinary(e.hdr[:0])
	if err != nil {
		return nil, err
	}
	e.hdrLen = len(h)
	if e.sess, err = ratchet.NewInitiator(in.SK[:], in.AD[:], b.SignedPreKey, &m.ratchet); err != nil {
		return nil, err
	}
	s.rec.add(&e, m.maxArchived)
	return nil, s.commit(m.st)
}
