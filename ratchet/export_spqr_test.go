package ratchet

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/signallive"
	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/internal/spqr"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/pqxdh"
)

// Sessions for comparing full SPQR with the minimum libsignal accepts.
// Config's unexported minimalSPQR is the only way to make a new Signal
// session that runs spqr.Minimal; it exists for these helpers, which the
// benchmarks and tests of this package use.

// newSignalPairWith starts two Signal sessions from random PQXDH keys,
// both with full SPQR or both with minimal SPQR.
func newSignalPairWith(tb testing.TB, minimal bool) (alice, bob *Session) {
	tb.Helper()
	var k pqxdh.Keys
	rand.Read(k.RootKey[:])
	rand.Read(k.ChainKey[:])
	rand.Read(k.PQRKey[:])
	aid, _ := keys.GenerateIdentityKeyPair()
	bid, _ := keys.GenerateIdentityKeyPair()
	spk, _ := keys.GeneratePrivateKey()
	alice, err := NewSignalInitiator(&k, aid.PublicKey(), bid.PublicKey(), spk.PublicKey(), &Config{minimalSPQR: minimal})
	if err != nil {
		tb.Fatal(err)
	}
	bob, err = NewSignalResponder(&k, bid.PublicKey(), aid.PublicKey(), spk, &Config{minimalSPQR: minimal})
	if err != nil {
		tb.Fatal(err)
	}
	return alice, bob
}

// establish runs one message each way and one more from Alice on her
// second chain, so that both can send and Alice's next messages are on a
// chain Bob knows.
func establish(tb testing.TB, alice, bob *Session) {
	tb.Helper()
	for _, m := range []struct {
		from, to *Session
		pt       string
	}{{alice, bob, "hello"}, {bob, alice, "hi"}, {alice, bob, "on the second chain"}} {
		ct, err := m.from.Encrypt([]byte(m.pt))
		if err != nil {
			tb.Fatal(err)
		}
		if pt, err := m.to.Decrypt(ct); err != nil || string(pt) != m.pt {
			tb.Fatalf("establishing: %v", err)
		}
	}
}

// newSignalPairMinimalSPQR returns an established pair of Signal sessions
// that both run minimal SPQR (spqr.Minimal: epoch 1's chains, None
// messages), as every Signal session did before full SPQR.
func newSignalPairMinimalSPQR(tb testing.TB) (alice, bob *Session) {
	alice, bob = newSignalPairWith(tb, true)
	establish(tb, alice, bob)
	if _, ok := alice.sig.pq.(*spqr.Minimal); !ok {
		tb.Fatal("not minimal SPQR")
	}
	return alice, bob
}

// newSignalPairFullSPQR returns an established pair of Signal sessions
// with full SPQR, as NewSignalInitiator and NewSignalResponder make them.
func newSignalPairFullSPQR(tb testing.TB) (alice, bob *Session) {
	alice, bob = newSignalPairWith(tb, false)
	establish(tb, alice, bob)
	if _, ok := alice.sig.pq.(*fullPQ); !ok {
		tb.Fatal("not full SPQR")
	}
	return alice, bob
}

// pqEpoch returns the epoch of the SPQR braid of a full-SPQR session, 1
// for a minimal one.
func pqEpoch(s *Session) uint64 {
	if f, ok := s.sig.pq.(*fullPQ); ok {
		return f.r.Epoch()
	}
	return 1
}

// seededReader is a deterministic stand-in for crypto/rand.
type seededReader struct{ c *mrand.ChaCha8 }

func (r seededReader) Read(b []byte) (int, error) { return r.c.Read(b) }

// seedSPQR makes a full-SPQR session's braid draw its key pairs and
// encapsulations from a reader seeded with label, so that its messages are
// reproducible (the Double Ratchet's keys come from Config's key source).
func seedSPQR(s *Session, label string) {
	var seed [32]byte
	copy(seed[:], vecKey("seeded SPQR", label))
	s.sig.pq.(*fullPQ).r.SetRand(seededReader{mrand.NewChaCha8(seed)})
}

