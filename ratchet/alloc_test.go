package ratchet

import (
	"encoding/binary"
	"testing"
)

// TestAllocations pins the allocation counts of the hot paths. AES-GCM
// costs two allocations per message key (crypto/aes's key schedule and
// crypto/cipher's GCM); everything else reuses pooled or caller-owned
// memory.
func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	alice, bob := newPair(t, nil)
	pt := make([]byte, 1024)
	msg := make([]byte, 0, 2048)
	out := make([]byte, 0, 2048)
	// Establish both directions, and warm the pools.
	for range 3 {
		var err error
		msg, _ = alice.AppendEncrypt(msg[:0], pt)
		if out, err = bob.AppendDecrypt(out[:0], msg); err != nil {
			t.Fatal(err)
		}
		msg, _ = bob.AppendEncrypt(msg[:0], pt)
		if out, err = alice.AppendDecrypt(out[:0], msg); err != nil {
			t.Fatal(err)
		}
	}
	check := func(name string, want float64, f func()) {
		t.Helper()
		if got := testing.AllocsPerRun(100, f); got != want {
			t.Errorf("%s: %v allocations, want %v", name, got, want)
		}
	}
	check("AppendEncrypt", 2, func() { msg, _ = alice.AppendEncrypt(msg[:0], pt) })
	check("AppendEncrypt+AppendDecrypt", 4, func() {
		msg, _ = alice.AppendEncrypt(msg[:0], pt)
		if _, err := bob.AppendDecrypt(out[:0], msg); err != nil {
			t.Fatal(err)
		}
	})
	check("Encrypt+Decrypt", 6, func() {
		m, _ := alice.Encrypt(pt)
		if _, err := bob.Decrypt(m); err != nil {
			t.Fatal(err)
		}
	})
	check("ping-pong with a DH step", 4, func() {
		msg, _ = alice.AppendEncrypt(msg[:0], pt)
		if _, err := bob.AppendDecrypt(out[:0], msg); err != nil {
			t.Fatal(err)
		}
		alice, bob = bob, alice
	})

	// Rejections before any key derivation allocate nothing.
	alice, bob = newPair(t, nil)
	msg, _ = alice.AppendEncrypt(msg[:0], pt)
	if _, err := bob.Decrypt(msg); err != nil {
		t.Fatal(err)
	}
	msg, _ = alice.AppendEncrypt(msg[:0], pt)
	overflow := append([]byte(nil), msg...)
	binary.BigEndian.PutUint32(overflow[38:], 1<<32-1)
	check("counter overflow", 0, func() { bob.Decrypt(overflow) })
	check("malformed", 0, func() { bob.Decrypt(msg[:57]) })
	gap := append([]byte(nil), msg...)
	binary.BigEndian.PutUint32(gap[38:], 5000)
	check("gap too large", 0, func() { bob.Decrypt(gap) })
	forged := append([]byte(nil), msg...)
	forged[len(forged)-1] ^= 1
	check("forged (AES-GCM key schedule only)", 2, func() { bob.AppendDecrypt(out[:0], forged) })

	// Loading and saving a session, the session layer's pattern: one
	// allocation for a new Session, none when one is reused with
	// UnmarshalBinary, and two more (ring and runs) for skipped keys.
	buf := make([]byte, 0, 8192)
	parse := func(b []byte) {
		s, err := ParseSession(b)
		if err != nil {
			t.Fatal(err)
		}
		buf, _ = s.AppendBinary(buf[:0])
		sink = s
	}
	reused := new(Session)
	unmarshal := func(b []byte) {
		if err := reused.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		buf, _ = reused.AppendBinary(buf[:0])
	}
	b := state(t, bob)
	check("ParseSession+AppendBinary", 1, func() { parse(b) })
	check("UnmarshalBinary+AppendBinary", 0, func() { unmarshal(b) })
	for range 10 {
		alice.Encrypt(pt)
	}
	msg, _ = alice.AppendEncrypt(msg[:0], pt)
	if _, err := bob.Decrypt(msg); err != nil {
		t.Fatal(err)
	}
	b = state(t, bob)
	check("ParseSession+AppendBinary, skipped keys", 3, func() { parse(b) })
	check("UnmarshalBinary+AppendBinary, skipped keys", 2, func() { unmarshal(b) })
}

var sink *Session
