package spqr

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ratchetkit/ratchetkit/internal/kdf"
)

// KeySize is the length of chain keys and message keys.
const KeySize = 32

var (
	startInfo = []byte("Signal PQ Ratchet V1 Chain  Start")
	nextInfo  = []byte("Signal PQ Ratchet V1 Chain Next")
)

// Direction picks one of an epoch's two chains.
type Direction int

const (
	// AToB is the initiator's sending direction.
	AToB Direction = iota
	// BToA is the responder's sending direction.
	BToA
)

// Epoch holds the two chains of the first epoch, derived from the PQR key.
type Epoch struct {
	NextRoot [KeySize]byte
	chains   [2]Chain
}

// Chain is one direction's symmetric chain: a chain key and the index of
// the last key it gave out. It is secret.
type Chain struct {
	key   [KeySize]byte
	index uint32
}

// Start derives the first epoch's chains from the PQR key (the third 32
// bytes of the PQXDH output).
func Start(pqrKey *[KeySize]byte) *Epoch {
	var out [3 * KeySize]byte
	h := kdf.Get()
	h.HKDF(out[:], kdf.ZeroSalt(), pqrKey[:], startInfo)
	kdf.Put(h)
	e := new(Epoch)
	copy(e.NextRoot[:], out[0:32])
	copy(e.chains[AToB].key[:], out[32:64])
	copy(e.chains[BToA].key[:], out[64:96])
	clear(out[:])
	return e
}

// Chain returns a copy of the chain of direction d.
func (e *Epoch) Chain(d Direction) Chain { return e.chains[d] }

// MaxJump is the furthest KeyAt moves a chain in one call, SPQR's max_jump
// for sessions that are not with oneself: libsignal 0.103 accepts a message
// whose SPQR index is 25 000 past the last one and refuses one 25 001 past
// (measured by internal/signalsuite's TestLiveLimits).
const MaxJump = 25000

var (
	// ErrPastIndex is returned by KeyAt for an index the chain has already
	// passed: the ratchet core keeps those keys, or refuses the message.
	ErrPastIndex = errors.New("spqr: index already passed")
	// ErrTooFar is returned by KeyAt for an index more than MaxJump ahead,
	// so that a hostile index costs at most MaxJump steps.
	ErrTooFar = errors.New("spqr: index too far ahead")
)

// Index returns the index of the last key c gave out (0 before the first).
func (c *Chain) Index() uint32 { return c.index }

// Next advances c and returns the message key of the new index.
func (c *Chain) Next() [KeySize]byte {
	c.index++
	var info [4 + 31]byte
	binary.BigEndian.PutUint32(info[:4], c.index)
	copy(info[4:], nextInfo)
	var out [2 * KeySize]byte
	h := kdf.Get()
	h.HKDF(out[:], kdf.ZeroSalt(), c.key[:], info[:])
	kdf.Put(h)
	copy(c.key[:], out[:KeySize])
	var mk [KeySize]byte
	copy(mk[:], out[KeySize:])
	clear(out[:])
	return mk
}

// KeyAt advances c to index i (> c.Index(), at most MaxJump ahead) and
// returns that index's key; the keys it skips are dropped, so the caller
// keeps those it may need. On an error c is unchanged.
func (c *Chain) KeyAt(i uint32) ([KeySize]byte, error) {
	if i <= c.index {
		return [KeySize]byte{}, ErrPastIndex
	}
	if i-c.index > MaxJump {
		return [KeySize]byte{}, ErrTooFar
	}
	var mk [KeySize]byte
	for c.index < i {
		mk = c.Next()
	}
	return mk, nil
}

// Clear wipes the chain key.
func (c *Chain) Clear() { clear(c.key[:]) }

// Clear wipes both chains and the next root key.
func (e *Epoch) Clear() {
	clear(e.NextRoot[:])
	e.chains[AToB].Clear()
	e.chains[BToA].Clear()
}

// String keeps the chain key out of every fmt verb.
func (c Chain) String() string { return fmt.Sprintf("spqr.Chain{index: %d, key: REDACTED}", c.index) }

// GoString is String.
func (c Chain) GoString() string { return c.String() }

// Format prints String whatever the verb.
func (c Chain) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.String()) }

// String keeps the keys out of every fmt verb.
func (Epoch) String() string { return "spqr.Epoch{REDACTED}" }

// GoString is String.
func (e Epoch) GoString() string { return e.String() }

// Format prints String whatever the verb.
func (e Epoch) Format(f fmt.State, _ rune) { fmt.Fprint(f, e.String()) }
