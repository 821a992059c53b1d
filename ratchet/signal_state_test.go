package ratchet

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/pqxdh"
)

// signalGoldenKeys are the fixed inputs of the Signal golden sessions.
func signalGoldenKeys(t tb) (k *pqxdh.Keys, aliceID, bobID *keys.PublicKey, spk *keys.PrivateKey, key func(string) *keys.PrivateKey) {
	key = func(s string) *keys.PrivateKey {
		k, err := keys.NewPrivateKey(vecKey("golden signal v2", s))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k = new(pqxdh.Keys)
	copy(k.RootKey[:], vecKey("golden signal v2", "root"))
	copy(k.ChainKey[:], vecKey("golden signal v2", "chain"))
	copy(k.PQRKey[:], vecKey("golden signal v2", "pqr"))
	return k, key("alice id").PublicKey(), key("bob id").PublicKey(), key("spk"), key
}

// goldenSignalV2 builds the version 2 (Signal) golden sessions
// deterministically: PQXDH's keys, identity keys and every ratchet key are
// fixed, and the rest of a Signal message (CBC IV, SPQR) is derived.
func goldenSignalV2(t *testing.T) (map[string][]byte, []goldenRecord) {
	k, aliceID, bobID, spk, key := signalGoldenKeys(t)
	alice, err := NewSignalInitiator(k, aliceID, bobID, spk.PublicKey(), withKeys(&Config{}, key("alice0"), key("alice1")))
	if err != nil {
		t.Fatal(err)
	}
	bob, err := NewSignalResponder(k, bobID, aliceID, spk, withKeys(&Config{}, key("bob1"), key("bob2")))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	a := make([][]byte, 5)
	for i := range a {
		a[i] = mustEncrypt(t, alice, fmt.Sprint("a", i))
	}
	files["signal-v2-responder.bin"] = state(t, bob)
	files["signal-v2-initiator.bin"] = state(t, alice)
	recs := []goldenRecord{
		{File: "signal-v2-responder.bin", Description: "Signal responder before its first message",
			Decrypt: []goldenStep{{Msg: a[2], Pt: []byte("a2"), DHPriv: vecKey("golden signal v2", "bob1")}, {Msg: a[0], Pt: []byte("a0")}}},
		{File: "signal-v2-initiator.bin", Description: "Signal initiator after sending five messages, nothing received (receiving chain on the signed prekey)",
			Encrypt: &goldenStep{Pt: []byte("a5")}},
	}
	mustDecrypt(t, bob, a[4], "a4")
	mustDecrypt(t, bob, a[1], "a1")
	mustDecrypt(t, alice, mustEncrypt(t, bob, "b0"), "b0")
	c := make([][]byte, 3)
	for i := range c {
		c[i] = mustEncrypt(t, alice, fmt.Sprint("c", i))
	}
	mustDecrypt(t, bob, c[2], "c2")
	files["signal-v2-established.bin"] = state(t, bob)
	recs = append(recs, goldenRecord{File: "signal-v2-established.bin",
		Description: "Signal responder after two DH steps: two receiving chains, seeds a0, a2, a3 (first chain) and c0, c1 (second), SPQR keys of the late indexes",
		Decrypt: []goldenStep{
			{Msg: a[3], Pt: []byte("a3")}, {Msg: c[0], Pt: []byte("c0")}, {Msg: a[0], Pt: []byte("a0")},
			{Msg: a[1], Error: "duplicate"}, {Msg: c[2], Error: "duplicate"}, {Msg: c[1], Pt: []byte("c1")}, {Msg: a[2], Pt: []byte("a2")},
		},
		Encrypt: &goldenStep{Pt: []byte("b1")}})
	return files, recs
}

// TestSignalStateRejects: a Signal state that breaks a rule of the version
// 2 layout is refused, each rule by itself (the golden established blob,
// one field changed).
func TestSignalStateRejects(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(goldenDir, "signal-v2-established.bin"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSession(good)
	if err != nil || s.sig.nchains != 2 || s.skipped.live == 0 {
		t.Fatalf("golden blob: %v", err)
	}
	const (
		phaseAt  = 5 + 5*32
		nchainAt = phaseAt + 1 + 32 + 4 + 4
		chainAt  = nchainAt + 1 // chains of 32 + 32 + 4 bytes
	)
	pqKindAt := len(good) - s.sig.pq.MarshaledSize() - 3 - 1
	if good[pqKindAt] != pqKindMinimal {
		t.Fatal("layout offsets")
	}
	for name, mutate := range map[string]func(b []byte) []byte{
		"version 3":                   func(b []byte) []byte { b[4] = 3; return b },
		"phase 3":                     func(b []byte) []byte { b[phaseAt] = 3; return b },
		"no receiving chain":          func(b []byte) []byte { b[nchainAt] = 0; return b },
		"six receiving chains":        func(b []byte) []byte { b[nchainAt] = 6; return b },
		"two chains on one key":       func(b []byte) []byte { copy(b[chainAt+68:chainAt+100], b[chainAt:chainAt+32]); return b },
		"seed at the chain's next":    func(b []byte) []byte { clear(b[chainAt+64 : chainAt+68]); return b },
		"non-canonical identity key":  func(b []byte) []byte { copy(b[5:37], bytes.Repeat([]byte{0xff}, 32)); return b },
		"non-canonical receiving key": func(b []byte) []byte { copy(b[chainAt:chainAt+32], bytes.Repeat([]byte{0xff}, 32)); return b },
		"unknown SPQR kind":           func(b []byte) []byte { b[pqKindAt] = 9; return b },
		"SPQR state truncated":        func(b []byte) []byte { b[pqKindAt+3]--; return b[:len(b)-1] },
		"trailing byte":               func(b []byte) []byte { return append(b, 0) },
		"truncated":                   func(b []byte) []byte { return b[:len(b)-1] },
	} {
		b := mutate(bytes.Clone(good))
		if _, err := ParseSession(b); !errors.Is(err, ErrInvalidState) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSignalUnmarshalBinary: one Session reused across protocols loads
// each state exactly, and a failed load leaves it as it was.
func TestSignalUnmarshalBinary(t *testing.T) {
	alice, bob := signalEstablished(t)
	v1a, _ := newPair(t, nil)
	sig, v1 := state(t, bob), state(t, v1a)
	s := new(Session)
	for _, b := range [][]byte{sig, v1, sig} {
		if err := s.UnmarshalBinary(b); err != nil || !bytes.Equal(state(t, s), b) {
			t.Fatalf("UnmarshalBinary: %v", err)
		}
	}
	if err := s.UnmarshalBinary(sig[:len(sig)-1]); err == nil || !bytes.Equal(state(t, s), sig) {
		t.Fatalf("a failed UnmarshalBinary changed the session: %v", err)
	}
	mustDecrypt(t, s, mustEncrypt(t, alice, "to the reused session"), "to the reused session")
}
