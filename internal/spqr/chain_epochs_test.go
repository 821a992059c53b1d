package spqr

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestChainsFirstEpoch: epoch 0 of Chains gives exactly the keys of the
// minimal first-epoch Chain (which the libsignal transcripts pin), in both
// directions.
func TestChainsFirstEpoch(t *testing.T) {
	pqr := [KeySize]byte{3, 1, 4}
	a, b := NewChains(&pqr, AToB), NewChains(&pqr, BToA)
	e := Start(&pqr)
	ab, ba := e.Chain(AToB), e.Chain(BToA)
	for i := uint32(1); i <= 5; i++ {
		idx, k, err := a.SendKey(0)
		if err != nil || idx != i || k != ab.Next() {
			t.Fatalf("A's send key %d: %v", i, err)
		}
		got, commit, err := b.RecvKey(0, i)
		if err != nil || got != k {
			t.Fatalf("B's receive key %d: %v", i, err)
		}
		commit()
		idx, k, _ = b.SendKey(0)
		if idx != i || k != ba.Next() {
			t.Fatalf("B's send key %d", i)
		}
	}
	if _, _, err := b.RecvKey(0, 0); !errors.Is(err, ErrNoKey) {
		t.Fatalf("index 0 of epoch 0: %v", err)
	}
}

// TestChainsAddEpoch: Add Epoch recomputed with crypto/hkdf from the next
// root, and both parties agree on the new epoch's keys in each direction.
func TestChainsAddEpoch(t *testing.T) {
	pqr := [KeySize]byte{5}
	a, b := NewChains(&pqr, AToB), NewChains(&pqr, BToA)
	secret := bytes.Repeat([]byte{0x42}, 32)
	root := Start(&pqr).NextRoot
	out, err := hkdf.Key(sha256.New, secret, root[:], "Signal PQ Ratchet V1 Chain Add Epoch", 96)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.AddEpoch(2, secret); err == nil {
		t.Fatal("AddEpoch skipped an epoch")
	}
	if a.AddEpoch(1, secret) != nil || b.AddEpoch(1, secret) != nil {
		t.Fatal("AddEpoch")
	}
	if !bytes.Equal(a.nextRoot[:], out[:32]) || !bytes.Equal(a.links[1].send.key[:], out[32:64]) || !bytes.Equal(b.links[1].send.key[:], out[64:]) {
		t.Fatal("Add Epoch's split differs from HKDF's output")
	}
	for _, pair := range [][2]*Chains{{a, b}, {b, a}} {
		_, k, err := pair[0].SendKey(1)
		if err != nil {
			t.Fatal(err)
		}
		got, commit, err := pair[1].RecvKey(1, 1)
		if err != nil || got != k {
			t.Fatalf("epoch 1 keys differ: %v", err)
		}
		commit()
	}
	// A sent in epoch 1: it cannot send in epoch 0 again, and still
	// receives there (the one epoch kept before the sending one).
	if _, _, err := a.SendKey(0); !errors.Is(err, ErrEpochDecreased) {
		t.Fatalf("sending in an older epoch: %v", err)
	}
	if _, _, err := b.SendKey(0); !errors.Is(err, ErrEpochDecreased) {
		t.Fatalf("sending in an older epoch: %v", err)
	}
	if _, _, err := a.RecvKey(0, 1); err != nil {
		t.Fatalf("receiving in the epoch before: %v", err)
	}
	if _, _, err := a.RecvKey(2, 1); !errors.Is(err, ErrEpochOutOfRange) {
		t.Fatalf("receiving in a future epoch: %v", err)
	}
	// Two epochs on and sending there drops epoch 0.
	for ep := uint64(2); ep <= 3; ep++ {
		a.AddEpoch(ep, secret)
	}
	if _, _, err := a.SendKey(3); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.RecvKey(1, 1); !errors.Is(err, ErrEpochOutOfRange) {
		t.Fatalf("receiving two epochs back: %v", err)
	}
	if _, _, err := a.RecvKey(2, 1); err != nil {
		t.Fatalf("receiving one epoch back: %v", err)
	}
	if len(a.links) != 2 {
		t.Fatalf("%d epochs kept", len(a.links))
	}
}

