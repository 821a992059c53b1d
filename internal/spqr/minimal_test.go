package spqr

import (
	"bytes"
	"errors"
	"testing"
)

func minimalPair() (a, b *Minimal) {
	k := [KeySize]byte{7}
	return NewMinimal(&k, true), NewMinimal(&k, false)
}

// TestMinimalWindow: a late index is served while it is at most
// MaxOutOfOrder behind the newest received one, once; Recv changes
// nothing until Commit.
func TestMinimalWindow(t *testing.T) {
	a, b := minimalPair()
	var payloads [][]byte
	var keys [][KeySize]byte
	for range MaxOutOfOrder + 3 {
		p, k, err := a.Send(nil)
		if err != nil {
			t.Fatal(err)
		}
		payloads, keys = append(payloads, p), append(keys, k)
	}
	last := len(payloads) - 1
	before := b.AppendBinary(nil)
	k, err := b.Recv(payloads[last])
	if err != nil || k != keys[last] {
		t.Fatalf("Recv: %v", err)
	}
	if !bytes.Equal(before, b.AppendBinary(nil)) {
		t.Fatal("Recv changed the state")
	}
	b.Commit(payloads[last])
	if b.Stored() != MaxOutOfOrder {
		t.Fatalf("%d keys stored", b.Stored())
	}
	// Index last+1 is the newest; last+1−2000 is still there, one below is not.
	for i, want := range map[int]error{last - MaxOutOfOrder: nil, last - MaxOutOfOrder - 1: ErrKeyUsed, last: ErrKeyUsed, 0: ErrKeyUsed} {
		k, err := b.Recv(payloads[i])
		if !errors.Is(err, want) || (err == nil && k != keys[i]) {
			t.Fatalf("index %d: %v, want %v", i+1, err, want)
		}
	}
	b.Commit(payloads[last-MaxOutOfOrder])
	if _, err := b.Recv(payloads[last-MaxOutOfOrder]); !errors.Is(err, ErrKeyUsed) {
		t.Fatalf("a used late key is served again: %v", err)
	}
	// Round trip.
	st := b.AppendBinary(nil)
	c, err := ParseMinimal(st)
	if err != nil || !bytes.Equal(c.AppendBinary(nil), st) || len(st) != b.MarshaledSize() {
		t.Fatalf("round trip: %v", err)
	}
	if k, err := c.Recv(payloads[5]); err != nil || k != keys[5] {
		t.Fatalf("parsed state: %v", err)
	}
}

func TestMinimalJumpAndEpoch(t *testing.T) {
	a, b := minimalPair()
	if _, err := b.Recv(AppendNone(nil, 1, MaxJump)); err != nil {
		t.Fatalf("jump of MaxJump: %v", err)
	}
	if _, err := b.Recv(AppendNone(nil, 1, MaxJump+1)); !errors.Is(err, ErrTooFar) {
		t.Fatalf("jump of MaxJump+1: %v", err)
	}
	if _, err := b.Recv(AppendNone(nil, 2, 1)); !errors.Is(err, ErrEpoch) {
		t.Fatalf("epoch 2: %v", err)
	}
	if _, err := b.Recv([]byte{2, 1, 1, 0}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("version 2: %v", err)
	}
	// The braid's chunks of a full SPQR peer are ignored, its key used.
	p, k, _ := a.Send(nil)
	chunk := append(append(bytes.Clone(p[:len(p)-1]), byte(Hdr)), make([]byte, 32)...)
	if got, err := b.Recv(chunk); err != nil || got != k {
		t.Fatalf("Hdr message: %v", err)
	}
}

func TestParseMinimalRejects(t *testing.T) {
	a, b := minimalPair()
	for range 5 {
		p, _, _ := a.Send(nil)
		if p[2] == 5 {
			b.Commit(p)
		}
	}
	good := b.AppendBinary(nil)
	if b.Stored() != 4 {
		t.Fatalf("%d stored", b.Stored())
	}
	bad := [][]byte{nil, good[:len(good)-1], append(bytes.Clone(good), 0)}
	swap := bytes.Clone(good)
	copy(swap[MinimalStateSize:], good[MinimalStateSize+36:MinimalStateSize+72])
	copy(swap[MinimalStateSize+36:], good[MinimalStateSize:MinimalStateSize+36])
	high := bytes.Clone(good)
	high[MinimalStateSize+3+3*36] = 5 // an index not below recv_index
	bad = append(bad, swap, high)
	for i, x := range bad {
		if _, err := ParseMinimal(x); !errors.Is(err, ErrInvalidState) {
			t.Errorf("case %d parses: %v", i, err)
		}
	}
}
