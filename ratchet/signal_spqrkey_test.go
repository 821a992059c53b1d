package ratchet

import (
	"errors"
	"testing"
)

// TestSignalSPQRKeyUsed: an SPQR key already used or trimmed is
// ErrSPQRKeyUsed, which wraps ErrDuplicate, so that a session layer can
// go on to other sessions as libsignal does; a Double Ratchet key used
// or dropped is ErrDuplicate alone, on which libsignal stops.
func TestSignalSPQRKeyUsed(t *testing.T) {
	alice, bob := signalEstablished(t)
	old := mustEncrypt(t, alice, "old") // chain 2, at the position Bob expects next
	mustDecrypt(t, alice, mustEncrypt(t, bob, "turn"), "turn")
	ms := held(t, alice, 2002) // chain 3
	mustDecrypt(t, bob, ms[2001], "m2001")
	spqrUsed := func(msg []byte, want bool, what string) {
		t.Helper()
		decryptFails(t, bob, msg, ErrDuplicate)
		if _, err := bob.Decrypt(msg); errors.Is(err, ErrSPQRKeyUsed) != want {
			t.Fatalf("%s: %v, want ErrSPQRKeyUsed %v", what, err, want)
		}
	}
	// The Double Ratchet would decrypt old (its chain is held, old at its
	// next position); SPQR has trimmed its key.
	spqrUsed(old, true, "an SPQR key trimmed")
	mustDecrypt(t, bob, ms[1], "m1")
	spqrUsed(ms[1], false, "a Double Ratchet key used")
	spqrUsed(ms[0], false, "a Double Ratchet key dropped")

	// Another pair's message at an SPQR index Bob's session has used: a
	// new chain to Bob's session, whose SPQR key is used.
	other, _ := newSignalPair(t)
	var m []byte
	for range 3 {
		m = mustEncrypt(t, other, "another session")
	}
	spqrUsed(m, true, "another session's message")
}
