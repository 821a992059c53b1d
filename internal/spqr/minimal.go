package spqr

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// MaxOutOfOrder is how far behind the newest received index a key is still
// kept for a late message, SPQR's max_ooo_keys: a key whose index is more
// than MaxOutOfOrder below the newest received one is gone ("key trimmed").
const MaxOutOfOrder = 2000

var (
	// ErrEpoch is returned by Recv for a payload of an epoch other than the
	// first: a Minimal party never completes the braid, so an honest
	// libsignal peer never leaves epoch 1 with it.
	ErrEpoch = errors.New("spqr: message of an epoch this party never reached")
	// ErrIndexOverflow is returned by Send once the sending chain has used
	// every index.
	ErrIndexOverflow = errors.New("spqr: sending index overflow")
)

// Minimal is the SPQR state of a party that implements the minimum
// conforming behaviour (see the package documentation): both chains of the
// first epoch, the keys of received indexes that were skipped (for messages
// that arrive late), and nothing of the braid. It sends only None messages.
//
// Recv never changes the state; Commit applies a payload Recv accepted.
// That split lets the ratchet core keep the whole decryption all or
// nothing: the SPQR step is committed only with the message it belongs to.
//
// A Minimal is secret and not safe for concurrent use.
type Minimal struct {
	// pqrKey is PQXDH's PQR key, which Minimal itself needs only at the
	// start. It is kept so that a session can move on to full SPQR later:
	// the braid's authenticator starts from this key, and nothing else in
	// the state lets it be derived again.
	pqrKey     [KeySize]byte
	send, recv Chain
	// history holds the keys of skipped received indexes, ascending, all
	// in [recv.index − MaxOutOfOrder, recv.index).
	history []historyKey
}

type historyKey struct {
	index uint32
	key   [KeySize]byte
}

// NewMinimal starts the state from the PQR key of PQXDH; the initiator
// sends on A2B and receives on B2A, the responder the other way round.
func NewMinimal(pqrKey *[KeySize]byte, initiator bool) *Minimal {
	e := Start(pqrKey)
	defer e.Clear()
	m := &Minimal{pqrKey: *pqrKey, send: e.Chain(AToB), recv: e.Chain(BToA)}
	if !initiator {
		m.send, m.recv = m.recv, m.send
	}
	return m
}

// Send appends the None message of the next sending index to dst and
// returns it with that index's message key, the salt of the Double
// Ratchet's message keys.
func (m *Minimal) Send(dst []byte) ([]byte, [KeySize]byte, error) {
	if m.send.index == 1<<32-1 {
		return dst, [KeySize]byte{}, ErrIndexOverflow
	}
	key := m.send.Next()
	return AppendNone(dst, 1, m.send.index), key, nil
}

// Recv returns the message key of a received payload without changing m:
// ErrMalformed for a payload that is not a V1 message, ErrEpoch for one
// not of epoch 1, ErrTooFar for an index more than MaxJump ahead,
// ErrKeyTrimmed for an index more than MaxOutOfOrder behind the newest, and
// ErrKeyUsed for one whose key was handed out already. The braid's chunks that a
// full SPQR peer sends are ignored.
func (m *Minimal) Recv(payload []byte) ([KeySize]byte, error) {
	msg, err := parse(payload)
	if err != nil {
		return [KeySize]byte{}, err
	}
	if msg.Epoch != 1 {
		return [KeySize]byte{}, ErrEpoch
	}
	if msg.Index <= m.recv.index {
		if msg.Index+MaxOutOfOrder < m.recv.index {
			return [KeySize]byte{}, ErrKeyTrimmed
		}
		if i := m.find(msg.Index); i >= 0 {
			return m.history[i].key, nil
		}
		return [KeySize]byte{}, ErrKeyUsed
	}
	c := m.recv
	defer c.Clear()
	return c.KeyAt(msg.Index)
}

