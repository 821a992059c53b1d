package spqr

import (
	"encoding/binary"
	"errors"

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

// ErrPastIndex is returned by KeyAt for an index the chain has already
// passed: the ratchet core keeps those keys, or refuses the message.
var ErrPastIndex = errors.New("spqr: index already passed")

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

// KeyAt advances c to index i (> c.Index()) and returns that index's key;
// the keys it skips are dropped, so the caller keeps those it may need.
// Bounding the jump is the caller's job.
func (c *Chain) KeyAt(i uint32) ([KeySize]byte, error) {
	if i <= c.index {
		return [KeySize]byte{}, ErrPastIndex
	}
	var mk [KeySize]byte
	for c.index < i {
		mk = c.Next()
	}
	return mk, nil
}

// Clear wipes the chain key.
func (c *Chain) Clear() { clear(c.key[:]) }
