package session

import (
	"context"

	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/store"
)

// Encrypt encrypts plaintext for addr with the current session: a prekey
// message while the session is one this device started and the peer has
// not answered yet, a ratchet message otherwise (PROTOCOL.md section 7).
// The advanced session is saved before Encrypt returns, so a message key
// is never used twice, even across a crash.
//
// Errors: ErrTooLarge (plaintext longer than Config.MaxMessageSize),
// ErrNoSession, an *IdentityError (the session's peer key is no longer
// the trusted one), ratchet.ErrCounterOverflow, ErrConflict, a context or
// store error. On error nothing is saved. Under ratchet.Signal the
// messages are PreKeySignalMessages, then SignalMessages, and an
// unanswered session older than MaxUnacknowledgedAge is refused with an
// error wrapping ErrNoSession.
func (m *Manager) Encrypt(ctx context.Context, addr store.Address, plaintext []byte) ([]byte, error) {
	return m.AppendEncrypt(ctx, nil, addr, plaintext)
}

// AppendEncrypt is Encrypt appending the message to dst. dst's spare
// capacity must not overlap plaintext.
func (m *Manager) AppendEncrypt(ctx context.Context, dst []byte, addr store.Address, plaintext []byte) ([]byte, error) {
	if len(plaintext) > m.maxMessage {
		return nil, errTooLargeOut
	}
	e := encryption{m: m, dst: dst, plaintext: plaintext}
	return m.run(ctx, addr, e.attempt)
}

// encryption is one Encrypt call.
type encryption struct {
	m              *Manager
	dst, plaintext []byte
}

func (e *encryption) attempt(s *addrState) ([]byte, error) {
	if !s.found {
		return nil, ErrNoSession
	}
	if err := e.m.checkRecord(s); err != nil {
		return nil, err
	}
	cur := &s.rec.entries[s.rec.current]
	if err := s.checkIdentity(e.m.trust, cur.peer[:]); err != nil {
		return nil, err
	}
	if s.rec.proto == ratchet.Signal {
		return e.signal(s, cur)
	}
	out := e.dst
	if cur.role == roleInitiator && !cur.sess.HasReceived() {
		out = append(out, typePreKey)
		out = append(out, cur.header()...)
	}
	out, err := cur.sess.AppendEncrypt(out, e.plaintext)
	if err != nil {
		return nil, err
	}
	if err := s.commit(e.m.st); err != nil {
		return nil, err
	}
	return out, nil
}
