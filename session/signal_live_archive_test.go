package session_test

import (
	"fmt"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/signallive"
	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/session"
)

// archiveSides is the setting of the archive tests: the initiator I
// starts sessions, one after another, from fresh bundles of the holder
// H, which keeps them in one record.
type archiveSides struct {
	t      *testing.T
	g      *goParty
	l      *lsParty
	goHold bool
	opk    bool
	I, H   signallive.End
}

func newArchiveSides(t *testing.T, goHolds, withOPK bool) *archiveSides {
	g, l := livePair(t, !goHolds, withOPK)
	a := &archiveSides{t: t, g: g, l: l, goHold: goHolds, opk: withOPK, I: l.end(), H: g.end()}
	if !goHolds {
		a.I, a.H = g.end(), l.end()
	}
	return a
}

// newSession has I start a session from a fresh bundle of H and H read
// its first message.
func (a *archiveSides) newSession(i int) {
	a.t.Helper()
	if a.goHold {
		a.l.process(a.g.bundle(a.opk), 0)
	} else {
		a.g.start(a.l.bundle(a.opk))
	}
	m := a.I.Send(fmt.Appendf(nil, "session %d", i))
	if m.Type != signalwire.TypePreKey {
		a.t.Fatalf("session %d starts with type %d", i, m.Type)
	}
	liveDeliver(a.t, a.H, m)
}

// archived is how many states besides the current one H keeps.
func (a *archiveSides) archived() int {
	a.t.Helper()
	if !a.goHold {
		return a.l.archived()
	}
	rec := take(a.t, a.g.d.st, a.g.peer).records[a.g.peer]
	// "rkss", version, current, count (session/signal_record.go).
	return int(rec[6]) - 1
}

// refused has H refuse m (Go: with its store unchanged) and returns the
// error's kind.
func (a *archiveSides) refused(m signallive.Msg, what string) string {
	a.t.Helper()
	if a.goHold {
		return errKind(a.g.refuses(m, what))
	}
	return errKind(a.l.refuses(m, what))
}

func archiveCases(t *testing.T, f func(t *testing.T, a *archiveSides)) {
	for _, goHolds := range []bool{true, false} {
		for _, withOPK := range []bool{true, false} {
			name := fmt.Sprintf("go holds %v, one-time prekeys %v", goHolds, withOPK)
			t.Run(name, func(t *testing.T) { f(t, newArchiveSides(t, goHolds, withOPK)) })
		}
	}
}

// liveArchiveNew is how many sessions TestLiveSignalArchiveCap starts
// after the first.
const liveArchiveNew = 45

// TestLiveSignalArchiveCap: the initiator starts liveArchiveNew more
// sessions with the holder (Go or libsignal) from fresh bundles, holding
// back one message of each. The holder keeps 40 archived states (then
// the current one): the held messages of the 41 newest sessions decrypt,
// the older ones are refused (their session is gone and their prekeys
// are used: one-time prekeys removed, a Kyber triple already used), by
// Go and libsignal alike.
func TestLiveSignalArchiveCap(t *testing.T) {
	archiveCases(t, func(t *testing.T, a *archiveSides) {
		var held []signallive.Msg
		for i := 1; i <= liveArchiveNew; i++ {
			a.newSession(i)
			held = append(held, a.I.Send(fmt.Appendf(nil, "held on session %d", i)))
		}
		if n := a.archived(); n != session.DefaultMaxArchived {
			t.Fatalf("the holder keeps %d archived states, want %d", n, session.DefaultMaxArchived)
		}
		stats := map[string]int{}
		for i, m := range held {
			if kept := i+1 > liveArchiveNew-session.DefaultMaxArchived-1; kept {
				liveDeliver(t, a.H, m)
				stats["decrypted"]++
			} else {
				stats["refused: "+a.refused(m, fmt.Sprintf("a message of dropped session %d", i+1))]++
			}
		}
		if n := a.archived(); n != session.DefaultMaxArchived {
			t.Fatalf("after the held messages the holder keeps %d archived states", n)
		}
		t.Logf("%d sessions after the first; held messages: %v", liveArchiveNew, stats)
	})
}

// TestLiveSignalArchivePromotedDropped: a full record (the current
// state and 40 archived) takes a new session right after its oldest one
// was promoted. Both holders keep the archive in the order states
// stopped being current (libsignal's promote_state puts the state it
// archives first and drops the last; Go's record does the same, see
// makeCurrent in session/record.go): the promoted oldest session
// survives, and the second oldest, archived longest, goes.
func TestLiveSignalArchivePromotedDropped(t *testing.T) {
	archiveCases(t, func(t *testing.T, a *archiveSides) {
		oldA := a.I.Send([]byte("oldest session, first"))
		oldB := a.I.Send([]byte("oldest session, second"))
		var second signallive.Msg
		for i := 1; i <= session.DefaultMaxArchived; i++ {
			a.newSession(i)
			if i == 1 {
				second = a.I.Send([]byte("second oldest"))
			}
		}
		liveDeliver(t, a.H, oldA) // promotes the oldest
		a.newSession(session.DefaultMaxArchived + 1)
		liveDeliver(t, a.H, oldB)
		kind := a.refused(second, "a message of the second oldest session")
		if n := a.archived(); n != session.DefaultMaxArchived {
			t.Fatalf("the holder keeps %d archived states, want %d", n, session.DefaultMaxArchived)
		}
		t.Logf("the promoted oldest session kept, the second oldest dropped (%s)", kind)
	})
}
