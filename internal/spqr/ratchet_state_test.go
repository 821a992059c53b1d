package spqr

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// reload round-trips r through AppendBinary and ParseRatchet, checks that
// the bytes are canonical and MarshaledSize long, and returns the loaded
// copy with r's randomness.
func reload(t testing.TB, r *Ratchet) *Ratchet {
	t.Helper()
	b, err := r.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != r.MarshaledSize() {
		t.Fatalf("state %d: %d bytes, MarshaledSize %d", r.braid.state, len(b), r.MarshaledSize())
	}
	r2, err := ParseRatchet(b)
	if err != nil {
		t.Fatalf("state %d: %v", r.braid.state, err)
	}
	b2, err := r2.AppendBinary(nil)
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatal("a loaded state serializes differently")
	}
	r2.rand = r.rand
	return r2
}

// TestStateRoundTrip runs a reordering, lossy conversation in which both
// parties are saved and loaded after every step: every state of the braid
// round-trips byte for byte, and the loaded states keep agreeing on keys
// through several epochs.
func TestStateRoundTrip(t *testing.T) {
	a, b := newPair(21)
	c := &conversation{t: t, r: rand.New(rand.NewPCG(21, 21)), a: a, b: b, stats: map[string]int{}}
	seen := map[braidState]bool{}
	for range 3000 {
		c.lossyStep(4)
		c.a, c.b = reload(t, c.a), reload(t, c.b)
		seen[c.a.braid.state], seen[c.b.braid.state] = true, true
	}
	if len(seen) != len(pieces) || c.a.Epoch() < 3 {
		t.Fatalf("states seen %v, epoch %d", seen, c.a.Epoch())
	}
}

// TestStateMalformed: every truncation, a trailing byte, and flipped
// bytes in the structural fields are refused.
func TestStateMalformed(t *testing.T) {
	a, b := newPair(22)
	pingPongUntil(t, a, b, func() bool { return b.braid.state == ct1Sampled })
	for _, r := range []*Ratchet{a, b} {
		s, _ := r.AppendBinary(nil)
		for n := range len(s) {
			if _, err := ParseRatchet(s[:n]); !errors.Is(err, ErrStateMalformed) {
				t.Fatalf("a %d-byte prefix of %d: %v", n, len(s), err)
			}
		}
		if _, err := ParseRatchet(append(bytes.Clone(s), 0)); !errors.Is(err, ErrStateMalformed) {
			t.Fatal("a trailing byte was accepted")
		}
		for _, at := range []int{0, 1, 2, 3, 75} { // format, direction, state, epoch's top byte, pieces
			bad := bytes.Clone(s)
			bad[at] ^= 0x80
			if _, err := ParseRatchet(bad); !errors.Is(err, ErrStateMalformed) {
				t.Fatalf("byte %d flipped: %v", at, err)
			}
		}
	}
	// ct1 that the stored randomness does not give.
	s, _ := b.AppendBinary(nil)
	off := 3 + 8 + 64 + 1 + 64 + 32 // state, epoch, keys, pieces, header, m
	s[off+10] ^= 1
	if _, err := ParseRatchet(s); !errors.Is(err, ErrStateMalformed) {
		t.Fatalf("a ct1 that does not match its randomness: %v", err)
	}
}

// FuzzParseRatchet: no input panics the parser, whatever parses
// serializes back to the same bytes, and a loaded state survives sending
// and receiving.
func FuzzParseRatchet(f *testing.F) {
	a, b := newPair(23)
	for _, st := range []braidState{keysSampled, headerSent, ct1Received} {
		pingPongUntil(f, a, b, func() bool { return a.braid.state == st })
		s, _ := a.AppendBinary(nil)
		f.Add(s)
		s, _ = b.AppendBinary(nil)
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRatchet(data)
		if err != nil {
			return
		}
		s, err := r.AppendBinary(nil)
		if err != nil || !bytes.Equal(s, data) {
			t.Fatal("not canonical")
		}
		r.rand = seededReader{rand.NewChaCha8([32]byte{})}
		if msg, _, err := r.Send(); err == nil {
			if _, commit, err := r.Receive(msg); err == nil {
				commit()
			}
		}
		for _, typ := range []MessageType{None, Hdr, Ek, EkCt1Ack, Ct1Ack, Ct1, Ct2} {
			p := appendHeader(nil, r.Epoch(), 7, typ)
			if typ != None && typ != Ct1Ack {
				p = AppendChunk(p, Chunk{Index: 1})
			}
			if _, commit, err := r.Receive(p); err == nil {
				commit()
			}
		}
	})
}