// pqState returns a Signal session's SPQR state, nil for profile v1.
func (s *Session) pqState() pqRatchet {
	if s.sig == nil {
		return nil
	}
	return s.sig.pq
}

// sameExceptSPQR checks that two Signal messages differ at most in their
// SPQR payload's type and chunk (and so their tags): the same ratchet key,
// counters and ciphertext, and SPQR payloads of the same epoch and index.
func sameExceptSPQR(t tb, got, want []byte) {
	g, _, _, err := signalwire.ParseSignalMessage(got)
	if err != nil {
		t.Fatal(err)
	}
	w, _, _, err := signalwire.ParseSignalMessage(want)
	if err != nil {
		t.Fatal(err)
	}
	gp, err1 := spqr.Parse(g.PQRatchet)
	wp, err2 := spqr.Parse(w.PQRatchet)
	if err1 != nil || err2 != nil || gp.Epoch != wp.Epoch || gp.Index != wp.Index ||
		!g.RatchetKey.Equal(w.RatchetKey) || g.Counter != w.Counter || g.PreviousCounter != w.PreviousCounter ||
		!bytes.Equal(g.Ciphertext, w.Ciphertext) {
		t.Fatalf("message differs beyond its SPQR payload:\n got %x\nwant %x", got, want)
	}
}

// TestParseSPQR: signallive.ParseSPQR, the live tests' own parser of the
// SPQR payload, agrees with spqr.ParseMessage on every message of a
// conversation that crosses epochs, and both refuse payloads that are not
// strict V1 messages.
func TestParseSPQR(t *testing.T) {
	alice, bob := newSignalPairFullSPQR(t)
	types := map[byte]bool{}
	var sample *signalwire.SignalMessage
	for i := range 150 {
		for _, p := range [][2]*Session{{alice, bob}, {bob, alice}} {
			wire := mustEncrypt(t, p[0], "x")
			mustDecrypt(t, p[1], wire, "x")
			got, err := signallive.ParseSPQR(signallive.Msg{Type: signalwire.TypeWhisper, Wire: wire})
			sm, _, _, _ := signalwire.ParseSignalMessage(wire)
			m, c, werr := spqr.ParseMessage(sm.PQRatchet)
			if err != nil || werr != nil || got.Epoch != m.Epoch || got.Index != m.Index || got.Type != byte(m.Type) || (got.Chunk >= 0) != (c != nil) || (c != nil && got.Chunk != int(c.Index)) {
				t.Fatalf("message %d: ParseSPQR %+v, %v; spqr %+v, %v", i, got, err, m, werr)
			}
			types[got.Type] = true
			if got.Type == byte(spqr.Ek) {
				sample = sm
			}
		}
	}
	if len(types) != 7 || pqEpoch(alice) < 3 {
		t.Fatalf("types %v, epoch %d", types, pqEpoch(alice))
	}
	pq := sample.PQRatchet // 01 epoch index 02 chunk-index data[32]
	for name, bad := range map[string][]byte{
		"empty":               {},
		"version 2":           append([]byte{2}, pq[1:]...),
		"epoch 0":             {1, 0, 1, 0},
		"non-minimal epoch":   {1, 0x81, 0, 1, 0},
		"type 7":              {1, 1, 1, 7},
		"None with a chunk":   append([]byte{1, 1, 1, 0}, pq[len(pq)-33:]...),
		"chunk missing":       pq[:len(pq)-33],
		"chunk short":         pq[:len(pq)-1],
		"trailing byte":       append(bytes.Clone(pq), 0),
		"chunk index 65536":   append(append([]byte{1, 1, 1, 2}, 0x80, 0x80, 0x04), make([]byte, 32)...),
		"index over 32 bits":  {1, 1, 0x80, 0x80, 0x80, 0x80, 0x10, 0},
		"non-minimal chunk #": append(append([]byte{1, 1, 1, 2}, 0x81, 0x00), make([]byte, 32)...),
	} {
		m := *sample
		m.PQRatchet = bad
		body, err := m.AppendBody(nil)
		if err != nil {
			if len(bad) == 0 {
				continue // no field at all: the SignalMessage has none to parse
			}
			t.Fatal(err)
		}
		wire := append(body, make([]byte, 8)...)
		if _, err := signallive.ParseSPQR(signallive.Msg{Type: signalwire.TypeWhisper, Wire: wire}); err == nil {
			t.Errorf("%s: ParseSPQR accepted %x", name, bad)
		}
		if _, _, err := spqr.ParseMessage(bad); err == nil {
			t.Errorf("%s: spqr.ParseMessage accepted %x", name, bad)
		}
	}
}