// Commit applies a payload that Recv accepted: the key it returned is
// deleted (a late index) or the receiving chain moves to its index,
// keeping the skipped keys that are within MaxOutOfOrder of it. A payload
// Recv refused leaves m unchanged.
func (m *Minimal) Commit(payload []byte) {
	msg, err := parse(payload)
	if err != nil || msg.Epoch != 1 {
		return
	}
	i := msg.Index
	if i <= m.recv.index {
		if k := m.find(i); k >= 0 {
			// slices.Delete zeroes the vacated slot, so no copy of a key
			// outlives its use.
			m.history = slices.Delete(m.history, k, k+1)
		}
		return
	}
	if i-m.recv.index > MaxJump {
		return
	}
	horizon := uint32(0)
	if i > MaxOutOfOrder {
		horizon = i - MaxOutOfOrder
	}
	drop := 0
	for drop < len(m.history) && m.history[drop].index < horizon {
		drop++
	}
	m.history = slices.Delete(m.history, 0, drop)
	for m.recv.index+1 < i {
		k := m.recv.Next()
		if m.recv.index >= horizon {
			m.history = append(m.history, historyKey{m.recv.index, k})
		}
		clear(k[:])
	}
	k := m.recv.Next()
	clear(k[:])
}

// find returns the position of index in the history, or -1.
func (m *Minimal) find(index uint32) int {
	lo, hi := 0, len(m.history)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if m.history[mid].index < index {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(m.history) && m.history[lo].index == index {
		return lo
	}
	return -1
}

// SendIndex returns the index of the last message sent (0 before the
// first).
func (m *Minimal) SendIndex() uint32 { return m.send.index }

// Stored returns the number of skipped received keys kept.
func (m *Minimal) Stored() int { return len(m.history) }

// MinimalStateSize is the length of a serialized Minimal without stored
// keys.
const MinimalStateSize = KeySize + 2*(KeySize+4) + 2

// AppendBinary appends m's state:
//
//	opaque pqr_key[32];                    /* PQXDH's, for a later move to full SPQR */
//	opaque send_chain[32]; uint32 send_index;
//	opaque recv_chain[32]; uint32 recv_index;
//	uint16 count;                          /* at most MaxOutOfOrder */
//	struct { uint32 index; opaque key[32]; } stored[count];
//	                                       /* ascending, in [recv_index − 2000, recv_index) */
//
// (big-endian). ParseMinimal reads it back.
func (m *Minimal) AppendBinary(b []byte) []byte {
	b = append(b, m.pqrKey[:]...)
	b = append(b, m.send.key[:]...)
	b = binary.BigEndian.AppendUint32(b, m.send.index)
	b = append(b, m.recv.key[:]...)
	b = binary.BigEndian.AppendUint32(b, m.recv.index)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.history)))
	for i := range m.history {
		b = binary.BigEndian.AppendUint32(b, m.history[i].index)
		b = append(b, m.history[i].key[:]...)
	}
	return b
}

// MarshaledSize is the length AppendBinary appends.
func (m *Minimal) MarshaledSize() int { return MinimalStateSize + len(m.history)*(4+KeySize) }

// ErrInvalidState is returned by ParseMinimal for anything but a complete,
// consistent state.
var ErrInvalidState = errors.New("spqr: invalid state")

// ParseMinimal restores a state from AppendBinary's output, refusing one
// that is truncated, has trailing bytes, or stores keys out of order or out
// of range. It copies what it needs from b.
func ParseMinimal(b []byte) (*Minimal, error) {
	if len(b) < MinimalStateSize {
		return nil, ErrInvalidState
	}
	m := new(Minimal)
	copy(m.pqrKey[:], b[0:32])
	b = b[KeySize:]
	copy(m.send.key[:], b[0:32])
	m.send.index = binary.BigEndian.Uint32(b[32:36])
	copy(m.recv.key[:], b[36:68])
	m.recv.index = binary.BigEndian.Uint32(b[68:72])
	n := int(binary.BigEndian.Uint16(b[72:74]))
	b = b[MinimalStateSize-KeySize:]
	if n > MaxOutOfOrder || len(b) != n*(4+KeySize) {
		m.Clear()
		return nil, ErrInvalidState
	}
	lowest := uint32(0)
	if m.recv.index > MaxOutOfOrder {
		lowest = m.recv.index - MaxOutOfOrder
	}
	if n > 0 {
		m.history = make([]historyKey, n)
	}
	for i := range m.history {
		e := &m.history[i]
		e.index = binary.BigEndian.Uint32(b)
		copy(e.key[:], b[4:4+KeySize])
		b = b[4+KeySize:]
		if e.index < lowest || e.index >= m.recv.index || (i > 0 && e.index <= m.history[i-1].index) {
			m.Clear()
			return nil, ErrInvalidState
		}
	}
	return m, nil
}

