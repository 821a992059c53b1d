package ratchet

import (
	"errors"

	"github.com/ratchetkit/ratchetkit/internal/spqr"
)

// pqRatchet is the post-quantum ratchet that runs beside the Double Ratchet
// in libsignal's sessions (SPQR; libsignal calls the pair the triple
// ratchet). Every message carries its payload, and its key salts the
// message's keys. The Double Ratchet never looks inside the payload.
//
// Recv must not change the state; Commit applies the payload Recv last
// accepted, and is called only once the message it came with has
// authenticated, so that a refused message leaves the SPQR state (braid
// and chains) untouched too.
type pqRatchet interface {
	// Send appends the payload of the next message to dst and returns it
	// with the message's key.
	Send(dst []byte) ([]byte, [32]byte, error)
	// Recv returns the key of a received payload.
	Recv(payload []byte) ([32]byte, error)
	// Commit applies the payload that the last Recv accepted.
	Commit(payload []byte)
	// AppendBinary appends the state; MarshaledSize is its length.
	AppendBinary(b []byte) []byte
	MarshaledSize() int
	// Clear wipes the state's secrets.
	Clear()
}

// The pq_kind byte of a Signal state names the implementation whose state
// follows. Never renumber: states of every kind ever written keep parsing.
const (
	// pqKindMinimal is spqr.Minimal: epoch 1's chains only, None messages.
	// Written by sessions made before full SPQR, and by the test-only
	// sessions that compare against it.
	pqKindMinimal = 1
	// pqKindFull is spqr.Ratchet: the ML-KEM braid and every epoch's
	// chains. New Signal sessions use it.
	pqKindFull = 2
)

var (
	_ pqRatchet = (*spqr.Minimal)(nil)
	_ pqRatchet = (*fullPQ)(nil)
)

// fullPQ is spqr.Ratchet as a pqRatchet. spqr.Ratchet.Receive returns the
// key with a closure that commits it; Recv keeps that closure and Commit
// runs it. The closure is not part of the state (it is never serialized
// and a later Recv replaces it), so Recv changes nothing a caller can see.
type fullPQ struct {
	r      *spqr.Ratchet
	commit func()
}

func newFullPQ(pqrKey *[32]byte, initiator bool) *fullPQ {
	return &fullPQ{r: spqr.NewRatchet(pqrKey, initiator)}
}

func (f *fullPQ) Send(dst []byte) ([]byte, [32]byte, error) {
	f.commit = nil
	return f.r.AppendSend(dst)
}

func (f *fullPQ) Recv(payload []byte) ([32]byte, error) {
	f.commit = nil
	key, commit, err := f.r.Receive(payload)
	if err != nil {
		return [32]byte{}, err
	}
	f.commit = commit
	return key, nil
}

func (f *fullPQ) Commit([]byte) {
	if f.commit != nil {
		f.commit()
		f.commit = nil
	}
}

func (f *fullPQ) AppendBinary(b []byte) []byte {
	out, err := f.r.AppendBinary(b)
	if err != nil {
		// spqr.Ratchet refuses only a state with an uncommitted receive,
		// which exists only inside Receive's copy, never in f.r.
		panic("ratchet: internal error: " + err.Error())
	}
	return out
}

func (f *fullPQ) MarshaledSize() int { return f.r.MarshaledSize() }

func (f *fullPQ) Clear() {
	f.commit = nil
	f.r.Clear()
}

// upgradePQ is a state of minimal SPQR loaded from a pq_kind 1 state,
// moving to full SPQR (spqr.Minimal.Upgrade). The move takes effect with
// the first message the session sends or decrypts: Send and Recv run on
// an upgraded copy, which the session adopts (settlePQ) once the message
// has gone out or authenticated. Until then the state re-marshals as it
// was loaded, so a load changes nothing by itself and a refused message
// leaves the state as it was, as for the other kinds.
//
// Telling the direction of an established state costs chain steps
// (Minimal.Initiator, up to spqr.MaxUpgradeSteps twice), so it is done at
// the state's first Send or Recv, not at load: a session record parses
// every archived state on every load, and an archived state re-marshals
// as it was loaded, so a check at load would be paid again on every load
// for every such state. A state too long to tell stays minimal (u.m
// itself sends and receives); one that is neither side's fails there.
type upgradePQ struct {
	m         *spqr.Minimal
	initiator bool
	resolved  bool    // initiator (or minimal) is known
	minimal   bool    // too long to tell: u.m runs as it is
	bad       bool    // neither side's: every message fails
	next      *fullPQ // the upgraded copy the last Send or Recv used
	done      bool    // next has sent or committed a message
}

