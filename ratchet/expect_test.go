package ratchet

import (
	"crypto/rand"
	"testing"
)

// TestKnowsRatchetKey and AwaitsNewRatchetKey follow a conversation: a
// session knows the keys it receives under, and awaits a new one exactly
// when it has sent under its current key.
func TestKnowsRatchetKey(t *testing.T) {
	alice, bob := newPair(t, nil)
	var fresh [32]byte
	rand.Read(fresh[:])
	forged := func(pub []byte) []byte {
		m := make([]byte, minMessageSize)
		m[0], m[1] = typeRatchet, 0x05
		copy(m[2:34], pub)
		return m
	}
	check := func(who string, s *Session, msg []byte, knows, awaits bool) {
		t.Helper()
		if got := s.KnowsRatchetKey(msg); got != knows {
			t.Errorf("%s: KnowsRatchetKey = %v, want %v", who, got, knows)
		}
		if got := s.AwaitsNewRatchetKey(); got != awaits {
			t.Errorf("%s: AwaitsNewRatchetKey = %v, want %v", who, got, awaits)
		}
	}
	// A responder that has received nothing awaits the initiator's key.
	check("bob before any message", bob, forged(fresh[:]), false, true)
	// The initiator before sending: nothing to answer.
	check("alice before sending", alice, forged(fresh[:]), false, false)
	a1, _ := alice.Encrypt([]byte("a1"))
	a2, _ := alice.Encrypt([]byte("a2"))
	check("alice after sending", alice, forged(fresh[:]), false, true)
	if _, err := bob.Decrypt(a2); err != nil { // a1 skipped
		t.Fatal(err)
	}
	// Bob stepped and has not sent under his new key: a new key from
	// Alice is impossible; hers he knows.
	check("bob after receiving", bob, forged(fresh[:]), false, false)
	check("bob, Alice's key", bob, a1, true, false)
	b1, _ := bob.Encrypt([]byte("b1"))
	check("bob after answering", bob, forged(fresh[:]), false, true)
	if _, err := alice.Decrypt(b1); err != nil {
		t.Fatal(err)
	}
	check("alice after receiving", alice, b1, true, false)
	// a1's key is now only in Bob's skipped keys: still known.
	a3, _ := alice.Encrypt([]byte("a3"))
	if _, err := bob.Decrypt(a3); err != nil {
		t.Fatal(err)
	}
	check("bob, a skipped chain", bob, a1, true, false)
	if bob.KnowsRatchetKey(a1[:headerSize-1]) {
		t.Error("a truncated header is known")
	}
}