// Clear wipes every key m holds (best effort).
func (m *Minimal) Clear() {
	clear(m.pqrKey[:])
	m.send.Clear()
	m.recv.Clear()
	for i := range m.history {
		clear(m.history[i].key[:])
	}
	m.history = nil
}

// String keeps the keys out of every fmt verb.
func (m Minimal) String() string {
	return fmt.Sprintf("spqr.Minimal{send: %d, recv: %d, stored: %d, keys: REDACTED}", m.send.index, m.recv.index, len(m.history))
}

// GoString is String.
func (m Minimal) GoString() string { return m.String() }

// Format prints String whatever the verb.
func (m Minimal) Format(f fmt.State, _ rune) { fmt.Fprint(f, m.String()) }

// MaxUpgradeSteps bounds the chain steps Initiator takes: it tells the
// directions apart by stepping a first-epoch chain to the lower of the two
// indexes, about 2 µs a step, twice for a state of the responder. A state
// past it in both directions (more than 65 536 messages each way) gets
// ErrUpgradeTooLong instead: a stored state is not trusted to be cheap.
const MaxUpgradeSteps = 1 << 16

// ErrUpgradeTooLong is returned by Initiator for a state whose chains are
// both more than MaxUpgradeSteps long.
var ErrUpgradeTooLong = errors.New("spqr: minimal state too long to tell its direction")

// Initiator reports whether m is the initiator's state (sending on A2B).
// Minimal does not store its direction, so Initiator derives the first
// epoch's chains from the PQR key and steps them to the lower of m's two
// indexes, where m's chain must equal exactly one of them (else
// ErrInvalidState: m is not a state NewMinimal started).
func (m *Minimal) Initiator() (bool, error) {
	c, sending := &m.recv, false
	if m.send.index <= m.recv.index {
		c, sending = &m.send, true
	}
	if c.index > MaxUpgradeSteps {
		return false, ErrUpgradeTooLong
	}
	e := Start(&m.pqrKey)
	defer e.Clear()
	for _, d := range []Direction{AToB, BToA} {
		x := e.Chain(d)
		for x.index < c.index {
			k := x.Next()
			clear(k[:])
		}
		same := subtle.ConstantTimeCompare(x.key[:], c.key[:]) == 1
		x.Clear()
		if same {
			return sending == (d == AToB), nil
		}
	}
	return false, ErrInvalidState
}

// Upgrade returns the full SPQR state that continues m, for the initiator
// or the responder (see Initiator), and wipes m. The first epoch's chains
// go on where m left them: the sending index, the receiving position and
// the stored keys of late indexes are m's, so every message in flight
// keeps its key. The braid starts afresh at epoch 1, its authenticator
// from m's PQR key, as NewRatchet starts it. That is the state a peer
// expects: m sent only None messages, and full SPQR's braid leaves its
// first state only on a braid message (the key side on the first
// ciphertext chunk, the ciphertext side on a complete header), so the
// peer's braid is still at the start of epoch 1 too, the key side perhaps
// sending the chunks of a header it sampled, which the fresh ciphertext
// side collects from any of its later messages (any enough chunks decode).
func (m *Minimal) Upgrade(initiator bool) *Ratchet {
	r := NewRatchet(&m.pqrKey, initiator)
	l := r.chains.links[0]
	l.send.Clear()
	l.recv.Clear()
	l.send, l.recv.Chain = m.send, m.recv
	if len(m.history) > 0 {
		l.recv.history = make([]skippedKey, len(m.history))
		for i, h := range m.history {
			l.recv.history[i] = skippedKey(h)
		}
	}
	m.Clear()
	return r
}
