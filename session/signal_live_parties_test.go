package session_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
	"github.com/ratchetkit/ratchetkit/internal/signallive"
	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/pqxdh"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// The parties of the live tests that restart sessions (resets, identity
// changes, stale sessions, the archive cap): a Go Manager and one party
// of live.mjs, each able to start anew from the other's fresh bundle.

// goParty is the Go side: a device, the address it keeps the libsignal
// peer at, and the name libsignal knows it by.
type goParty struct {
	t    testing.TB
	d    *signalDevice
	peer store.Address
	name string
	// has: Encrypt has a session to use; pending: that session is an
	// initiator's that has received nothing, so Encrypt must send
	// PreKeySignalMessages.
	has, pending bool
	// opks and kybers are the one-time prekeys of d's uploads not yet
	// handed to libsignal.
	opks   []session.PublicPreKey
	kybers []session.PublicKyberPreKey
}

func newGoParty(t testing.TB, name string, peer store.Address) *goParty {
	g := &goParty{t: t, name: name, peer: peer}
	g.setDevice(newSignalDevice(t, memory.New(), name, 1, nil))
	return g
}

// setDevice replaces the device, as a reinstall with a fresh store does.
func (g *goParty) setDevice(d *signalDevice) {
	g.d, g.has, g.pending = d, false, false
	g.opks, g.kybers = d.up.OneTimePreKeys, d.up.KyberOneTimePreKeys
}

// state is the Go side's stored state, for Conversation.
func (g *goParty) state() ([]byte, bool) { return take(g.t, g.d.st, g.peer).bytes(), true }

// start starts a session from b.
func (g *goParty) start(b *pqxdh.Bundle) {
	g.t.Helper()
	if err := g.d.m.StartSignalSession(g.t.Context(), g.peer, b); err != nil {
		g.t.Fatal(err)
	}
	g.has, g.pending = true, true
}

// bundle hands out a bundle of the device as a server would: a one-time
// EC prekey if withOPK (each once), a one-time Kyber prekey while any is
// left, else the last-resort one. Upkeep refills the stock.
func (g *goParty) bundle(withOPK bool) *pqxdh.Bundle {
	g.t.Helper()
	if (withOPK && len(g.opks) == 0) || len(g.kybers) == 0 {
		u, err := g.d.m.Upkeep(g.t.Context())
		if err != nil {
			g.t.Fatal(err)
		}
		g.opks, g.kybers = append(g.opks, u.OneTimePreKeys...), append(g.kybers, u.KyberOneTimePreKeys...)
	}
	var opk *session.PublicPreKey
	var kpk *session.PublicKyberPreKey
	if withOPK {
		if len(g.opks) == 0 {
			g.t.Fatal("no one-time prekey left after Upkeep")
		}
		opk, g.opks = &g.opks[0], g.opks[1:]
	}
	if len(g.kybers) > 0 {
		kpk, g.kybers = &g.kybers[0], g.kybers[1:]
	}
	// PreKeyUpload carries the current signed and last-resort prekeys.
	u, err := g.d.m.PreKeyUpload(g.t.Context())
	if err != nil {
		g.t.Fatal(err)
	}
	return u.SignalBundle(opk, kpk)
}

func (g *goParty) end() signallive.End {
	return signallive.End{
		CanSend: func() bool { return g.has },
		Send: func(pt []byte) signallive.Msg {
			g.t.Helper()
			wire, err := g.d.m.Encrypt(g.t.Context(), g.peer, pt)
			if err != nil {
				g.t.Fatal(err)
			}
			typ := session.SignalMessageType(wire)
			if isPreKey(g.t, wire) != (typ == signalwire.TypePreKey) {
				g.t.Fatal("SignalMessageType disagrees with the parser")
			}
			if (typ == signalwire.TypePreKey) != g.pending {
				g.t.Fatalf("Go sent message type %d; its session pending: %v", typ, g.pending)
			}
			return signallive.Msg{Type: typ, Wire: wire, Plaintext: pt}
		},
		Recv: func(m signallive.Msg) error {
			got, err := g.d.m.Decrypt(g.t.Context(), g.peer, m.Wire)
			if err != nil {
				return err
			}
			if !bytes.Equal(got, m.Plaintext) {
				g.t.Fatal("wrong plaintext from libsignal")
			}
			g.has, g.pending = true, false
			return nil
		},
	}
}

// refuses delivers m, which must fail without changing the Go store, and
// returns the error.
func (g *goParty) refuses(m signallive.Msg, what string) error {
	g.t.Helper()
	before := take(g.t, g.d.st, g.peer)
	err := g.end().Recv(m)
	if err == nil {
		g.t.Fatalf("Go accepted %s", what)
	}
	if !take(g.t, g.d.st, g.peer).equal(before) {
		g.t.Fatalf("%s changed Go's store", what)
	}
	return err
}

