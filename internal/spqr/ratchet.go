package spqr

import (
	"crypto/rand"
	"fmt"
	"io"
)

// Ratchet is one party's whole SPQR V1 state: the braid and the chains.
// Every ratchet message carries one SPQR message and takes one SPQR key,
// which libsignal uses as the salt of the message keys. It is secret.
type Ratchet struct {
	braid  *Braid
	chains *Chains
	rand   io.Reader // crypto/rand.Reader; tests set a seeded reader
}

// NewRatchet returns the state of a party at the start of a session, from
// PQXDH's PQR key.
func NewRatchet(pqrKey *[KeySize]byte, initiator bool) *Ratchet {
	dir := BToA
	if initiator {
		dir = AToB
	}
	return &Ratchet{braid: NewBraid(pqrKey, initiator), chains: NewChains(pqrKey, dir), rand: rand.Reader}
}

// SetRand replaces crypto/rand as the source of r's key-pair seeds and
// encapsulation randomness, for tests that need reproducible messages.
// It is not part of the state: a parsed Ratchet uses crypto/rand.
func (r *Ratchet) SetRand(rd io.Reader) { r.rand = rd }

// Epoch returns the braid's current epoch, the epoch of the next message
// sent.
func (r *Ratchet) Epoch() uint64 { return r.braid.epoch }

// Send returns the SPQR message of the next ratchet message and its key,
// and advances r.
func (r *Ratchet) Send() ([]byte, [KeySize]byte, error) { return r.AppendSend(nil) }

// AppendSend is Send appending the message to dst. If it fails (the
// randomness source failed, or the sending index is used up), r is
// unchanged.
func (r *Ratchet) AppendSend(dst []byte) ([]byte, [KeySize]byte, error) {
	epoch := r.braid.epoch
	// The sending chain is checked before the braid moves, so that a
	// refused send changes nothing.
	if !r.chains.canSend(epoch - 1) {
		return dst, [KeySize]byte{}, ErrIndexOverflow
	}
	t, c, secret, err := r.braid.send(r.rand)
	if err != nil {
		return dst, [KeySize]byte{}, err
	}
	if secret != nil {
		if err := r.chains.AddEpoch(secret.Epoch, secret.Secret[:]); err != nil {
			return dst, [KeySize]byte{}, err
		}
		clear(secret.Secret[:])
	}
	index, key, err := r.chains.SendKey(epoch - 1)
	if err != nil {
		return dst, [KeySize]byte{}, err
	}
	dst = appendHeader(dst, epoch, index, t)
	if c != nil {
		dst = AppendChunk(dst, *c)
	}
	return dst, key, nil
}

func appendHeader(dst []byte, epoch uint64, index uint32, t MessageType) []byte {
	dst = append(dst, Version1)
	dst = appendVarint(dst, epoch)
	dst = appendVarint(dst, uint64(index))
	return append(dst, byte(t))
}

// ParseMessage parses a whole V1 message: the header and, for the types
// that carry one, exactly one chunk. The epoch must be at least 1.
func ParseMessage(b []byte) (*Message, *Chunk, error) {
	m, err := Parse(b)
	if err != nil {
		return nil, nil, err
	}
	if m.Epoch == 0 {
		return nil, nil, ErrMalformed
	}
	if m.Type == None || m.Type == Ct1Ack {
		if len(m.Rest) != 0 {
			return nil, nil, ErrMalformed
		}
		return m, nil, nil
	}
	c, err := ParseChunk(m.Rest)
	if err != nil {
		return nil, nil, ErrMalformed
	}
	return m, &c, nil
}

// Receive validates the SPQR message of a received ratchet message and
// returns its key and the function that commits it. r does not change
// until commit is called: the caller calls it only once the ratchet
// message has decrypted with the key, so a message that fails (a forgery,
// a replay) changes nothing. commit is valid until r next changes.
func (r *Ratchet) Receive(b []byte) (key [KeySize]byte, commit func(), err error) {
	m, c, err := ParseMessage(b)
	if err != nil {
		return key, nil, err
	}
	nb, secret, err := r.braid.receive(m.Epoch, m.Type, c)
	if err != nil {
		return key, nil, err
	}
	// On a refusal below, nb's authenticator (its own copy, updated if a
	// secret came) is wiped; its key pair and encapsulation are r's.
	if secret != nil && secret.Epoch != r.chains.current+1 {
		clear(secret.Secret[:])
		nb.auth.Clear()
		return key, nil, ErrEpochOutOfRange
	}
	// The key's epoch is never the one a secret here adds: the braid gives
	// a secret only for a message of the braid's epoch e, whose key comes
	// from chain epoch e − 1.
	key, commitKey, err := r.chains.RecvKey(m.Epoch-1, m.Index)
	if err != nil {
		if secret != nil {
			clear(secret.Secret[:])
		}
		nb.auth.Clear()
		return key, nil, err
	}
	return key, func() {
		old := r.braid
		nb.commitPending()
		r.braid = nb
		if secret != nil {
			_ = r.chains.AddEpoch(secret.Epoch, secret.Secret[:]) // checked above
			clear(secret.Secret[:])
		}
		commitKey()
		if old.dk != nil && old.dk != nb.dk {
			old.dk.Clear()
		}
		if old.es != nil && old.es != nb.es {
			old.es.Clear()
		}
	}, nil
}

// Clear wipes r's secrets (best effort).
func (r *Ratchet) Clear() {
	r.braid.Clear()
	r.chains.Clear()
}

// String keeps the state out of every fmt verb.
func (*Ratchet) String() string { return "spqr.Ratchet{REDACTED}" }

// Format prints String whatever the verb.
func (r *Ratchet) Format(f fmt.State, _ rune) { fmt.Fprint(f, r.String()) }
