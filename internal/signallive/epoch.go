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
// end (0 Go, 1 libsignal), and can pace the conversation. Track wraps an
// End so that every message it sends is parsed (a payload that is not
// strict V1 fails the test) and every message it decrypts is counted by
// its epoch. A message of wire epoch e is keyed from the chains of epoch
// e − 1.
type Epochs struct {
	// Sent[i] is the highest wire epoch end i sent in; Keyed[i] the
	// highest wire epoch of a message from end i that the other end
	// decrypted.
	Sent, Keyed [2]uint64
	// Delivered[i] counts the messages from end i of wire epoch MinEpoch
	// or later that the other end decrypted.
	Delivered [2]int
	// MinEpoch is the wire epoch from which a decrypted message counts in
	// Delivered.
	MinEpoch uint64
	// Window, if positive, paces the ends: an end may send only while
	// fewer than Window of its messages are in flight. Without it
	// Conversation's queues grow by a quarter of a message a step, and the
	// braid, which needs a round trip per piece, advances ever more
	// slowly. A message counts as in flight until it decrypts or until 12
	// messages sent after it have decrypted (Conversation reorders by up
	// to 5 and loses some without telling: those are taken as lost).
	Window int

	seq     [2]int
	newest  [2]int            // the highest sequence number decrypted, per sender
	pending [2]map[string]int // wire → sequence number, not yet decrypted
}

// lostAfter is how many later messages decrypt before one still pending
// is taken as lost.
const lostAfter = 12

func (ep *Epochs) inFlight(i int) int {
	n := 0
	for w, seq := range ep.pending[i] {
		switch {
		case seq > ep.newest[i]-lostAfter:
			n++
		case seq < ep.newest[i]-10*lostAfter:
			delete(ep.pending[i], w) // long lost; keeps the map small
		}
	}
	return n
}

// Track returns e, the end i, recording into ep.
func (ep *Epochs) Track(t testing.TB, i int, e End) End {
	send, recv, can := e.Send, e.Recv, e.CanSend
	e.CanSend = func() bool {
		if ep.Window > 0 && ep.inFlight(i) >= ep.Window {
			return false
		}
		return can()
	}
	e.Send = func(pt []byte) Msg {
		m := send(pt)
		p, err := ParseSPQR(m)
		if err != nil {
			t.Fatalf("%s sent a message with no strict SPQR payload: %v", who[i], err)
		}
		ep.Sent[i] = max(ep.Sent[i], p.Epoch)
		if ep.pending[i] == nil {
			ep.pending[i] = map[string]int{}
		}
		ep.seq[i]++
		ep.pending[i][string(m.Wire)] = ep.seq[i]
		return m
	}
	e.Recv = func(m Msg) error {
		if err := recv(m); err != nil {
			return err
		}
		p, err := ParseSPQR(m)
		if err != nil {
			t.Fatalf("%s decrypted a message with no strict SPQR payload: %v", who[i], err)
		}
		from := 1 - i
		if seq, ok := ep.pending[from][string(m.Wire)]; ok {
			delete(ep.pending[from], string(m.Wire))
			ep.newest[from] = max(ep.newest[from], seq)
		}
		ep.Keyed[from] = max(ep.Keyed[from], p.Epoch)
		if p.Epoch >= ep.MinEpoch {
			ep.Delivered[from]++
		}
		return nil
	}
	return e
}

var who = [2]string{"go", "libsignal"}

// Drop forgets the messages in flight for pacing: call it when a
// Conversation has returned, since the messages still in its queues are
// never delivered.
func (ep *Epochs) Drop() { ep.pending = [2]map[string]int{} }

// Check fails the test unless both ends sent in wire epoch MinEpoch or
// later and at least n such messages from each end decrypted on the
// other side.
func (ep *Epochs) Check(t testing.TB, n int) {
	t.Helper()
	if ep.Sent[0] < ep.MinEpoch || ep.Sent[1] < ep.MinEpoch || ep.Delivered[0] < n || ep.Delivered[1] < n {
		t.Fatalf("SPQR epochs did not advance far enough: %v", ep)
	}
}

// String reports the epochs.
func (ep *Epochs) String() string {
	return fmt.Sprintf("SPQR epochs sent: go %d, libsignal %d; decrypted up to: go's %d, libsignal's %d; decrypted of epoch %d or later: go's %d, libsignal's %d",
		ep.Sent[0], ep.Sent[1], ep.Keyed[0], ep.Keyed[1], ep.MinEpoch, ep.Delivered[0], ep.Delivered[1])
}
