package session_test

import (
	"bytes"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
	"github.com/ratchetkit/ratchetkit/internal/signallive"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/session"
)

// liveAfterSteps is the length of the random conversation that follows
// a replaced session in the identity and staleness tests.
const liveAfterSteps = 200

// liveCases runs f in both roles, with and without one-time prekeys.
func liveCases(t *testing.T, f func(t *testing.T, goInitiator, withOPK bool, seed uint64)) {
	seed := uint64(0)
	for _, goInitiator := range []bool{true, false} {
		for _, withOPK := range []bool{true, false} {
			seed++
			t.Run(fmt.Sprintf("go initiator %v, one-time prekeys %v", goInitiator, withOPK), func(t *testing.T) {
				f(t, goInitiator, withOPK, seed)
			})
		}
	}
}

// goIdentityError checks that err is Go's refusal of a changed identity
// key: an *IdentityError naming the trusted key and the received one.
func goIdentityError(t *testing.T, err error, trusted, received []byte) *session.IdentityError {
	t.Helper()
	var ie *session.IdentityError
	if !errors.As(err, &ie) || !errors.Is(err, session.ErrUntrustedIdentity) {
		t.Fatalf("Go on a changed identity key: %v, want an *IdentityError", err)
	}
	if !bytes.Equal(ie.Trusted.Encode(), trusted) || !bytes.Equal(ie.Received.Encode(), received) {
		t.Fatal("the *IdentityError names other keys")
	}
	return ie
}

// TestLiveSignalIdentityChanged: libsignal reinstalled with a new
// IdentityKeyPair. With Go as initiator, StartSignalSession from its new
// bundle fails with an *IdentityError (store unchanged); as responder,
// Decrypt of its new PreKeySignalMessage does, as often as it is
// delivered. After ApproveIdentity the new session runs for
// liveAfterSteps random steps.
func TestLiveSignalIdentityChanged(t *testing.T) {
	liveCases(t, func(t *testing.T, goInitiator, withOPK bool, seed uint64) {
		g, l := livePair(t, goInitiator, withOPK)
		old, err := g.d.m.Identity(t.Context(), g.peer)
		if err != nil {
			t.Fatal(err)
		}
		fresh := libsignaltest.Hex(t, l.must(map[string]any{"op": "new_identity"}).Wire)
		l.has = false
		var ie *session.IdentityError
		if goInitiator {
			b := l.bundle(withOPK)
			before := take(t, g.d.st, g.peer)
			ie = goIdentityError(t, g.d.m.StartSignalSession(t.Context(), g.peer, b), old.Encode(), fresh)
			if !take(t, g.d.st, g.peer).equal(before) {
				t.Fatal("the refused bundle changed Go's store")
			}
			approve(t, g, ie.Received)
			g.start(b)
			liveDeliver(t, l.end(), g.end().Send([]byte("to the new installation")))
		} else {
			l.process(g.bundle(withOPK), 0)
			first := l.end().Send([]byte("from the new installation"))
			for range 2 {
				ie = goIdentityError(t, g.refuses(first, "a PreKeySignalMessage under a changed key"), old.Encode(), fresh)
			}
			approve(t, g, ie.Received)
			liveDeliver(t, g.end(), first)
		}
		stats := signallive.Conversation(t, mrand.New(mrand.NewPCG(seed, 0x1d)), g.end(), l.end(), liveAfterSteps, 6, g.state)
		t.Logf("after approval: %v", stats)
	})
}

func approve(t *testing.T, g *goParty, k *keys.PublicKey) {
	t.Helper()
	if err := g.d.m.ApproveIdentity(t.Context(), g.peer, k); err != nil {
		t.Fatal(err)
	}
}

// TestLiveSignalIdentityChangedLibsignal: the reverse direction, as
// libsignal's IdentityKeyStore does it. Node exports no store of its own;
// live.mjs's follows libsignal's reference InMemIdentityKeyStore (trust
// on first use; isTrustedIdentity false for any other key, in both
// directions; saveIdentity replaces and reports ReplacedExisting). After
// Go's ResetIdentity, libsignal refuses Go's new bundle in
// processPreKeyBundle (Go responder) or Go's new PreKeySignalMessage
// (Go initiator) with "untrusted identity", keeping the old key, until
// the application saves the new one; then the new session runs for
// liveAfterSteps random steps.
func TestLiveSignalIdentityChangedLibsignal(t *testing.T) {
	liveCases(t, func(t *testing.T, goInitiator, withOPK bool, seed uint64) {
		g, l := livePair(t, goInitiator, withOPK)
		old := g.d.up.IdentityKey.Encode()
		u, err := g.d.m.ResetIdentity(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		g.d.up, g.opks, g.kybers, g.has, g.pending = u, u.OneTimePreKeys, u.KyberOneTimePreKeys, false, false
		untrusted := func(r libsignaltest.Reply, what string) {
			t.Helper()
			if r.OK || !strings.Contains(r.Error, "untrusted identity for address "+l.goName) {
				t.Fatalf("libsignal on %s: ok %v, %q", what, r.OK, r.Error)
			}
			if k := l.must(map[string]any{"op": "identity", "address": l.goName}).Wire; k != fmt.Sprintf("%x", old) {
				t.Fatalf("libsignal's trusted key for Go changed after refusing %s", what)
			}
		}
		if goInitiator {
			g.start(l.bundle(withOPK))
			first := g.end().Send([]byte("under the new key"))
			untrusted(l.call(map[string]any{"op": "decrypt", "from": l.goName, "type": first.Type, "wire": fmt.Sprintf("%x", first.Wire)}), "a PreKeySignalMessage")
			approveLibsignal(t, l, u.IdentityKey.Encode())
			liveDeliver(t, l.end(), first)
		} else {
			b := g.bundle(withOPK)
			untrusted(l.call(map[string]any{"op": "process_bundle", "to": l.goName, "bundle": signallive.BundleRequest(b)}), "a bundle")
			approveLibsignal(t, l, u.IdentityKey.Encode())
			l.process(b, 0)
			liveDeliver(t, g.end(), l.end().Send([]byte("to the new key")))
		}
		stats := signallive.Conversation(t, mrand.New(mrand.NewPCG(seed, 0x1e)), g.end(), l.end(), liveAfterSteps, 6, g.state)
		t.Logf("after approval: %v", stats)
	})
}

// approveLibsignal saves key as the Go party's identity in libsignal,
// which must report ReplacedExisting.
func approveLibsignal(t *testing.T, l *lsParty, key []byte) {
	t.Helper()
	if c := l.trust(key); c != 1 {
		t.Fatalf("saveIdentity of the changed key: IdentityChange %d, want ReplacedExisting (1)", c)
	}
	if k := l.must(map[string]any{"op": "identity", "address": l.goName}).Wire; k != fmt.Sprintf("%x", key) {
		t.Fatal("libsignal does not hold the approved key")
	}
}
