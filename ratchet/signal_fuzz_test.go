package ratchet

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// signalFixture is a deterministic established Signal responder holding
// seeds on two receiving chains, and messages for each decryption path
// against it: a stored seed of the older and of the newer chain, the newer
// chain ahead of its position, and a new chain (a DH ratchet step). Both
// run full SPQR with seeded braids: Alice's messages carry her
// encapsulation key header's chunks, which Bob's braid collects.
var signalFixture = sync.OnceValue(func() fixture {
	t := panicTB{}
	k, aliceID, bobID, spk, key := signalGoldenKeys(t)
	alice, err := NewSignalInitiator(k, aliceID, bobID, spk.PublicKey(), withKeys(&Config{}, key("fuzz a0"), key("fuzz a1"), key("fuzz a2")))
	if err != nil {
		panic(err)
	}
	bob, _ := NewSignalResponder(k, bobID, aliceID, spk, withKeys(&Config{}, key("fuzz b1"), key("fuzz b2")))
	seedSPQR(alice, "fuzz alice")
	seedSPQR(bob, "fuzz bob")
	var a [4][]byte
	for i := range a {
		a[i] = mustEncrypt(t, alice, fmt.Sprint("a", i))
	}
	mustDecrypt(t, bob, a[2], "a2")
	mustDecrypt(t, alice, mustEncrypt(t, bob, "b0"), "b0")
	c0, c1, c2, c3 := mustEncrypt(t, alice, "c0"), mustEncrypt(t, alice, "c1"), mustEncrypt(t, alice, "c2"), mustEncrypt(t, alice, "c3")
	mustDecrypt(t, bob, c1, "c1")
	b1 := mustEncrypt(t, bob, "b1")
	blob := state(t, bob)
	mustDecrypt(t, alice, b1, "b1")
	d0 := mustEncrypt(t, alice, "d0")
	return fixture{blob: blob, msgs: [][]byte{a[0], a[1], a[3], c0, c2, c3, d0}}
})

// FuzzSignalDecrypt: no input panics; a refused one leaves the state byte
// for byte unchanged with one of the documented errors; only the
// fixture's genuine messages decrypt, once each.
func FuzzSignalDecrypt(f *testing.F) {
	fx := signalFixture()
	for _, m := range fx.msgs {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, msg []byte) { fuzzDecryptOnce(t, fx.blob, msg, fx.msgs) })
}

// FuzzSignalParseState: ParseSession never panics on a Signal state
// (version 2), whatever it accepts re-marshals to the same bytes, and an
// accepted session decrypts, encrypts and re-marshals to a state that
// parses.
func FuzzSignalParseState(f *testing.F) {
	f.Add(signalFixture().blob)
	files, _ := filepath.Glob(filepath.Join(goldenDir, "signal-v2-*.bin"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	msgs := signalFixture().msgs
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSession(b)
		if err != nil {
			return
		}
		useParsed(t, s, b, msgs)
	})
}

// TestWriteSignalFuzzCorpus writes the Signal targets' committed seed
// corpora with -update.
func TestWriteSignalFuzzCorpus(t *testing.T) {
	if !*update {
		t.Skip("only with -update")
	}
	fx := signalFixture()
	var msgs [][]byte
	for _, m := range fx.msgs {
		msgs = append(msgs, m)
		for _, at := range []int{0, 1, 3, 35, 37, 39, len(m) - 20, len(m) - 9, len(m) - 1} {
			c := bytes.Clone(m)
			c[at] ^= 0x01
			msgs = append(msgs, c)
		}
		msgs = append(msgs, m[:len(m)-8], m[:9])
	}
	msgs = append(msgs, []byte{}, []byte{0x44}, make([]byte, 9))
	states := [][]byte{fx.blob}
	files, _ := filepath.Glob(filepath.Join(goldenDir, "signal-v2-*.bin"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, b, b[:len(b)-1], append(bytes.Clone(b), 0))
	}
	writeCorpus(t, "FuzzSignalDecrypt", msgs)
	writeCorpus(t, "FuzzSignalParseState", states)
}
