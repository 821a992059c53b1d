package signallive

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/signalwire"
)

// SPQR is the header of the SPQR message (the SignalMessage's pq_ratchet
// field) a live message carries: its epoch, the sender's chain index in
// that epoch, and its type (0 None, 1 Hdr, 2 Ek, 3 EkCt1Ack, 4 Ct1Ack,
// 5 Ct1, 6 Ct2). A message of epoch e is keyed from the chains of the
// braid's epoch e − 1, so a message of epoch e ≥ 4 is keyed from epochs
// ≥ 3.
type SPQR struct {
	Epoch uint64
	Index uint32
	Type  byte
	// Chunk is the erasure-coded chunk's index, -1 for the types without
	// one (None and Ct1Ack).
	Chunk int
}

// errSPQR is returned by ParseSPQR for a payload that is not a strict V1
// message.
var errSPQR = errors.New("signallive: not a strict SPQR V1 message")

// ParseSPQR parses the SPQR message of m (a SignalMessage, or the one in
// a PreKeySignalMessage) strictly, on its own, without the parser the
// ratchet uses: version 1, minimal varints, epoch ≥ 1, an index that fits
// 32 bits, a known type, and exactly one chunk (a minimal varint index
// below 65536 and 32 bytes) for the types that carry one, nothing after.
func ParseSPQR(m Msg) (SPQR, error) {
	wire := m.Wire
	if m.Type == signalwire.TypePreKey {
		pk, _, err := signalwire.ParsePreKeySignalMessage(wire)
		if err != nil {
			return SPQR{}, err
		}
		wire = pk.Message
	}
	sm, _, _, err := signalwire.ParseSignalMessage(wire)
	if err != nil {
		return SPQR{}, err
	}
	return parseSPQR(sm.PQRatchet)
}

func parseSPQR(b []byte) (SPQR, error) {
	if len(b) < 1 || b[0] != 1 {
		return SPQR{}, errSPQR
	}
	b = b[1:]
	epoch, n := varint(b, 10)
	if n == 0 || epoch == 0 {
		return SPQR{}, errSPQR
	}
	b = b[n:]
	index, n := varint(b, 5)
	if n == 0 || index > 1<<32-1 || len(b) < n+1 {
		return SPQR{}, errSPQR
	}
	p := SPQR{Epoch: epoch, Index: uint32(index), Type: b[n], Chunk: -1}
	b = b[n+1:]
	switch p.Type {
	case 0, 4: // None, Ct1Ack
		if len(b) != 0 {
			return SPQR{}, errSPQR
		}
	case 1, 2, 3, 5, 6:
		ci, n := varint(b, 3)
		if n == 0 || ci > 0xffff || len(b) != n+32 {
			return SPQR{}, errSPQR
		}
		p.Chunk = int(ci)
	default:
		return SPQR{}, errSPQR
	}
	return p, nil
}

// varint reads a minimal LEB128 varint of at most max bytes (a tenth byte
// may carry only bit 63); n is 0 if there is none.
func varint(b []byte, max int) (x uint64, n int) {
	for i := 0; i < len(b) && i < max; i++ {
		x |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			if (i > 0 && b[i] == 0) || (i == 9 && b[i] > 1) {
				return 0, 0
			}
			return x, i + 1
		}
	}
	return 0, 0
}

// Epochs records the SPQR epochs of a live conversation's messages, per
// sender: Track wraps an End's Send so that every message it makes is
// parsed (a payload that is not strict V1 fails the test) and counted,
// and Delivered wraps a Recv so that the messages that decrypted are
// counted by the epoch they were keyed from.
type Epochs struct {
	// Sent[i] is the highest epoch end i (0 Go, 1 libsignal) sent in;
	// Keyed[i] the highest epoch of a message from end i that the other
	// end decrypted.
	Sent, Keyed [2]uint64
	// Delivered[i] counts the messages from end i of wire epoch MinEpoch
	// or later that the other end decrypted.
	Delivered [2]int
	// MinEpoch is the wire epoch from which a decrypted message counts in
	// Delivered.
	MinEpoch uint64
}

// Track returns e with its Send recording the epochs that end i sends
// in, and its Recv those of the messages from the other end it decrypts.
func (ep *Epochs) Track(t testing.TB, i int, e End) End {
	send, recv := e.Send, e.Recv
	e.Send = func(pt []byte) Msg {
		m := send(pt)
		p, err := ParseSPQR(m)
		if err != nil {
			t.Fatalf("%s sent a message with no strict SPQR payload: %v", who[i], err)
		}
		ep.Sent[i] = max(ep.Sent[i], p.Epoch)
		return m
	}
	e.Recv = func(m Msg) error {
		err := recv(m)
		if err != nil {
			return err
		}
		p, perr := ParseSPQR(m)
		if perr != nil {
			t.Fatalf("%s decrypted a message with no strict SPQR payload: %v", who[i], perr)
		}
		from := 1 - i
		ep.Keyed[from] = max(ep.Keyed[from], p.Epoch)
		if p.Epoch >= ep.MinEpoch {
			ep.Delivered[from]++
		}
		return nil
	}
	return e
}

var who = [2]string{"go", "libsignal"}

// String reports the epochs.
func (ep *Epochs) String() string {
	return fmt.Sprintf("SPQR epochs sent: go %d, libsignal %d; decrypted: go's up to %d, libsignal's up to %d; decrypted from epoch %d on: go's %d, libsignal's %d",
		ep.Sent[0], ep.Sent[1], ep.Keyed[0], ep.Keyed[1], ep.MinEpoch, ep.Delivered[0], ep.Delivered[1])
}