// TestRecvKeyWindow: out-of-order keys within MaxOOOKeys decrypt once,
// older ones and replays are refused, a jump beyond MaxJump is refused,
// and nothing changes until commit.
func TestRecvKeyWindow(t *testing.T) {
	pqr := [KeySize]byte{8}
	a, b := NewChains(&pqr, AToB), NewChains(&pqr, BToA)
	const total = MaxOOOKeys + 500
	sent := make([][KeySize]byte, total+1)
	for i := 1; i <= total; i++ {
		_, sent[i], _ = a.SendKey(0)
	}
	// An uncommitted receive changes nothing.
	if k, _, err := b.RecvKey(0, 10); err != nil || k != sent[10] {
		t.Fatal(err)
	}
	if k, commit, err := b.RecvKey(0, 10); err != nil || k != sent[10] {
		t.Fatal(err)
	} else {
		commit()
	}
	if _, _, err := b.RecvKey(0, 10); !errors.Is(err, ErrKeyUsed) {
		t.Fatalf("replay: %v", err)
	}
	k, commit, err := b.RecvKey(0, total)
	if err != nil || k != sent[total] {
		t.Fatal(err)
	}
	commit()
	// Exactly the last MaxOOOKeys indexes before total are still there.
	if _, _, err := b.RecvKey(0, total-MaxOOOKeys-1); !errors.Is(err, ErrKeyTrimmed) {
		t.Fatalf("too old: %v", err)
	}
	for _, i := range []uint32{total - MaxOOOKeys, total - 1, total - 700} {
		k, commit, err := b.RecvKey(0, i)
		if err != nil || k != sent[i] {
			t.Fatalf("index %d: %v", i, err)
		}
		commit()
		if _, _, err := b.RecvKey(0, i); !errors.Is(err, ErrKeyUsed) {
			t.Fatalf("index %d twice: %v", i, err)
		}
	}
	if _, _, err := b.RecvKey(0, total+MaxJump+1); !errors.Is(err, ErrTooFar) {
		t.Fatalf("too far: %v", err)
	}
	if _, _, err := b.RecvKey(0, total+MaxJump); err != nil {
		t.Fatalf("MaxJump: %v", err)
	}
	// The history stays bounded through many jumps.
	for i := range 40 {
		_, commit, err := b.RecvKey(0, uint32(total+(i+1)*1000))
		if err != nil {
			t.Fatal(err)
		}
		commit()
		if n := len(b.links[0].recv.history); n > historyTrim {
			t.Fatalf("history holds %d keys", n)
		}
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%x"} {
		if s := fmt.Sprintf(verb, b); !strings.Contains(s, "REDACTED") {
			t.Fatalf("Sprintf(%q, chains) = %.40s", verb, s)
		}
	}
	b.Clear()
	if b.links[0].recv.key != ([KeySize]byte{}) || b.nextRoot != ([KeySize]byte{}) {
		t.Fatal("Clear left keys")
	}
}

// TestChainsRandomOrder: a seeded stream of keys over several epochs,
// delivered shuffled within windows and with losses, is received exactly:
// every delivered key matches and none comes twice.
func TestChainsRandomOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	pqr := [KeySize]byte{1}
	a, b := NewChains(&pqr, AToB), NewChains(&pqr, BToA)
	type msg struct {
		epoch uint64
		index uint32
		key   [KeySize]byte
	}
	for ep := uint64(0); ep < 4; ep++ {
		if ep > 0 {
			s := []byte{byte(ep)}
			a.AddEpoch(ep, s)
			b.AddEpoch(ep, s)
		}
		var batch []msg
		for range 300 {
			i, k, err := a.SendKey(ep)
			if err != nil {
				t.Fatal(err)
			}
			batch = append(batch, msg{ep, i, k})
		}
		for i := range batch {
			j := min(len(batch)-1, i+r.IntN(6))
			batch[i], batch[j] = batch[j], batch[i]
		}
		for _, m := range batch {
			if r.IntN(10) == 0 {
				continue // lost
			}
			k, commit, err := b.RecvKey(m.epoch, m.index)
			if err != nil || k != m.key {
				t.Fatalf("epoch %d index %d: %v", m.epoch, m.index, err)
			}
			commit()
		}
	}
}
