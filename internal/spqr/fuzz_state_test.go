package spqr

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// savedStates are serialized Ratchets: every braid state in both roles
// (receivers), and states of a lossy, reordering conversation whose
// chains hold several epochs and out-of-order histories.
var savedStates = sync.OnceValue(func() [][]byte {
	out := append([][]byte(nil), receivers()...)
	a, b := newPair(32)
	c := &conversation{t: panicTB{}, r: rand.New(rand.NewPCG(32, 32)), a: a, b: b, stats: map[string]int{}}
	for i := range 1500 {
		c.lossyStep(6)
		if i%100 == 99 {
			for _, r := range []*Ratchet{c.a, c.b} {
				s, err := r.AppendBinary(nil)
				if err != nil {
					panic(err)
				}
				out = append(out, s)
			}
		}
	}
	return out
})

// panicTB lets the conversation helpers run outside a test.
type panicTB struct{ testing.TB }

func (panicTB) Helper()                   {}
func (panicTB) Fatal(args ...any)         { panic(args) }
func (panicTB) Fatalf(f string, a ...any) { panic(f) }

// editState applies edits to a copy of s, four bytes an edit: an
// operation, a big-endian position (modulo the length) and a value. The
// edits reach the structural fields of a real state (lengths, counts,
// flags, indexes behind a 1152-byte vector) that random bytes never
// make parse that far.
func editState(s, edits []byte) []byte {
	s = bytes.Clone(s)
	for len(edits) >= 4 && len(s) > 0 {
		op, pos, v := edits[0]%6, (int(edits[1])<<8|int(edits[2]))%len(s), edits[3]
		edits = edits[4:]
		switch op {
		case 0:
			s[pos] ^= v
		case 1:
			s[pos] = v
		case 2:
			s = s[:pos]
		case 3:
			s = append(s[:pos], append([]byte{v}, s[pos:]...)...)
		case 4:
			s = append(s[:pos], s[pos+1:]...)
		case 5: // a length or count: the byte and its neighbour
			s[pos] = v
			if pos+1 < len(s) {
				s[pos+1] = ^v
			}
		}
	}
	return s
}

// FuzzParseRatchetEdits: a real serialized state, edited by the input,
// never panics ParseRatchet; whatever parses serializes back to exactly
// the edited bytes (so an unedited state always loads), and a loaded
// state sends, receives and clears without panicking.
func FuzzParseRatchetEdits(f *testing.F) {
	f.Fuzz(func(t *testing.T, which uint8, edits []byte) {
		if len(edits) > 64 {
			return
		}
		states := savedStates()
		orig := states[int(which)%len(states)]
		data := editState(orig, edits)
		r, err := ParseRatchet(data)
		if err != nil {
			if !errors.Is(err, ErrStateMalformed) {
				t.Fatalf("ParseRatchet: %v", err)
			}
			if bytes.Equal(data, orig) {
				t.Fatalf("a real state does not load: %v", err)
			}
			return
		}
		s, err := r.AppendBinary(nil)
		if err != nil || !bytes.Equal(s, data) {
			t.Fatal("a loaded state serializes differently")
		}
		r.rand = seededReader{rand.NewChaCha8([32]byte{byte(which)})}
		msg, _, err := r.Send()
		if err == nil {
			if _, commit, err := r.Receive(msg); err == nil {
				commit()
			}
		}
		r.Clear()
	})
}

type stateSeed struct {
	name  string
	which uint8
	edits []byte
}

// fuzzStateSeeds: every saved state unedited, and a few edits of the
// structural bytes: the braid state, the pieces, the chains' epoch count.
func fuzzStateSeeds() []stateSeed {
	var out []stateSeed
	for i := range savedStates() {
		out = append(out, stateSeed{fmt.Sprintf("state-%02d", i), uint8(i), nil})
	}
	out = append(out,
		stateSeed{"braid-state", 3, []byte{1, 0, 2, 4}},
		stateSeed{"pieces", 5, []byte{0, 0, 75, 0x10}},
		stateSeed{"truncate", 7, []byte{2, 0x04, 0x00, 0}},
		stateSeed{"length", 9, []byte{5, 0x00, 0xa0, 0x01}},
	)
	return out
}