// hostilePQ is a sender's SPQR that rewrites each payload of its honest
// state (keeping the key the honest payload has), as a peer that holds the
// session's keys but not SPQR's rules would.
type hostilePQ struct {
	pqRatchet
	rewrite func(payload []byte) []byte
}

func (h *hostilePQ) Send(dst []byte) ([]byte, [32]byte, error) {
	p, key, err := h.pqRatchet.Send(nil)
	return append(dst, h.rewrite(p)...), key, err
}

// TestSignalHostileSPQR: payloads of an authenticated peer that break
// SPQR's rules are refused with ErrMalformed or ErrTooManySkipped and the
// receiver's state unchanged, or ignored as SPQR ignores them; none
// panics.
func TestSignalHostileSPQR(t *testing.T) {
	for _, c := range []struct {
		name    string
		rewrite func(p []byte) []byte
		want    error // nil: decrypts (the braid ignores the payload's piece)
	}{
		{"later epoch", func(p []byte) []byte { q := bytes.Clone(p); q[1] = 5; return q }, ErrMalformed},
		{"index far ahead", func(p []byte) []byte {
			return append([]byte{1, 1, 0xb0, 0xea, 0x01}, p[3:]...) // epoch 1, index 30 000 (the first message's is 1)
		}, ErrTooManySkipped},
		{"unknown type", func(p []byte) []byte { q := bytes.Clone(p); q[3] = 7; return q }, ErrMalformed},
		{"None with a chunk", func(p []byte) []byte { q := bytes.Clone(p); q[3] = byte(spqr.None); return q }, ErrMalformed},
		{"a ciphertext piece instead", func(p []byte) []byte { q := bytes.Clone(p); q[3] = byte(spqr.Ct2); return q }, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			alice, bob := newSignalPairWith(t, false)
			honest := alice.sig.pq
			alice.sig.pq = &hostilePQ{honest, c.rewrite}
			msg := mustEncrypt(t, alice, "hostile") // Alice's first: a header chunk
			before := state(t, bob)
			_, err := bob.Decrypt(msg)
			if c.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if pqEpoch(bob) != 1 {
					t.Fatal("the ignored piece moved the braid")
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if !bytes.Equal(before, state(t, bob)) {
				t.Fatal("a refused message changed the state")
			}
		})
	}
	// A header whose chunks are altered decodes to a header whose MAC
	// fails: the message that completes it is refused, with the state
	// unchanged; the peer is not honest, so nothing after can repair it.
	alice, bob := newSignalPairWith(t, false)
	alice.sig.pq = &hostilePQ{alice.sig.pq, func(p []byte) []byte { q := bytes.Clone(p); q[len(q)-1] ^= 1; return q }}
	for i := 0; ; i++ {
		msg := mustEncrypt(t, alice, fmt.Sprint(i))
		before := state(t, bob)
		if _, err := bob.Decrypt(msg); err != nil {
			if !errors.Is(err, ErrMalformed) || !bytes.Equal(before, state(t, bob)) || i != 2 {
				t.Fatalf("message %d: %v (state unchanged: %v)", i, err, bytes.Equal(before, state(t, bob)))
			}
			break
		}
		if i == 2 {
			t.Fatal("a header with a bad MAC was taken")
		}
	}
}
