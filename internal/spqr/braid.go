package spqr

import (
	"errors"
	"fmt"
	"io"

	"github.com/ratchetkit/ratchetkit/internal/mlkem768"
)

// SPQR V1's state machine, the ML-KEM braid. In each epoch one party
// sends an ML-KEM-768 encapsulation key and the other a ciphertext to it,
// both in erasure-coded chunks, one per ratchet message; the shared secret
// becomes the epoch's secret, and the parties swap roles for the next
// epoch. The initiator sends the first key, at epoch 1.
//
// The key side (send_ek):
//
//	keysUnsampled  --send: new key pair, send header ‖ MAC-->  keysSampled
//	keysSampled    --recv first ct1 chunk-->                   headerSent (sends the vector)
//	headerSent     --recv ct1 complete-->                      ct1Received (sends the vector with an ack)
//	ct1Received    --recv first ct2 chunk-->                   ekSentCt1Received (sends Ct1Ack)
//	ekSentCt1Received --recv ct2 ‖ MAC complete: decapsulate,
//	                  epoch secret, verify MAC-->              noHeaderReceived at epoch + 1
//
// The ciphertext side (send_ct):
//
//	noHeaderReceived --recv header ‖ MAC complete, verified--> headerReceived
//	headerReceived   --send: ct1 from the header, epoch secret--> ct1Sampled (sends ct1)
//	ct1Sampled       --recv vector complete, matches header-->  ekReceivedCt1Sampled
//	                 --recv an ack-->                           ct1Acknowledged (stops sending ct1)
//	                 --both-->                                  ct2Sampled
//	ekReceivedCt1Sampled --recv an ack--> ct2Sampled; ct1Acknowledged --recv vector complete--> ct2Sampled
//	ct2Sampled       --recv a message of epoch + 1-->           keysUnsampled at epoch + 1
//
// A message of a later epoch than the state's (two later for ct2Sampled)
// is an error; anything else the state is not waiting for, including
// earlier epochs and repeated or conflicting chunks, is ignored, as SPQR
// does. A completed header, vector or ciphertext that fails its check is
// an error, and an error changes nothing.

type braidState uint8

const (
	keysUnsampled braidState = iota
	keysSampled
	headerSent
	ct1Received
	ekSentCt1Received
	noHeaderReceived
	headerReceived
	ct1Sampled
	ekReceivedCt1Sampled
	ct1Acknowledged
	ct2Sampled
)

var (
	// ErrVectorMismatch is returned for a received encapsulation key
	// vector that does not belong to the header received before.
	ErrVectorMismatch = errors.New("spqr: encapsulation key does not match its header")
)

// EpochKey is a secret the braid produced: the first key of an epoch's
// chains.
type EpochKey struct {
	Epoch  uint64
	Secret [KeySize]byte
}

// Braid is one party's state of the V1 state machine. It is secret. The
// zero value is not usable; see NewBraid.
type Braid struct {
	state braidState
	epoch uint64
	auth  Authenticator

	dk  *mlkem768.DecapsulationKey // the key side's key pair
	hdr []byte                     // the ciphertext side's verified header
	vec []byte                     // ... and the vector, once received
	es  *mlkem768.EncapsState      // ... and its encapsulation
	ct1 []byte                     // ct1, sent or received

	enc     *Encoder // what this party is sending, if anything
	dec     *Decoder // what it is receiving, if anything
	pending *Chunk   // a chunk receive has yet to add to dec
}

// NewBraid returns the state of a party at the start of a session:
// the initiator sends the first encapsulation key.
func NewBraid(pqrKey *[KeySize]byte, initiator bool) *Braid {
	b := &Braid{epoch: 1, auth: *NewAuthenticator(pqrKey[:], 1)}
	if initiator {
		b.state = keysUnsampled
	} else {
		b.state = noHeaderReceived
		b.dec = must(NewDecoder(HeaderMessageSize))
	}
	return b
}

