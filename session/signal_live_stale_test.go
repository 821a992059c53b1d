package session_test

import (
	"errors"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
	"github.com/ratchetkit/ratchetkit/internal/signallive"
	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// TestLiveSignalStaleNewBundle: on each side, an initiator session whose
// PreKeySignalMessage was lost is still used at exactly 30 days and
// refused one second later (Go: Encrypt's ErrNoSession; libsignal: no
// usable session). A fresh bundle of the peer replaces it; the new
// session runs for liveAfterSteps random steps. The stale session's
// lost message, delivered at last, still makes a session at the peer
// (its prekeys were never used: Go and libsignal alike), which becomes
// current there. Go and libsignal alike read the answer on it with
// their archived stale session, make that current and answer on it. The
// answer's SPQR index is one the stale side's current session has used
// already (its SPQR counts another session's messages): libsignal takes
// that SPQR error as an invalid message for the current state and goes
// on to the archived ones, and so does Go (ratchet.ErrSPQRKeyUsed);
// until it did, Go refused the answer with ratchet.ErrDuplicate.
func TestLiveSignalStaleNewBundle(t *testing.T) {
	liveCases(t, func(t *testing.T, goStale, withOPK bool, seed uint64) {
		v := libsignaltest.Load(t)
		p := libsignaltest.Live(t, v.Sessions[0].Name)
		now := time.Unix(1767225600, 0) // live.mjs's clock
		var g *goParty
		var l *lsParty
		var stale, staleEnd, freshEnd signallive.End
		var lost signallive.Msg
		if goStale {
			g = &goParty{t: t, name: "go-alice", peer: store.Address{Name: "libsignal-bob", DeviceID: 1}}
			g.setDevice(newSignalDevice(t, memory.New(), g.name, 1, func() time.Time { return now }))
			l = &lsParty{t: t, p: p, as: "bob", goName: g.name}
			g.start(l.bundle(withOPK))
			stale = g.end()
			lost = stale.Send([]byte("lost"))
			now = now.Add(session.MaxUnacknowledgedAge)
			stale.Send([]byte("at exactly 30 days")) // lost as well
			now = now.Add(time.Second)
			if _, err := g.d.m.Encrypt(t.Context(), g.peer, []byte("stale")); !errors.Is(err, session.ErrNoSession) {
				t.Fatalf("Go's Encrypt on a stale session: %v, want ErrNoSession", err)
			}
			g.start(l.bundle(withOPK))
			staleEnd, freshEnd = g.end(), l.end()
		} else {
			g = newGoParty(t, "go-bob", store.Address{Name: "libsignal-alice", DeviceID: 1})
			l = &lsParty{t: t, p: p, as: "alice", goName: g.name}
			l.process(g.bundle(withOPK), 0)
			lost = l.endAt(0).Send([]byte("lost"))
			l.endAt(30).Send([]byte("at exactly 30 days"))
			r := l.call(map[string]any{"op": "encrypt", "to": l.goName, "plaintext": "00", "days": 30 + 1.0/86400})
			if r.OK || !strings.Contains(r.Error, "session with "+l.goName+".1 not found") {
				t.Fatalf("libsignal's encrypt on a stale session: ok %v, %q", r.OK, r.Error)
			}
			l.process(g.bundle(withOPK), 31)
			staleEnd, freshEnd = l.endAt(31), g.end()
		}
		first := staleEnd.Send([]byte("on the new session"))
		if first.Type != signalwire.TypePreKey {
			t.Fatalf("the new session's first message has type %d", first.Type)
		}
		liveDeliver(t, freshEnd, first)
		goEnd, lsEnd := g.end(), l.end()
		if !goStale {
			lsEnd = l.endAt(31)
		}
		stats := signallive.Conversation(t, mrand.New(mrand.NewPCG(seed, 0x57a1e)), goEnd, lsEnd, liveAfterSteps, 6, g.state)
		t.Logf("after the new bundle: %v", stats)

		liveDeliver(t, freshEnd, lost)
		answer := freshEnd.Send([]byte("answer on the stale session"))
		liveDeliver(t, staleEnd, answer)
		back := staleEnd.Send([]byte("back on the stale session"))
		if back.Type != signalwire.TypeWhisper {
			t.Fatalf("the stale side answers with type %d", back.Type)
		}
		if sm, _, _, err := signalwire.ParseSignalMessage(back.Wire); err != nil || sm.PreviousCounter != 1 {
			// The stale session sent two messages (counters 0 and 1)
			// before its first reply.
			t.Fatalf("the stale side did not answer on the stale session (%v)", err)
		}
		liveDeliver(t, freshEnd, back)
	})
}
