package ratchet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/spqr"
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

// goldenSignalV2Full builds the golden Signal sessions of full SPQR
// (pq_kind 2) deterministically: the inputs of goldenSignalV2, every
// ratchet key from a counter, and seeded braids. Each stored session's
// next Encrypt draws no randomness, so its message is fixed too.
func goldenSignalV2Full(t *testing.T) (map[string][]byte, []goldenRecord) {
	k, aliceID, bobID, spk, key := signalGoldenKeys(t)
	counter := func(who string) *Config {
		n := 0
		return &Config{keySource: func() (*keys.PrivateKey, error) {
			n++
			return key(fmt.Sprint("full ", who, n)), nil
		}}
	}
	alice, err := NewSignalInitiator(k, aliceID, bobID, spk.PublicKey(), counter("alice"))
	if err != nil {
		t.Fatal(err)
	}
	bob, err := NewSignalResponder(k, bobID, aliceID, spk, counter("bob"))
	if err != nil {
		t.Fatal(err)
	}
	seedSPQR(alice, "golden alice")
	seedSPQR(bob, "golden bob")
	files := map[string][]byte{}
	a := make([][]byte, 5)
	for i := range a {
		a[i] = mustEncrypt(t, alice, fmt.Sprint("a", i))
	}
	files["signal-v2-spqr-responder.bin"] = state(t, bob)
	files["signal-v2-spqr-initiator.bin"] = state(t, alice)
	recs := []goldenRecord{
		{File: "signal-v2-spqr-responder.bin", Description: "Signal responder with full SPQR before its first message",
			Decrypt: []goldenStep{{Msg: a[2], Pt: []byte("a2"), DHPriv: key("full bob1").Bytes()}, {Msg: a[0], Pt: []byte("a0")}, {Msg: a[2], Error: "duplicate"}}},
		{File: "signal-v2-spqr-initiator.bin", Description: "Signal initiator with full SPQR after sending five messages (header chunks), nothing received",
			Encrypt: &goldenStep{Pt: []byte("a5")}},
	}
	for i := 1; i < len(a); i++ {
		mustDecrypt(t, bob, a[i], fmt.Sprint("a", i))
	}
	// Round trips until the braid is past epoch 3, stopping where Bob's
	// next message needs no randomness. Every other round Alice sends one
	// more message first, which Bob does not get yet: he gets the next one
	// on the same chain, and stores the first one's seed.
	var late []goldenStep
	sameNext := func(s *Session) bool { // the next Encrypt of the stored state is fixed
		b := state(t, s)
		return bytes.Equal(mustEncrypt(t, must(ParseSession(b)), "x"), mustEncrypt(t, must(ParseSession(b)), "x"))
	}
	for i := 0; pqEpoch(bob) < 4 || pqEpoch(alice) < 4 || len(late) < 2 || !sameNext(bob); i++ {
		if i%2 == 0 {
			late = append(late, goldenStep{Msg: mustEncrypt(t, alice, fmt.Sprint("late", i)), Pt: []byte(fmt.Sprint("late", i))})
		}
		ma := mustEncrypt(t, alice, fmt.Sprint("c", i))
		mustDecrypt(t, bob, ma, fmt.Sprint("c", i))
		mb := mustEncrypt(t, bob, fmt.Sprint("d", i))
		mustDecrypt(t, alice, mb, fmt.Sprint("d", i))
	}
	files["signal-v2-spqr-established.bin"] = state(t, bob)
	// a0 is late too, but of a receiving chain Bob has dropped and of SPQR
	// epoch 1, whose chains SPQR has dropped (it keeps the epoch before
	// its sending epoch only): the SPQR check refuses it.
	steps := append([]goldenStep{{Msg: a[0], Error: "malformed"}}, late[len(late)-2:]...)
	steps = append(steps, goldenStep{Msg: late[len(late)-1].Msg, Error: "duplicate"})
	recs = append(recs, goldenRecord{File: "signal-v2-spqr-established.bin",
		Description: fmt.Sprintf("Signal responder with full SPQR at braid epoch %d: a late message of epoch 1 is refused, the two newest late ones decrypt once", pqEpoch(bob)),
		Decrypt:     steps,
		Encrypt:     &goldenStep{Pt: []byte("b-last")}})
	return files, recs
}