// must is for encoder and decoder sizes that are constants of SPQR.
func must[T any](v T, err error) T {
	if err != nil {
		panic("spqr: " + err.Error())
	}
	return v
}

// Epoch returns the braid's current epoch.
func (b *Braid) Epoch() uint64 { return b.epoch }

// send advances b by one sent message and returns that message's type,
// its chunk (nil for None and Ct1Ack) and the epoch secret it produced,
// if any. rand gives key-generation seeds and encapsulation randomness;
// if it fails, b is unchanged.
func (b *Braid) send(rand io.Reader) (MessageType, *Chunk, *EpochKey, error) {
	next := func(t MessageType) (MessageType, *Chunk, *EpochKey, error) {
		c := b.enc.Next()
		return t, &c, nil, nil
	}
	switch b.state {
	case keysUnsampled:
		var seed [mlkem768.SeedSize]byte
		if _, err := io.ReadFull(rand, seed[:]); err != nil {
			return 0, nil, nil, err
		}
		dk := must(mlkem768.NewDecapsulationKey(seed[:]))
		clear(seed[:])
		hdr := dk.Header()
		mac := b.auth.HeaderMAC(b.epoch, hdr)
		b.dk, b.enc, b.state = dk, must(NewEncoder(append(hdr, mac[:]...))), keysSampled
		return next(Hdr)
	case keysSampled:
		return next(Hdr)
	case headerSent:
		return next(Ek)
	case ct1Received:
		return next(EkCt1Ack)
	case ekSentCt1Received:
		return Ct1Ack, nil, nil, nil
	case headerReceived:
		var m [32]byte
		if _, err := io.ReadFull(rand, m[:]); err != nil {
			return 0, nil, nil, err
		}
		ct1, es, ss := must3(mlkem768.Encapsulate1(b.hdr, m[:]))
		clear(m[:])
		key := &EpochKey{Epoch: b.epoch, Secret: EpochSecret(b.epoch, ss)}
		clear(ss)
		b.auth.Update(b.epoch, key.Secret[:])
		b.ct1, b.es, b.enc, b.state = ct1, es, must(NewEncoder(ct1)), ct1Sampled
		t, c, _, _ := next(Ct1)
		return t, c, key, nil
	case ct1Sampled, ekReceivedCt1Sampled:
		return next(Ct1)
	case ct2Sampled:
		return next(Ct2)
	default: // noHeaderReceived, ct1Acknowledged
		return None, nil, nil, nil
	}
}

func must3[A, B, C any](a A, b B, c C, err error) (A, B, C) {
	if err != nil {
		panic("spqr: " + err.Error())
	}
	return a, b, c
}

// add adds c to what b receives and returns the message if it is now
// complete. b's decoder may be shared with the state the caller still
// keeps, so an incomplete message only records c in b.pending, for commit
// to add; a complete one is decoded on a copy.
func (b *Braid) add(c *Chunk) ([]byte, bool) {
	if !b.dec.completesWith(*c) {
		b.pending = c
		return nil, false
	}
	d := b.dec.clone()
	_ = d.Add(*c) // a conflicting chunk is ignored, as SPQR ignores it
	b.dec = d
	return d.Message()
}

// commitPending adds the chunk receive recorded to the decoder. It runs
// when the caller keeps the state receive returned.
func (b *Braid) commitPending() {
	if b.pending != nil {
		_ = b.dec.Add(*b.pending)
		b.pending = nil
	}
}