// lsParty is one party of live.mjs ("alice" or "bob") talking to goName.
type lsParty struct {
	t      testing.TB
	p      *libsignaltest.Peer
	as     string
	goName string
	has    bool
}

func (l *lsParty) call(req map[string]any) libsignaltest.Reply {
	l.t.Helper()
	req["as"] = l.as
	return l.p.Call(req)
}

func (l *lsParty) must(req map[string]any) libsignaltest.Reply {
	l.t.Helper()
	r := l.call(req)
	if !r.OK {
		l.t.Fatalf("libsignal %v: %s", req["op"], r.Error)
	}
	return r
}

// process has libsignal start a session from a Go bundle, its clock days
// past live.mjs's start.
func (l *lsParty) process(b *pqxdh.Bundle, days int) {
	l.t.Helper()
	l.must(map[string]any{"op": "process_bundle", "to": l.goName, "bundle": signallive.BundleRequest(b), "days": days})
	l.has = true
}

func (l *lsParty) bundle(withOPK bool) *pqxdh.Bundle {
	l.t.Helper()
	return signallive.FreshBundle(l.t, l.p, l.as, withOPK)
}

// trust is libsignal's approval of a changed key: saveIdentity. It
// returns the IdentityChange (1: ReplacedExisting).
func (l *lsParty) trust(key []byte) int {
	l.t.Helper()
	return l.must(map[string]any{"op": "trust", "address": l.goName, "identity": hex.EncodeToString(key)}).Type
}

// archived returns how many previous states libsignal's record with the
// Go party holds (-1: no record).
func (l *lsParty) archived() int {
	l.t.Helper()
	return l.must(map[string]any{"op": "sessions", "with": l.goName}).Type
}

func (l *lsParty) end() signallive.End { return l.endAt(0) }

// endAt is l's end with its clock days past live.mjs's start.
func (l *lsParty) endAt(days int) signallive.End {
	return signallive.End{
		CanSend: func() bool { return l.has },
		Send: func(pt []byte) signallive.Msg {
			l.t.Helper()
			r := l.must(map[string]any{"op": "encrypt", "to": l.goName, "plaintext": hex.EncodeToString(pt), "days": days})
			return signallive.Msg{Type: r.Type, Wire: libsignaltest.Hex(l.t, r.Wire), Plaintext: pt}
		},
		Recv: func(m signallive.Msg) error {
			return signallive.CheckReply(l.call(map[string]any{"op": "decrypt", "from": l.goName, "type": m.Type, "wire": hex.EncodeToString(m.Wire)}), m.Plaintext, &l.has)
		},
	}
}

// refuses delivers m to libsignal, which must refuse it, and returns its
// error.
func (l *lsParty) refuses(m signallive.Msg, what string) error {
	l.t.Helper()
	err := l.end().Recv(m)
	if err == nil {
		l.t.Fatalf("libsignal accepted %s", what)
	}
	return err
}

// livePair starts a Go party and a libsignal party with a session in the
// given role, with or without a one-time prekey, and one message
// delivered each way.
func livePair(t *testing.T, goInitiator, withOPK bool) (*goParty, *lsParty) {
	v := libsignaltest.Load(t)
	p := libsignaltest.Live(t, v.Sessions[0].Name)
	var g *goParty
	var l *lsParty
	if goInitiator {
		g = newGoParty(t, "go-alice", store.Address{Name: "libsignal-bob", DeviceID: 1})
		l = &lsParty{t: t, p: p, as: "bob", goName: "go-alice"}
		g.start(l.bundle(withOPK))
		liveDeliver(t, l.end(), g.end().Send([]byte("hello")))
		liveDeliver(t, g.end(), l.end().Send([]byte("hello back")))
	} else {
		g = newGoParty(t, "go-bob", store.Address{Name: "libsignal-alice", DeviceID: 1})
		l = &lsParty{t: t, p: p, as: "alice", goName: "go-bob"}
		l.process(g.bundle(withOPK), 0)
		liveDeliver(t, g.end(), l.end().Send([]byte("hello")))
		liveDeliver(t, l.end(), g.end().Send([]byte("hello back")))
	}
	return g, l
}

// errKind names a refusal for the counts the tests log: Go's error kind,
// or the start of libsignal's message.
func errKind(err error) string {
	var ie *session.IdentityError
	if errors.As(err, &ie) {
		return "identity error"
	}
	if k := kind(err); !strings.HasPrefix(k, "other") {
		return k
	}
	s := err.Error()
	if i := strings.IndexAny(s, ":("); i > 0 && !strings.HasPrefix(s, "libsignal: ") {
		return s[:i]
	}
	s = strings.TrimPrefix(s, "libsignal: ")
	if len(s) > 40 {
		s = s[:40]
	}
	return "libsignal: " + s
}
