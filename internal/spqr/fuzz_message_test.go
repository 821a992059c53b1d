package spqr

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
)

// The fuzz targets of this file and of fuzz_state_test.go and
// fuzz_epochs_test.go keep their seeds under testdata/fuzz/FuzzX; the
// seeds come from the seeded conversations here (and, for
// FuzzParseMessage, libsignal's transcripts), and TestWriteFuzzSeeds (fuzz_seeds_test.go) writes them
// again.

// receivers are Ratchets in every state of the braid, both roles, at
// epochs 1 to 3, serialized: FuzzParseMessage hands its input to a fresh
// copy of one of them.
var receivers = sync.OnceValue(func() [][]byte {
	a, b := newPair(31)
	var out [][]byte
	seen := map[[3]uint64]bool{}
	x, y := a, b
	for range 400 {
		for _, r := range []*Ratchet{a, b} {
			k := [3]uint64{uint64(r.braid.state), r.Epoch(), uint64(r.chains.dir)}
			if !seen[k] && r.Epoch() <= 3 {
				seen[k] = true
				s, err := r.AppendBinary(nil)
				if err != nil {
					panic(err)
				}
				out = append(out, s)
			}
		}
		msg, _, err := x.Send()
		if err != nil {
			panic(err)
		}
		_, commit, err := y.Receive(msg)
		if err != nil {
			panic(err)
		}
		commit()
		x, y = y, x
	}
	return out
})

// FuzzParseMessage: ParseMessage and ParseChunk never panic; what parses
// is canonical (it re-encodes to the same bytes), has an epoch of at least
// 1 and carries a chunk exactly when its type does. The same bytes are
// then received by a Ratchet in one of the braid's states (chosen by
// which): Receive never panics and changes nothing before commit, a
// refusal included; what it accepts commits, and the committed state
// still serializes canonically.
func FuzzParseMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		m, c, err := ParseMessage(b)
		if err == nil {
			if m.Epoch == 0 {
				t.Fatal("epoch 0 parsed")
			}
			if (c == nil) != (m.Type == None || m.Type == Ct1Ack) {
				t.Fatalf("type %d with chunk %v", m.Type, c != nil)
			}
			re := appendHeader(nil, m.Epoch, m.Index, m.Type)
			if c != nil {
				re = AppendChunk(re, *c)
			}
			if !bytes.Equal(re, b) {
				t.Fatalf("%x re-encodes as %x", b, re)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("ParseMessage: %v", err)
		}
		// The chunk parser alone, on the whole input and on its tail.
		for _, tail := range [][]byte{b, b[min(len(b), 3):]} {
			if ch, err := ParseChunk(tail); err == nil {
				if !bytes.Equal(AppendChunk(nil, ch), tail) {
					t.Fatalf("chunk %x re-encodes differently", tail)
				}
			}
		}

		states := receivers()
		r, err := ParseRatchet(states[int(which)%len(states)])
		if err != nil {
			t.Fatal(err)
		}
		before := fingerprint(r)
		_, commit, err := r.Receive(b)
		if fingerprint(r) != before {
			t.Fatal("Receive changed the state before commit")
		}
		if err != nil {
			if m == nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("an unparsable message refused with %v", err)
			}
			return
		}
		if m == nil {
			t.Fatal("Receive accepted a message ParseMessage refuses")
		}
		commit()
		if s, err := r.AppendBinary(nil); err != nil {
			t.Fatal(err)
		} else if r2, err := ParseRatchet(s); err != nil {
			t.Fatalf("a committed state does not load: %v", err)
		} else if s2, _ := r2.AppendBinary(nil); !bytes.Equal(s, s2) {
			t.Fatal("a committed state reloads differently")
		}
	})
}

var typeNames = [...]string{None: "none", Hdr: "hdr", Ek: "ek", EkCt1Ack: "ekct1ack", Ct1Ack: "ct1ack", Ct1: "ct1", Ct2: "ct2"}

type messageSeed struct {
	name  string
	which uint8
	msg   []byte
}

// fuzzMessageSeeds: one message of every type, as a seeded ping-pong
// conversation sends them, each paired with a receiver in the state that
// waits for it; libsignal's first message of each type; a None with a trailing byte, a chunk with a non-minimal
// index and a message of epoch 0.
func fuzzMessageSeeds(tb *testing.T) []messageSeed {
	states := receivers()
	index := func(st braidState, epoch uint64, dir Direction) uint8 {
		for i, s := range states {
			if s[2] == byte(st) && s[1] == byte(dir) && s[3+7] == byte(epoch) {
				return uint8(i)
			}
		}
		tb.Fatalf("no receiver in state %d", st)
		return 0
	}
	a, b := newPair(31)
	var out []messageSeed
	seen := map[MessageType]bool{}
	x, y := a, b
	for range 200 {
		msg, _, err := x.Send()
		if err != nil {
			tb.Fatal(err)
		}
		m, _, _ := ParseMessage(msg)
		if !seen[m.Type] {
			seen[m.Type] = true
			out = append(out, messageSeed{typeNames[m.Type], index(y.braid.state, y.Epoch(), y.chains.dir), msg})
		}
		_, commit, err := y.Receive(msg)
		if err != nil {
			tb.Fatal(err)
		}
		commit()
		x, y = y, x
	}
	if len(seen) != 7 {
		tb.Fatalf("the conversation sent only types %v", seen)
	}
	// libsignal's own: the first message of each type in its transcripts,
	// to the receiver that waits for it at epoch 1.
	v := libsignaltest.Load(tb)
	lsSeen := map[MessageType]bool{}
	for _, m := range v.Sessions[0].Messages {
		payload := pqPayload(tb, &m)
		pm, _, err := ParseMessage(payload)
		if err != nil {
			tb.Fatalf("libsignal message %d: %v", m.Seq, err)
		}
		if lsSeen[pm.Type] {
			continue
		}
		lsSeen[pm.Type] = true
		st, dir := noHeaderReceived, BToA // Bob receives Alice's key
		if m.From == "bob" {
			st, dir = keysSampled, AToB
		}
		out = append(out, messageSeed{"libsignal-" + m.From + "-" + typeNames[pm.Type], index(st, 1, dir), payload})
	}
	out = append(out,
		messageSeed{"none-trailing", 0, append(appendHeader(nil, 1, 1, None), 0)},
		messageSeed{"chunk-index-not-minimal", 1, append(appendHeader(nil, 1, 2, Hdr), append([]byte{0x80, 0x00}, make([]byte, ChunkSize)...)...)},
		messageSeed{"epoch-0", 0, appendHeader(nil, 0, 1, None)},
	)
	return out
}