// receive returns the state after a message of the given epoch, type and
// chunk (nil for None and Ct1Ack), and the epoch secret it produced, if
// any, without changing b.
func (b *Braid) receive(epoch uint64, t MessageType, c *Chunk) (*Braid, *EpochKey, error) {
	nb := *b
	nb.pending = nil
	if b.state == ct2Sampled && epoch == b.epoch+1 {
		// The peer has the ciphertext and has moved on: so do we, with the
		// roles swapped.
		return &Braid{state: keysUnsampled, epoch: epoch, auth: b.auth}, nil, nil
	}
	if epoch > b.epoch {
		return nil, nil, ErrEpochOutOfRange
	}
	if epoch < b.epoch {
		return &nb, nil, nil
	}
	isEk := t == Ek || t == EkCt1Ack
	isAck := t == EkCt1Ack || t == Ct1Ack
	switch {
	case b.state == keysSampled && t == Ct1:
		nb.dec = must(NewDecoder(Ciphertext1MessageSize))
		_ = nb.dec.Add(*c)
		nb.enc, nb.state = must(NewEncoder(b.dk.Vector())), headerSent
	case b.state == headerSent && t == Ct1:
		var done bool
		if nb.ct1, done = nb.add(c); done {
			nb.dec, nb.state = nil, ct1Received
		}
	case b.state == ct1Received && t == Ct2:
		nb.dec = must(NewDecoder(Ciphertext2MessageSize))
		_ = nb.dec.Add(*c)
		nb.enc, nb.state = nil, ekSentCt1Received
	case b.state == ekSentCt1Received && t == Ct2:
		msg, done := nb.add(c)
		if !done {
			break
		}
		ct2, mac := msg[:mlkem768.Ciphertext2Size], msg[mlkem768.Ciphertext2Size:]
		ss := must(b.dk.Decapsulate(b.ct1, ct2))
		key := &EpochKey{Epoch: b.epoch, Secret: EpochSecret(b.epoch, ss)}
		clear(ss)
		auth := b.auth
		auth.Update(b.epoch, key.Secret[:])
		if err := auth.VerifyCiphertext(b.epoch, b.ct1, ct2, mac); err != nil {
			auth.Clear()
			return nil, nil, err
		}
		return &Braid{state: noHeaderReceived, epoch: b.epoch + 1, auth: auth, dec: must(NewDecoder(HeaderMessageSize))}, key, nil
	case b.state == noHeaderReceived && t == Hdr:
		msg, done := nb.add(c)
		if !done {
			break
		}
		hdr, mac := msg[:mlkem768.HeaderSize], msg[mlkem768.HeaderSize:]
		if err := b.auth.VerifyHeader(b.epoch, hdr, mac); err != nil {
			return nil, nil, err
		}
		nb.hdr, nb.dec, nb.state = hdr, must(NewDecoder(VectorMessageSize)), headerReceived
	case (b.state == ct1Sampled || b.state == ct1Acknowledged) && isEk:
		vec, done := nb.add(c)
		switch {
		case done && !mlkem768.VectorMatchesHeader(b.hdr, vec):
			return nil, nil, ErrVectorMismatch
		case done && (isAck || b.state == ct1Acknowledged):
			nb.encapsulate2(vec)
		case done:
			nb.vec, nb.dec, nb.state = vec, nil, ekReceivedCt1Sampled
		case isAck:
			nb.enc, nb.state = nil, ct1Acknowledged
		}
	case b.state == ekReceivedCt1Sampled && isAck:
		nb.encapsulate2(b.vec)
	}
	return &nb, nil, nil
}

// encapsulate2 finishes the ciphertext with the received vector and moves
// to sending ct2 ‖ MAC.
func (b *Braid) encapsulate2(vec []byte) {
	ct2 := must(b.es.Encapsulate2(vec))
	mac := b.auth.CiphertextMAC(b.epoch, b.ct1, ct2)
	b.enc = must(NewEncoder(append(ct2, mac[:]...)))
	b.hdr, b.vec, b.es, b.ct1, b.dec, b.state = nil, nil, nil, nil, nil, ct2Sampled
}

// Clear wipes the secrets b holds (best effort).
func (b *Braid) Clear() {
	b.auth.Clear()
	if b.dk != nil {
		b.dk.Clear()
	}
	if b.es != nil {
		b.es.Clear()
	}
}

// String keeps the state out of every fmt verb.
func (Braid) String() string { return "spqr.Braid{REDACTED}" }

// Format prints String whatever the verb.
func (b Braid) Format(f fmt.State, _ rune) { fmt.Fprint(f, b.String()) }
