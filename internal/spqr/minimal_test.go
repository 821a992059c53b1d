package spqr

import (
	"bytes"
	"errors"
	"math/rand/v2"
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
	for i, want := range map[int]error{last - MaxOutOfOrder: nil, last - MaxOutOfOrder - 1: ErrKeyTrimmed, last: ErrKeyUsed, 0: ErrKeyTrimmed} {
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

// TestMinimalKeepsPQRKey: the PQR key survives a save and a load, so that
// a Minimal session can later start the braid, whose authenticator is
// keyed from it; Clear wipes it.
func TestMinimalKeepsPQRKey(t *testing.T) {
	k := [KeySize]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	m := NewMinimal(&k, false)
	st := m.AppendBinary(nil)
	if !bytes.Equal(st[:KeySize], k[:]) {
		t.Fatal("the state does not start with the PQR key")
	}
	p, err := ParseMinimal(st)
	if err != nil || p.pqrKey != k {
		t.Fatalf("after a load: %v, PQR key kept %v", err, p != nil && p.pqrKey == k)
	}
	p.Clear()
	if p.pqrKey != ([KeySize]byte{}) {
		t.Fatal("Clear kept the PQR key")
	}
}

// TestMinimalUpgrade: a Minimal party talks to a full SPQR peer (as with
// libsignal), then is upgraded: Initiator finds its direction, the
// upgrade serves the late keys Minimal stored and continues its indexes,
// and the two then move through epochs together, reordering and losing
// messages, the peer never having been told.
func TestMinimalUpgrade(t *testing.T) {
	for _, minInit := range []bool{true, false} {
		t.Run(map[bool]string{true: "minimal initiator", false: "minimal responder"}[minInit], func(t *testing.T) {
			a, b := newPair(11) // seeded full ratchets; one is replaced by Minimal
			peer := b
			if !minInit {
				peer = a
			}
			pqr := [KeySize]byte{11, 0, 0xaa}
			m := NewMinimal(&pqr, minInit)
			var late []sent
			// 40 rounds: the peer sends three messages, of which Minimal
			// takes the first and third (the second is kept for after the
			// upgrade), and answers with two None messages.
			for i := range 40 {
				for j := range 3 {
					msg, key, err := peer.Send()
					if err != nil {
						t.Fatal(err)
					}
					if j == 1 {
						late = append(late, sent{msg, key})
						continue
					}
					if i > 30 && j == 2 {
						continue // lost
					}
					got, err := m.Recv(msg)
					if err != nil || got != key {
						t.Fatalf("Minimal receiving: %v", err)
					}
					m.Commit(msg)
				}
				for range 2 {
					msg, key, err := m.Send(nil)
					if err != nil {
						t.Fatal(err)
					}
					got, commit, err := peer.Receive(msg)
					if err != nil || got != key {
						t.Fatalf("the peer receiving None: %v", err)
					}
					commit()
				}
			}
			if peer.Epoch() != 1 {
				t.Fatalf("the peer's braid left epoch 1 alone: %d", peer.Epoch())
			}
			initiator, err := m.Initiator()
			if err != nil || initiator != minInit {
				t.Fatalf("Initiator: %v, %v", initiator, err)
			}
			sendIndex := m.SendIndex()
			up := m.Upgrade(initiator)
			up.rand = seededReader{rand.NewChaCha8([32]byte{byte(len(late)), 1})}
			if m.pqrKey != ([KeySize]byte{}) || m.Stored() != 0 {
				t.Fatal("Upgrade did not wipe the Minimal state")
			}
			for _, s := range late {
				key, commit, err := up.Receive(s.msg)
				if err != nil || key != s.key {
					t.Fatalf("a late message after the upgrade: %v", err)
				}
				commit()
				if _, _, err := up.Receive(s.msg); !errors.Is(err, ErrKeyUsed) {
					t.Fatalf("a late message replayed after the upgrade: %v", err)
				}
			}
			msg, _, err := up.Send()
			if err != nil {
				t.Fatal(err)
			}
			if pm, _, _ := ParseMessage(msg); pm.Epoch != 1 || pm.Index != sendIndex+1 {
				t.Fatalf("first message after the upgrade: epoch %d index %d, want 1, %d", pm.Epoch, pm.Index, sendIndex+1)
			}
			if _, commit, err := peer.Receive(msg); err != nil {
				t.Fatal(err)
			} else {
				commit()
			}
			if minInit {
				a = up
			} else {
				b = up
			}
			c := &conversation{t: t, r: rand.New(rand.NewPCG(11, 12)), a: a, b: b, stats: map[string]int{}}
			for range 2000 {
				c.lossyStep(4)
			}
			if a.Epoch() < 3 || b.Epoch() < 3 {
				t.Fatalf("after the upgrade: epochs %d and %d", a.Epoch(), b.Epoch())
			}
			t.Logf("epochs %d and %d after the upgrade, %v", a.Epoch(), b.Epoch(), c.stats)
		})
	}
}

// TestMinimalInitiator: Initiator tells the directions apart at any
// indexes, refuses a state that is neither side's, and refuses work
// beyond MaxUpgradeSteps.
func TestMinimalInitiator(t *testing.T) {
	a, b := minimalPair()
	for i := range 5 {
		for range i {
			a.Send(nil)
		}
		p, _, _ := b.Send(nil)
		b.Send(nil)
		if _, err := a.Recv(p); err == nil {
			a.Commit(p)
		}
		for _, c := range []struct {
			m    *Minimal
			want bool
		}{{a, true}, {b, false}} {
			got, err := c.m.Initiator()
			if err != nil || got != c.want {
				t.Fatalf("round %d: Initiator %v, %v; want %v", i, got, err, c.want)
			}
		}
	}
	other := [KeySize]byte{8}
	bad := NewMinimal(&other, true).AppendBinary(nil)
	copy(bad, a.AppendBinary(nil)[:KeySize]) // a's PQR key, another session's chains
	m, err := ParseMinimal(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Initiator(); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("chains of another PQR key: %v", err)
	}
	long := NewMinimal(&other, true).AppendBinary(nil)
	for _, at := range []int{KeySize + KeySize, KeySize + 2*KeySize + 4} { // send_index, recv_index
		long[at+1], long[at+3] = 0x01, 0x01 // 2^16 + 1
	}
	m, err = ParseMinimal(long)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Initiator(); !errors.Is(err, ErrUpgradeTooLong) {
		t.Fatalf("chains of 2^16 + 1 each: %v", err)
	}
}
