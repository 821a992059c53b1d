package ratchet

import (
	"fmt"
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
