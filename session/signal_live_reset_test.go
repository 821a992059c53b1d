package session_test

import (
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/signallive"
	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// resetSegment is the number of random steps between two resets, and
// resetSeeds the number of seeded runs per role and one-time-prekey case.
const (
	resetSegment = 300
	resetSeeds   = 1
)

// The resets of a live run, each once per run in this order: the Go side
// deletes its session, calls ResetIdentity, or loses its whole store (a
// reinstall: a new identity key, no trust); libsignal deletes its session
// or is reinstalled with a new identity key. The side that reset then
// starts anew from a fresh bundle of the other.
var liveResets = []string{"go deletes", "libsignal deletes", "go ResetIdentity", "libsignal new identity", "go loses its store"}

// TestLiveSignalReset: in seeded runs of random steps (Conversation:
// reordering by up to 5, loss, tampering, replays) in both roles, with
// and without one-time prekeys in every bundle, each side in turn loses
// its session and starts anew from a fresh bundle of the other. At each
// reset (liveReset) the old session's messages in flight are delivered,
// and what each side does with them is asserted; then the conversation
// goes on for resetSegment steps on the new session.
func TestLiveSignalReset(t *testing.T) {
	for ci, c := range []struct {
		name                 string
		goInitiator, withOPK bool
	}{
		{"go initiator, one-time prekeys", true, true},
		{"go initiator, no one-time prekeys", true, false},
		{"go responder, one-time prekeys", false, true},
		{"go responder, no one-time prekeys", false, false},
	} {
		for seed := range uint64(resetSeeds) {
			seed := seed + 10*uint64(ci)
			t.Run(fmt.Sprintf("%s, seed %d", c.name, seed), func(t *testing.T) {
				rng := mrand.New(mrand.NewPCG(seed, 0x5e5e7))
				g, l := livePair(t, c.goInitiator, c.withOPK)
				total := map[string]int{}
				add := func(m map[string]int) {
					for k, v := range m {
						total[k] += v
					}
				}
				steps := 0
				for _, r := range append(liveResets, "") {
					add(signallive.Conversation(t, rng, g.end(), l.end(), resetSegment, 6, g.state))
					steps += resetSegment
					if r != "" {
						add(liveReset(t, rng, g, l, r, c.withOPK))
					}
				}
				t.Logf("%d steps, %d resets: %v", steps, len(liveResets), total)
			})
		}
	}
}

// liveReset makes one side (R) lose its session as kind says while the
// other (P) keeps its own, and starts a new session from P's fresh
// bundle. What it asserts:
//
//   - old-session messages in flight towards R (sent before and after the
//     reset) are refused by R: Go with its store unchanged, before and
//     after it started anew;
//   - R's old-session messages towards P decrypt at P, if they arrive
//     before P approves a changed identity key;
//   - a changed identity key makes P refuse R's first new message (Go: an
//     *IdentityError, store unchanged; libsignal's IdentityKeyStore:
//     untrusted identity) until P approves it (ApproveIdentity; libsignal:
//     saveIdentity, which reports ReplacedExisting); then it decrypts;
//   - one of R's old messages held back until the new session is
//     running: with the same identity key P decrypts it on the archived
//     old session and makes that current again (Go and libsignal alike),
//     so P's next message goes out on the old session and R refuses it;
//     R's next PreKeySignalMessage makes the new session current at P
//     again. After an approved identity change P refuses the held message
//     (the old key is no longer trusted): Go skips the session, libsignal
//     reports an untrusted identity after decrypting (and, by its source,
//     returns before it saves the record).
func liveReset(t *testing.T, rng *mrand.Rand, g *goParty, l *lsParty, kind string, withOPK bool) map[string]int {
	t.Helper()
	stats := map[string]int{"resets": 1}
	goR := strings.HasPrefix(kind, "go ")
	R, P := g.end(), l.end()
	if !goR {
		R, P = P, R
	}
	// refusedByR delivers m to R, which must refuse it.
	refusedByR := func(m signallive.Msg, what string) {
		t.Helper()
		var err error
		if goR {
			err = g.refuses(m, what)
		} else {
			err = l.refuses(m, what)
		}
		stats[fmt.Sprintf("%s refused by %s: %s", what, map[bool]string{true: "go", false: "libsignal"}[goR], errKind(err))]++
	}
	send := func(e signallive.End, n int, what string) []signallive.Msg {
		var out []signallive.Msg
		for i := range n {
			if !e.CanSend() {
				t.Fatalf("%s: cannot send", what)
			}
			out = append(out, e.Send(fmt.Appendf(nil, "%s %d", what, i)))
		}
		return out
	}
	fromR := send(R, 2+rng.IntN(2), "old from R")
	fromP := send(P, 1+rng.IntN(3), "old from P")

	identityChanged := false
	switch kind {
	case "go deletes":
		if err := g.d.m.DeleteSession(t.Context(), g.peer); err != nil {
			t.Fatal(err)
		}
	case "go ResetIdentity":
		u, err := g.d.m.ResetIdentity(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		g.d.up = u
		g.opks, g.kybers = u.OneTimePreKeys, u.KyberOneTimePreKeys
		identityChanged = true
	case "go loses its store":
		g.setDevice(newSignalDevice(t, memory.New(), g.name, 1, nil))
		identityChanged = true
	case "libsignal deletes":
		l.must(map[string]any{"op": "delete_session", "with": l.goName})
	case "libsignal new identity":
		l.must(map[string]any{"op": "new_identity"})
		identityChanged = true
	default:
		t.Fatalf("unknown reset %q", kind)
	}
	if goR {
		g.has, g.pending = false, false
	} else {
		l.has = false
	}
	// P does not know yet and goes on sending on the old session.
	fromP = append(fromP, send(P, rng.IntN(3), "old from P")...)
	held := fromP[len(fromP)-1]
	fromP = fromP[:len(fromP)-1]
	late := fromR[len(fromR)-1]
	fromR = fromR[:len(fromR)-1]
	// Old-session messages, interleaved in a random order: all of P's
	// refused by R, all of R's but the late one decrypted by P.
	for len(fromP)+len(fromR) > 0 {
		if len(fromR) == 0 || (len(fromP) > 0 && rng.IntN(2) == 0) {
			k := rng.IntN(len(fromP))
			refusedByR(fromP[k], "old message")
			fromP = append(fromP[:k], fromP[k+1:]...)
			continue
		}
		k := rng.IntN(len(fromR))
		liveDeliver(t, P, fromR[k])
		stats["old message decrypted by the side that kept its state"]++
		fromR = append(fromR[:k], fromR[k+1:]...)
	}

	// R starts anew from P's fresh bundle.
	if goR {
		g.start(l.bundle(withOPK))
	} else {
		l.process(g.bundle(withOPK), 0)
	}
	first := R.Send([]byte("first on the new session"))
	if first.Type != signalwire.TypePreKey {
		t.Fatalf("the new session's first message has type %d", first.Type)
	}
	if identityChanged {
		if goR {
			// libsignal's IdentityKeyStore (as its InMemIdentityKeyStore:
			// trust on first use, a changed key untrusted until saved).
			err := l.refuses(first, "a PreKeySignalMessage under a changed identity key")
			if !strings.Contains(err.Error(), "untrusted identity") {
				t.Fatalf("libsignal on a changed identity key: %v", err)
			}
			stats["changed identity refused by libsignal: "+errKind(err)]++
			if c := l.trust(g.d.up.IdentityKey.Encode()); c != 1 {
				t.Fatalf("libsignal's saveIdentity of the changed key: IdentityChange %d, want ReplacedExisting (1)", c)
			}
		} else {
			err := g.refuses(first, "a PreKeySignalMessage under a changed identity key")
			var ie *session.IdentityError
			if !errors.As(err, &ie) || !errors.Is(err, session.ErrUntrustedIdentity) {
				t.Fatalf("Go on a changed identity key: %v, want an *IdentityError", err)
			}
			stats["changed identity refused by go: identity error"]++
			if err := g.d.m.ApproveIdentity(t.Context(), g.peer, ie.Received); err != nil {
				t.Fatal(err)
			}
		}
	}
	liveDeliver(t, P, first)
	refusedByR(held, "old message after the restart")

	if identityChanged {
		var err error
		if goR {
			err = l.refuses(late, "an old-key message after the approval")
		} else {
			err = g.refuses(late, "an old-key message after the approval")
		}
		stats["late old-key message refused after approval: "+errKind(err)]++
		return stats
	}
	// The late old message promotes the old session at P.
	liveDeliver(t, P, late)
	stats["late old message decrypted, old session promoted"]++
	refusedByR(P.Send([]byte("on the promoted old session")), "message on the promoted old session")
	again := R.Send([]byte("second on the new session"))
	if again.Type != signalwire.TypePreKey {
		t.Fatalf("R's second message on the new session has type %d", again.Type)
	}
	liveDeliver(t, P, again)
	return stats
}