// resolve tells u's direction once (Minimal.Initiator). It changes no
// state: a state that is neither side's is an error each time (found
// once: the steps are not paid again per message).
func (u *upgradePQ) resolve() error {
	if u.resolved {
		return nil
	}
	if u.bad {
		return invalid("SPQR state")
	}
	initiator, err := u.m.Initiator()
	switch {
	case errors.Is(err, spqr.ErrUpgradeTooLong):
		u.minimal = true
	case err != nil:
		u.bad = true
		return invalid("SPQR state")
	}
	u.initiator, u.resolved = initiator, true
	return nil
}

var _ pqRatchet = (*upgradePQ)(nil)

// start returns a full SPQR state upgraded from a copy of u.m.
func (u *upgradePQ) start() *fullPQ {
	if u.next != nil {
		u.next.Clear()
	}
	// The copy goes through the state's encoding, which holds every key
	// of u.m: wipe it once parsed (ParseMinimal copies what it keeps).
	b := u.m.AppendBinary(nil)
	c, err := spqr.ParseMinimal(b)
	clear(b)
	if err != nil {
		panic("ratchet: internal error: a minimal SPQR state does not parse back")
	}
	u.next = &fullPQ{r: c.Upgrade(u.initiator)}
	return u.next
}

func (u *upgradePQ) Send(dst []byte) ([]byte, [32]byte, error) {
	if err := u.resolve(); err != nil {
		return dst, [32]byte{}, err
	}
	if u.minimal {
		return u.m.Send(dst)
	}
	out, key, err := u.start().Send(dst)
	u.done = err == nil
	return out, key, err
}

func (u *upgradePQ) Recv(payload []byte) ([32]byte, error) {
	if err := u.resolve(); err != nil {
		return [32]byte{}, err
	}
	if u.minimal {
		return u.m.Recv(payload)
	}
	return u.start().Recv(payload)
}

func (u *upgradePQ) Commit(payload []byte) {
	if u.minimal {
		u.m.Commit(payload)
		return
	}
	u.next.Commit(payload)
	u.done = true
}

func (u *upgradePQ) AppendBinary(b []byte) []byte { return u.m.AppendBinary(b) }
func (u *upgradePQ) MarshaledSize() int           { return u.m.MarshaledSize() }

func (u *upgradePQ) Clear() {
	u.m.Clear()
	if u.next != nil {
		u.next.Clear()
	}
}

// settlePQ adopts the full SPQR state of an upgrade once its first
// message has been sent or decrypted (or the minimal state, if it was too
// long to upgrade).
func (g *signalState) settlePQ() {
	u, ok := g.pq.(*upgradePQ)
	switch {
	case !ok:
	case u.minimal:
		g.pq = u.m
	case u.done:
		g.pq = u.next
		u.m.Clear()
	}
}

// pqKind returns the pq_kind of pq.
func pqKind(pq pqRatchet) byte {
	switch pq.(type) {
	case *spqr.Minimal, *upgradePQ:
		return pqKindMinimal
	}
	return pqKindFull
}

// parsePQ restores a pqRatchet of the given kind.
func parsePQ(kind byte, b []byte) (pqRatchet, error) {
	switch kind {
	case pqKindMinimal:
		m, err := spqr.ParseMinimal(b)
		if err != nil {
			return nil, invalid("SPQR state")
		}
		return m, nil
	case pqKindFull:
		r, err := spqr.ParseRatchet(b)
		if err != nil {
			return nil, invalid("SPQR state")
		}
		return &fullPQ{r: r}, nil
	}
	return nil, invalid("unknown SPQR kind")
}

// pqError maps an SPQR error of a received payload to the session's.
func pqError(err error) error {
	switch {
	case errors.Is(err, ErrInvalidState): // a loaded minimal state that is neither side's
		return err
	case errors.Is(err, spqr.ErrTooFar):
		return ErrTooManySkipped
	case errors.Is(err, spqr.ErrKeyUsed), errors.Is(err, spqr.ErrKeyTrimmed):
		return ErrSPQRKeyUsed
	}
	return ErrMalformed
}
