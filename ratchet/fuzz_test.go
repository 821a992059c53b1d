package ratchet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/hazmat"
	"github.com/ratchetkit/ratchetkit/keys"
)

// fuzzFixture is a deterministic established session (Bob) holding
// skipped keys on two chains, and messages that exercise each decryption
// path against it: skipped keys of the old and current chain, the current
// chain, and a new chain (a DH ratchet step).
type fixture struct {
	blob []byte
	msgs [][]byte
}

var fuzzFixture = sync.OnceValue(func() fixture {
	t := panicTB{}
	key := func(s string) *keys.PrivateKey {
		k, err := keys.NewPrivateKey(vecKey("fuzz fixture", s))
		if err != nil {
			panic(err)
		}
		return k
	}
	sk, ad := vecKey("fuzz fixture", "sk"), vecKey("fuzz fixture", "ad")
	spk := key("spk")
	alice, err := NewInitiator(sk, ad, spk.PublicKey(), withKeys(&Config{}, key("a0")))
	if err != nil {
		panic(err)
	}
	bob, _ := NewResponder(sk, ad, spk, withKeys(&Config{}, key("b1"), key("b2")))
	var a [5][]byte
	for i := range a {
		a[i] = mustEncrypt(t, alice, fmt.Sprint("a", i))
	}
	mustDecrypt(t, bob, a[2], "a2")
	hazmat.SetRatchetKeySource(alice, hazmat.Keys(key("a1"), key("a2")))
	mustDecrypt(t, alice, mustEncrypt(t, bob, "b0"), "b0")
	c0, c1, c2 := mustEncrypt(t, alice, "c0"), mustEncrypt(t, alice, "c1"), mustEncrypt(t, alice, "c2")
	mustDecrypt(t, bob, c1, "c1")
	b1 := mustEncrypt(t, bob, "b1")
	blob := state(t, bob)
	mustDecrypt(t, alice, b1, "b1")
	d0 := mustEncrypt(t, alice, "d0")
	return fixture{blob: blob, msgs: [][]byte{a[0], a[1], a[3], a[4], c0, c2, d0}}
})

// FuzzParseMessage checks the header parser against the layout: no panic,
// the documented order of checks, and a byte-identical re-encoding.
func FuzzParseMessage(f *testing.F) {
	for _, m := range fuzzFixture().msgs {
		f.Add(m)
	}
	f.Add([]byte{})
	f.Add(make([]byte, 58))
	f.Fuzz(func(t *testing.T, msg []byte) {
		h, err := parseHeader(msg)
		var want error
		switch {
		case len(msg) < 58:
			want = ErrMalformed
		case msg[0] != 1:
			want = ErrUnknownType
		case msg[1] != 5 || msg[33]&0x80 != 0 || !refCanonical(msg[2:34]):
			want = keys.ErrInvalidPublicKey
		case binary.BigEndian.Uint32(msg[34:]) == 1<<32-1 || binary.BigEndian.Uint32(msg[38:]) == 1<<32-1:
			want = ErrCounterOverflow
		}
		if !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Fatalf("parseHeader(%x) = %v, want %v", msg, err, want)
		}
		if err == nil {
			if enc := appendHeader(nil, &h.dh, h.pn, h.n); !bytes.Equal(enc, msg[:42]) {
				t.Fatalf("re-encoded header %x, input %x", enc, msg[:42])
			}
		}
	})
}

// FuzzDecrypt feeds arbitrary bytes to a live session: no panic, and any
// error leaves its state byte-identical; a success changes it, and the same
// message never decrypts twice.
func FuzzDecrypt(f *testing.F) {
	fx := fuzzFixture()
	for _, m := range fx.msgs {
		f.Add(m)
		t := bytes.Clone(m)
		t[len(t)-1] ^= 1
		f.Add(t)
	}
	f.Fuzz(func(t *testing.T, msg []byte) { fuzzDecryptOnce(t, fx.blob, msg, nil) })
}

// fuzzDecryptOnce decrypts msg in the session stored in blob: a refusal
// leaves the state byte for byte unchanged with a documented error; a
// success changes the state, is one of genuine (unless genuine is nil),
// and its replay is refused without changing anything.
func fuzzDecryptOnce(t *testing.T, blob, msg []byte, genuine [][]byte) {
	s, err := ParseSession(blob)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := s.Decrypt(msg)
	after := state(t, s)
	if err != nil {
		if pt != nil {
			t.Fatal("plaintext returned with an error")
		}
		if !bytes.Equal(after, blob) {
			t.Fatalf("failed Decrypt (%v) changed the state", err)
		}
		if kind := errorKind(err); len(kind) > 10 && kind[:10] == "unexpected" {
			t.Fatalf("unexpected error %v", err)
		}
		return
	}
	if bytes.Equal(after, blob) {
		t.Fatal("successful Decrypt left the state unchanged")
	}
	if genuine != nil {
		ok := false
		for _, m := range genuine {
			ok = ok || bytes.Equal(m, msg)
		}
		if !ok {
			t.Fatalf("a message that is not the fixture's decrypts: %x", msg)
		}
	}
	if _, err := s.Decrypt(msg); err == nil {
		t.Fatal("message decrypted twice")
	} else if !bytes.Equal(after, state(t, s)) {
		t.Fatal("failed replay changed the state")
	}
}

