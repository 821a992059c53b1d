package ratchet

import (
	"bytes"
	"crypto/rand"
	mrand "math/rand/v2"
	"testing"

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