// TestSignalMinimalStateRejects: a state of minimal SPQR is refused at
// load when its chains are neither side's, or the other side's than its
// phase says (the golden responder, whose phase tells its side).
func TestSignalMinimalStateRejects(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(goldenDir, "signal-v2-responder.bin"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSession(good)
	if err != nil {
		t.Fatal(err)
	}
	pq := len(good) - s.sig.pq.MarshaledSize() // pqr_key, send_chain, send_index, recv_chain, ...
	send, recv := pq+32, pq+32+36
	for name, mutate := range map[string]func(b []byte){
		"chains of neither side": func(b []byte) { b[send] ^= 1 },
		"the initiator's chains": func(b []byte) {
			tmp := bytes.Clone(b[send : send+32])
			copy(b[send:send+32], b[recv:recv+32])
			copy(b[recv:recv+32], tmp)
		},
	} {
		b := bytes.Clone(good)
		mutate(b)
		if _, err := ParseSession(b); !errors.Is(err, ErrInvalidState) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSignalMinimalStateTooLong: a state of minimal SPQR whose chains are
// both past spqr.MaxUpgradeSteps stays on minimal SPQR (telling its
// direction would cost too much): it loads, works and is stored as
// pq_kind 1.
func TestSignalMinimalStateTooLong(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(goldenDir, "signal-v2-initiator.bin"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSession(b)
	if err != nil {
		t.Fatal(err)
	}
	pq := len(b) - s.sig.pq.MarshaledSize() // pqr_key, send_chain, send_index, recv_chain, recv_index
	for _, at := range []int{pq + 64, pq + 100} {
		binary.BigEndian.PutUint32(b[at:], spqr.MaxUpgradeSteps+1)
	}
	if s, err = ParseSession(b); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.sig.pq.(*spqr.Minimal); !ok {
		t.Fatal("not kept on minimal SPQR")
	}
	mustEncrypt(t, s, "still minimal")
	if out := state(t, s); out[len(out)-s.sig.pq.MarshaledSize()-4] != pqKindMinimal {
		t.Fatal("not stored as pq_kind 1")
	}
}

// TestSignalMinimalStateEstablishedAtUse: an established state of minimal
// SPQR is told its direction at its first message, not at load (a
// session record loads every archived state each time, and telling costs
// up to 2·spqr.MaxUpgradeSteps chain steps). One whose chains are neither
// side's loads, fails every message with ErrInvalidState and changes
// nothing; an honest one loads unresolved and upgrades on use.
func TestSignalMinimalStateEstablishedAtUse(t *testing.T) {
	alice, bob := newSignalPairMinimalSPQR(t)
	mustDecrypt(t, bob, mustEncrypt(t, alice, "a1"), "a1")
	mustDecrypt(t, alice, mustEncrypt(t, bob, "b1"), "b1")
	good := state(t, bob)
	s, err := ParseSession(good)
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := s.sig.pq.(*upgradePQ); !ok || u.resolved {
		t.Fatalf("an established minimal state loads as %T, resolved", s.sig.pq)
	}
	bad := bytes.Clone(good)
	bad[len(bad)-s.sig.pq.MarshaledSize()+32] ^= 1 // send_chain: neither side's
	s, err = ParseSession(bad)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if _, err := s.Encrypt([]byte("x")); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("Encrypt: %v", err)
	}
	if u, ok := s.sig.pq.(*upgradePQ); !ok || !u.bad {
		t.Fatal("the refusal is not remembered: each message would step the chains again")
	}
	decryptFails(t, s, mustEncrypt(t, alice, "a2"), ErrInvalidState)
	if !bytes.Equal(state(t, s), bad) {
		t.Fatal("a refused message changed the state")
	}
	s, err = ParseSession(good)
	if err != nil {
		t.Fatal(err)
	}
	mustDecrypt(t, s, mustEncrypt(t, alice, "a3"), "a3")
	if _, ok := s.sig.pq.(*fullPQ); !ok {
		t.Fatalf("after a message: %T", s.sig.pq)
	}
	long := bytes.Clone(good)
	pq := len(long) - spqr.MinimalStateSize // pqr_key, send_chain, send_index, recv_chain, recv_index, no history
	for _, at := range []int{pq + 64, pq + 100} {
		binary.BigEndian.PutUint32(long[at:], spqr.MaxUpgradeSteps+1)
	}
	if s, err = ParseSession(long); err != nil {
		t.Fatal(err)
	}
	mustEncrypt(t, s, "still minimal")
	if _, ok := s.sig.pq.(*spqr.Minimal); !ok {
		t.Fatalf("too long to tell, after a message: %T", s.sig.pq)
	}
}
