package session

import (
	"context"
	"encoding/binary"
	"errors"

	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// Decrypt decrypts a message from addr, following PROTOCOL.md section 7.
//
// A prekey message whose EK_A belongs to a session this device already
// has is decrypted by that session (its other outer fields must match:
// else ErrMalformed). Otherwise it starts a new session: the sender's
// identity key is checked (an *IdentityError), the prekeys it names are
// looked up (ErrUnknownPreKey), X3DH and the ratchet run, and only if the
// message decrypts are the session saved as the current one, the
// one-time prekey removed and, on first use, the identity key recorded,
// all in one transaction. A ratchet message is tried on the current
// session, then on the archived ones that can take it (see below),
// newest-created first (under ratchet.Signal, the one that stopped being
// current most recently first, libsignal's order); the one that decrypts
// it becomes current. If none does, the error is the current session's.
//
// An archived session is tried only if the message's ratchet key is one
// it receives under, or if it has sent under its current ratchet key, so
// that the peer may be answering it with a new one, and the message is
// among the first 32 of the peer's new chain. A forged message under a
// new ratchet key thus costs an archived session that did not send last
// nothing, and one that did one X25519 and at most 32 chain steps (see
// the package documentation's limits).
//
// Errors, in the order they are checked: ErrMalformed, ErrUnknownType,
// keys.ErrInvalidPublicKey (a key in the message does not decode),
// ratchet.ErrCounterOverflow, ErrTooLarge (a plaintext longer than
// Config.MaxMessageSize); then ErrNoSession, ErrUntrustedIdentity (an
// *IdentityError), ErrUnknownPreKey, keys.ErrSmallOrder (X3DH or a
// ratchet step); then the ratchet's ratchet.ErrDuplicate (drop the
// message quietly), ratchet.ErrTooManySkipped, ratchet.ErrAuthentication;
// and ErrConflict or a context or store error. Decrypt saves nothing
// unless it succeeds, and nothing is returned that was not saved.
//
// Under ratchet.Signal (see the package documentation) msg is a
// SignalMessage or a PreKeySignalMessage: ErrUnknownType for a first byte
// other than 0x44, ErrMalformed (wrapping the strict parser's error) for
// anything libsignal would not write, ErrTooLarge; then as above, with
// pqxdh.ErrInvalidBaseKey for a base key PQXDH refuses, ErrUnknownPreKey
// also for a missing Kyber prekey, and an error wrapping
// store.ErrReusedBaseKey for a PreKeySignalMessage replayed on a
// last-resort Kyber prekey after its session is gone.
func (m *Manager) Decrypt(ctx context.Context, addr store.Address, msg []byte) ([]byte, error) {
	return m.AppendDecrypt(ctx, nil, addr, msg)
}

// AppendDecrypt is Decrypt appending the plaintext to dst. dst's spare
// capacity must not overlap msg. On error dst's spare capacity may have
// been overwritten.
func (m *Manager) AppendDecrypt(ctx context.Context, dst []byte, addr store.Address, msg []byte) ([]byte, error) {
	d := decryption{m: m, dst: dst}
	var err error
	if m.proto == ratchet.Signal {
		if d.msg, d.pk, err = m.parseSignal(msg); err != nil {
			return nil, err
		}
	} else {
		if d.msg, err = parseMessage(msg); err != nil {
			return nil, err
		}
		if len(d.msg.inner)-minMessageSize > m.maxMessage {
			return nil, errTooLargeIn
		}
	}
	return m.run(ctx, addr, d.attempt)
}

// decryption is one Decrypt call.
type decryption struct {
	m   *Manager
	dst []byte
	msg message
	// pk is a Signal PreKeySignalMessage, parsed; nil otherwise.
	pk *signalwire.PreKeySignalMessage

	tried int // sessions tried by the last tryAll, for tests
}

// maxArchivedStep bounds the message number N of a message that makes an
// archived session take a DH ratchet step: the peer's answer to a
// message sent on a session that was archived since, which is normally
// among the first messages of the peer's new chain. It bounds what a
// forged message costs an archived session to one X25519 and 32 chain
// steps, instead of MaxSkip chain steps. A genuine answer whose first
// messages were lost is not read on the archived session; the next
// message this device sends, on its current session, makes the peer
// switch to that one.
const maxArchivedStep = 32

func (d *decryption) attempt(s *addrState) ([]byte, error) {
	pm := &d.msg
	var out []byte
	var err error
	if err := d.m.checkRecord(s); err != nil {
		return nil, err
	}
	switch {
	case pm.kind == typeRatchet:
		if !s.found {
			return nil, ErrNoSession
		}
		out, err = d.tryAll(s)
	case d.pk != nil:
		out, err = d.signalPreKey(s)
	default:
		if use := s.rec.findBaseKey(pm.x3dh[hdrEK : hdrEK+encodedKeySize]); use >= 0 {
			out, err = d.continueSession(s, use)
		} else {
			out, err = d.respond(s)
		}
	}
	if err != nil {
		return nil, err
	}
	if err := s.commit(d.m.st); err != nil {
		clear(out[len(d.dst):])
		return nil, err
	}
	return out, nil
}

// tryAll decrypts a ratchet message with the current session, then with
// the archived ones that can take it (see mayTry), in the record's order
// (see record.makeCurrent), and makes the one that succeeds current.
// Sessions whose peer key is not trusted are not tried.
func (d *decryption) tryAll(s *addrState) ([]byte, error) {
	r := &s.rec
	msg := d.msg.inner
	var first error
	d.tried = 0
	for k := -1; k < r.n; k++ {
		i := k
		if k < 0 {
			i = r.current
		} else if k == r.current || !mayTry(r.entries[i].sess, msg, d.msg.counter) {
			continue
		}
		e := &r.entries[i]
		err := s.checkIdentity(d.m.trust, e.peer[:])
		if err == nil {
			d.tried++
			var out []byte
			if out, err = e.sess.AppendDecrypt(d.dst, msg); err == nil {
				r.makeCurrent(i)
				return out, nil
			}
			// libsignal reports a used or dropped message key at once,
			// without trying the other sessions. An SPQR key already
			// used is this session's failure only, as in libsignal: the
			// message may be another session's, whose SPQR indexes run
			// alike (a revived session's answer). If no session reads
			// it, it is still reported as a duplicate when it is the
			// current session's error.
			if r.proto == ratchet.Signal && errors.Is(err, ratchet.ErrDuplicate) && !errors.Is(err, ratchet.ErrSPQRKeyUsed) {
				return nil, err
			}
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// mayTry reports whether an archived session is worth trying on a
// ratchet message: its ratchet key is one the session receives under
// (no DH step), or the session awaits an answer under a new ratchet key
// and the message is among the first maxArchivedStep of its chain. No
// message of a peer that follows the protocol is refused by the first
// rule; the second trades the rare answer whose first messages were lost
// for a bound on what forgeries cost (see maxArchivedStep).
func mayTry(sess *ratchet.Session, msg []byte, n uint32) bool {
	if sess.KnowsRatchetKey(msg) {
		return true
	}
	return sess.AwaitsNewRatchetKey() && n < maxArchivedStep
}

// continueSession decrypts a prekey message with session use, the
// responder session its EK_A started.
func (d *decryption) continueSession(s *addrState, use int) ([]byte, error) {
	e := &s.rec.entries[use]
	if string(e.header()) != string(d.msg.x3dh) {
		return nil, errFields
	}
	if err := s.checkIdentity(d.m.trust, e.peer[:]); err != nil {
		return nil, err
	}
	out, err := e.sess.AppendDecrypt(d.dst, d.msg.inner)
	if err != nil {
		return nil, err
	}
	s.rec.makeCurrent(use)
	return out, nil
}

// respond starts a responder session from a prekey message and decrypts
// its ratchet message.
func (d *decryption) respond(s *addrState) ([]byte, error) {
	m, pm := d.m, &d.msg
	if err := s.checkIdentity(m.trust, pm.x3dh[hdrIK:hdrIK+encodedKeySize]); err != nil {
		return nil, err
	}
	pre, err := loadPreKeys(s.ctx, m.st, pm.x3dh)
	if err != nil {
		return nil, err
	}
	defer pre.wipe()
	pre.local.KeyPair.PublicKey().AppendEncode(s.local[:0])
	s.checkLocal = true
	h, _, err := x3dh.ParseHeader(pm.x3dh)
	if err != nil {
		return nil, err // unreachable: parseMessage checked the header
	}
	resp, err := x3dh.Respond(pre.local.KeyPair, pre.spk, pre.opk, h, &m.x3dh)
	if err != nil {
		return nil, err
	}
	defer resp.Clear()
	sess, err := ratchet.NewResponder(resp.SK[:], resp.AD[:], pre.spk.PrivateKey(), &m.ratchet)
	if err != nil {
		return nil, err
	}
	out, err := sess.AppendDecrypt(d.dst, pm.inner)
	if err != nil {
		sess.Clear()
		return nil, err
	}
	e := entry{role: roleResponder, sess: sess, hdrLen: len(pm.x3dh)}
	copy(e.peer[:], pm.x3dh[hdrIK:])
	copy(e.hdr[:], pm.x3dh)
	s.rec.add(&e, m.maxArchived)
	if pre.opk != nil {
		s.consume, s.opkID = true, pre.opk.ID()
	}
	return out, nil
}

// preKeys are the keys a new responder session needs.
type preKeys struct {
	local *store.LocalIdentity
	spk   *keys.SignedPreKey
	opk   *keys.OneTimePreKey
}

func (p *preKeys) wipe() {
	if p.local != nil {
		p.local.KeyPair.Clear()
	}
	if p.spk != nil {
		p.spk.PrivateKey().Clear()
	}
	if p.opk != nil {
		p.opk.PrivateKey().Clear()
	}
}

// loadPreKeys reads the prekeys that the x3dh header hdr names, and the
// local identity, in one read-only transaction. It is a function of its
// own so that its closure, which the store keeps, makes only this rare
// path allocate.
func loadPreKeys(ctx context.Context, st store.Store, hdr []byte) (*preKeys, error) {
	pre := new(preKeys)
	err := st.View(ctx, func(tx store.Tx) error {
		var opkID uint32
		hasOPK := hdr[0]&flagOneTimePreKey != 0
		if hasOPK {
			opkID = binary.BigEndian.Uint32(hdr[hdrOPK:])
		}
		return pre.load(ctx, tx, binary.BigEndian.Uint32(hdr[hdrSPK:]), hasOPK, opkID)
	})
	if err != nil {
		pre.wipe()
		return nil, err
	}
	return pre, nil
}

// load reads signed prekey spkID, one-time prekey opkID if hasOPK, and
// the local identity, in tx: what a responder needs in both protocols.
func (p *preKeys) load(ctx context.Context, tx store.Tx, spkID uint32, hasOPK bool, opkID uint32) error {
	var err error
	if p.spk, err = tx.SignedPreKeys().Load(ctx, spkID); errors.Is(err, store.ErrNotFound) {
		return errNoSPK
	} else if err != nil {
		return storeError("loading the signed prekey", err)
	}
	if hasOPK {
		if p.opk, err = tx.PreKeys().Load(ctx, opkID); errors.Is(err, store.ErrNotFound) {
			return errNoOPK
		} else if err != nil {
			return storeError("loading the one-time prekey", err)
		}
	}
	p.local, err = loadLocal(ctx, tx)
	return err
}