// FuzzParseState checks that ParseSession never panics, that whatever it
// accepts re-marshals to the same bytes, and that an accepted session can
// be used without panicking.
func FuzzParseState(f *testing.F) {
	f.Add(fuzzFixture().blob)
	if files, _ := filepath.Glob(filepath.Join(goldenDir, "*.bin")); len(files) > 0 {
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	msgs := fuzzFixture().msgs
	reused, err := ParseSession(fuzzFixture().blob)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		before := state(t, reused)
		s, err := ParseSession(b)
		uerr := reused.UnmarshalBinary(b)
		if (err == nil) != (uerr == nil) {
			t.Fatalf("ParseSession: %v, UnmarshalBinary: %v", err, uerr)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidState) {
				t.Fatalf("error %v does not wrap ErrInvalidState", err)
			}
			if !bytes.Equal(before, state(t, reused)) {
				t.Fatal("failed UnmarshalBinary changed the session")
			}
			return
		}
		if out := state(t, reused); !bytes.Equal(out, b) {
			t.Fatal("UnmarshalBinary -> marshal differs")
		}
		if out := state(t, s); !bytes.Equal(out, b) {
			t.Fatalf("parse -> marshal differs:\n in %x\nout %x", b, out)
		}
		s.HasReceived()
		s.RatchetKey()
		for _, m := range msgs {
			s.Decrypt(m)
		}
		s.Encrypt([]byte("x"))
		if _, err := ParseSession(state(t, s)); err != nil {
			t.Fatalf("a session parsed from a valid blob reached an invalid state: %v", err)
		}
	})
}

// byteChooser takes the simulation's decisions from the fuzzer's bytes.
type byteChooser struct{ b []byte }

func (c *byteChooser) IntN(n int) int {
	if len(c.b) == 0 {
		return 0
	}
	v := int(c.b[0])
	c.b = c.b[1:]
	if n > 256 {
		v = v<<8 | c.IntN(256)
	}
	return v % n
}

// FuzzConversation lets the fuzzer's bytes script a conversation (send,
// deliver in any order, drop, redeliver, tamper, round-trip the state),
// checked step by step against the model of the randomized tests.
func FuzzConversation(f *testing.F) {
	f.Add([]byte{0, 10, 60, 10, 60, 50, 50, 20, 45, 20, 70, 99})
	f.Add(bytes.Repeat([]byte{1, 10, 1, 10, 1, 10, 0, 50, 2, 1, 50, 0, 0, 92, 3, 1, 95, 7}, 8))
	f.Add([]byte("send deliver drop duplicate reorder tamper round trip and so on, more bytes"))
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) == 0 || len(script) > 4096 {
			return
		}
		cfg := simConfigs[int(script[0])%len(simConfigs)]
		x := newSim(t, &byteChooser{b: script[1:]}, cfg)
		for c := x.rng.(*byteChooser); len(c.b) > 0; {
			x.step()
		}
	})
}

// TestWriteFuzzCorpus writes the committed seed corpora with -update.
func TestWriteFuzzCorpus(t *testing.T) {
	if !*update {
		t.Skip("only with -update")
	}
	fx := fuzzFixture()
	var msgs [][]byte
	for _, m := range fx.msgs {
		msgs = append(msgs, m)
		for _, at := range []int{0, 1, 2, 33, 37, 41, 42, len(m) - 1} {
			c := bytes.Clone(m)
			c[at] ^= 0x80
			msgs = append(msgs, c)
		}
		msgs = append(msgs, m[:57], m[:42])
		ov := bytes.Clone(m)
		binary.BigEndian.PutUint32(ov[38:], 1<<32-1)
		msgs = append(msgs, ov)
	}
	msgs = append(msgs, []byte{}, []byte{0x02}, make([]byte, 58))
	states := [][]byte{fx.blob}
	for _, name := range []string{"responder", "initiator", "established", "initiator-established"} {
		states = append(states, state(t, stateSamples(t)[name]))
	}
	// Profile v1's blobs; the Signal ones seed FuzzSignalParseState.
	files, _ := filepath.Glob(filepath.Join(goldenDir, "v1-*.bin"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, b, b[:len(b)-1], append(bytes.Clone(b), 0))
	}
	scripts := [][]byte{
		{0, 10, 60, 10, 60, 50, 50, 20, 45, 20, 70, 99},
		bytes.Repeat([]byte{1, 10, 1, 10, 1, 10, 0, 50, 2, 1, 50, 0, 0, 92, 3, 1, 95, 7}, 8),
		bytes.Repeat([]byte{3, 0, 0, 0, 1, 50, 0, 1, 50, 1, 0, 44, 0, 97, 1, 90, 0, 3, 55}, 12),
		[]byte("send deliver drop duplicate reorder tamper round trip and so on, more bytes"),
	}
	writeCorpus(t, "FuzzParseMessage", msgs)
	writeCorpus(t, "FuzzDecrypt", msgs)
	writeCorpus(t, "FuzzParseState", states)
	writeCorpus(t, "FuzzConversation", scripts)
}

// writeCorpus writes inputs as the committed seed corpus of a fuzz target.
func writeCorpus(t *testing.T, target string, inputs [][]byte) {
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, in := range inputs {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", in)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
