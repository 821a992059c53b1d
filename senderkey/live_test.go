package senderkey

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
)

// Verdicts of a decrypt, the same for both implementations.
const (
	vOK        = "ok"
	vDuplicate = "duplicate"
	vNoState   = "no state"
	vRefused   = "refused"
)

// groupMember is one member of a live group, in Go or in libsignal.
type groupMember interface {
	name() string
	create(id DistributionID) []byte // our distribution message
	forget(id DistributionID)        // drop our own record: rekey
	process(t *testing.T, from string, skdm []byte)
	encrypt(t *testing.T, id DistributionID, pt []byte) []byte
	// decrypt returns the plaintext or the verdict, and whether the state
	// was unchanged after a failure.
	decrypt(t *testing.T, from string, wire []byte) (pt []byte, verdict string, unchanged bool)
}

type goMember struct {
	id   string
	own  map[DistributionID]*Record
	recv map[string]member // by sender
}

func newGoMember(id string) *goMember {
	return &goMember{id: id, own: map[DistributionID]*Record{}, recv: map[string]member{}}
}

func (g *goMember) name() string { return g.id }

func (g *goMember) create(id DistributionID) []byte {
	if g.own[id] == nil {
		g.own[id] = new(Record)
	}
	dm, err := g.own[id].DistributionMessage(id)
	if err != nil {
		panic(err)
	}
	return dm.Bytes()
}

func (g *goMember) forget(id DistributionID) { delete(g.own, id) }

func (g *goMember) process(t *testing.T, from string, skdm []byte) {
	dm, err := ParseDistributionMessage(skdm)
	if err != nil {
		t.Fatalf("%s: libsignal's distribution message: %v", g.id, err)
	}
	if g.recv[from] == nil {
		g.recv[from] = member{}
	}
	if g.recv[from][dm.DistributionID] == nil {
		g.recv[from][dm.DistributionID] = new(Record)
	}
	g.recv[from][dm.DistributionID].Process(dm)
}

func (g *goMember) encrypt(t *testing.T, id DistributionID, pt []byte) []byte {
	b, err := g.own[id].Encrypt(id, pt)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (g *goMember) decrypt(t *testing.T, from string, wire []byte) ([]byte, string, bool) {
	m := g.recv[from]
	if m == nil {
		m = member{}
	}
	before := m.bytes()
	pt, err := m.decrypt(wire)
	unchanged := bytes.Equal(before, m.bytes())
	switch {
	case err == nil:
		return pt, vOK, unchanged
	case errors.Is(err, ErrDuplicate):
		return nil, vDuplicate, unchanged
	case errors.Is(err, ErrNoState):
		return nil, vNoState, unchanged
	}
	return nil, vRefused, unchanged
}

type lsMember struct {
	id   string
	peer *libsignaltest.Peer
}

func (l *lsMember) name() string { return l.id }

func (l *lsMember) call(req map[string]any) libsignaltest.Reply {
	req["as"] = l.id
	return l.peer.Call(req)
}

func (l *lsMember) create(id DistributionID) []byte {
	r := l.call(map[string]any{"op": "create", "dist": hex.EncodeToString(id[:])})
	b, _ := hex.DecodeString(r.Wire)
	return b
}

func (l *lsMember) forget(id DistributionID) {
	l.call(map[string]any{"op": "forget", "dist": hex.EncodeToString(id[:])})
}

func (l *lsMember) process(t *testing.T, from string, skdm []byte) {
	if r := l.call(map[string]any{"op": "process", "from": from, "wire": hex.EncodeToString(skdm)}); !r.OK {
		t.Fatalf("%s: libsignal refused Go's distribution message: %s", l.id, r.Error)
	}
}

func (l *lsMember) encrypt(t *testing.T, id DistributionID, pt []byte) []byte {
	r := l.call(map[string]any{"op": "encrypt", "dist": hex.EncodeToString(id[:]), "plaintext": hex.EncodeToString(pt)})
	if !r.OK {
		t.Fatalf("%s: libsignal encrypt: %s", l.id, r.Error)
	}
	b, _ := hex.DecodeString(r.Wire)
	return b
}

func (l *lsMember) decrypt(t *testing.T, from string, wire []byte) ([]byte, string, bool) {
	r := l.call(map[string]any{"op": "decrypt", "from": from, "wire": hex.EncodeToString(wire)})
	if r.OK {
		b, _ := hex.DecodeString(r.Plaintext)
		return b, vOK, true
	}
	unchanged := r.Unchanged != nil && *r.Unchanged
	switch {
	case strings.Contains(r.Error, "old counter"):
		return nil, vDuplicate, unchanged
	case strings.Contains(r.Error, "missing sender key state"):
		return nil, vNoState, unchanged
	}
	return nil, vRefused, unchanged
}

// liveGroup is a group on one distribution id: every member's chain given
// to every other member.
type liveGroup struct {
	t       *testing.T
	id      DistributionID
	members []groupMember
}

func (g *liveGroup) distribute(among []groupMember) {
	for _, s := range among {
		skdm := s.create(g.id)
		for _, r := range among {
			if r != s {
				r.process(g.t, s.name(), skdm)
			}
		}
	}
}

// tamper flips one random bit of a copy of b.
func tamper(rng *rand.Rand, b []byte) []byte {
	c := bytes.Clone(b)
	c[rng.IntN(len(c))] ^= 1 << rng.IntN(8)
	return c
}

// expectRefusedUnchanged delivers a tampered copy of wire to r and requires
// a refusal that changed nothing.
func expectRefusedUnchanged(t *testing.T, rng *rand.Rand, r groupMember, from string, wire []byte) {
	t.Helper()
	bad := tamper(rng, wire)
	if pt, v, unchanged := r.decrypt(t, from, bad); v == vOK || !unchanged {
		t.Fatalf("%s accepted a tampered message from %s (verdict %q, %d bytes, unchanged %v)", r.name(), from, v, len(pt), unchanged)
	}
}

func startLibsignal(t *testing.T) *libsignaltest.Peer {
	return libsignaltest.LiveScript(t, "live_senderkey.mjs")
}

// TestLiveOneSender: a Go sender with two libsignal receivers, then a
// libsignal sender with two Go receivers; messages out of order, some
// lost, duplicates refused as duplicates, tampered copies refused with the
// receiver's state unchanged.
func TestLiveOneSender(t *testing.T) {
	peer := startLibsignal(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, goSends := range []bool{true, false} {
		var sender groupMember
		var receivers []groupMember
		if goSends {
			sender = newGoMember("go-sender")
			receivers = []groupMember{&lsMember{"ls-bob", peer}, &lsMember{"ls-carol", peer}}
		} else {
			sender = &lsMember{"ls-sender", peer}
			receivers = []groupMember{newGoMember("go-bob"), newGoMember("go-carol")}
		}
		g := &liveGroup{t: t, id: NewDistributionID()}
		skdm := sender.create(g.id)
		for _, r := range receivers {
			r.process(t, sender.name(), skdm)
		}
		var wires, pts [][]byte
		for i := range 40 {
			pt := make([]byte, rng.IntN(200))
			for j := range pt {
				pt[j] = byte(i + j)
			}
			pts = append(pts, pt)
			wires = append(wires, sender.encrypt(t, g.id, pt))
		}
		for _, r := range receivers {
			order := rng.Perm(len(wires))
			done := map[int]bool{}
			for k, i := range order {
				if k%9 == 4 {
					continue // lost
				}
				expectRefusedUnchanged(t, rng, r, sender.name(), wires[i])
				pt, v, _ := r.decrypt(t, sender.name(), wires[i])
				if v != vOK || !bytes.Equal(pt, pts[i]) {
					t.Fatalf("go sends %v: %s could not decrypt message %d: %s", goSends, r.name(), i, v)
				}
				done[i] = true
				if k%5 == 0 {
					if _, v, unchanged := r.decrypt(t, sender.name(), wires[i]); v != vDuplicate || !unchanged {
						t.Fatalf("%s: a duplicate gave %q", r.name(), v)
					}
				}
			}
		}
	}
}

// TestLiveGroup: five members, three in Go and two in libsignal, 1 000
// random group messages with reordering, loss, duplicates and tampered
// copies; then two members (one of each) are removed and the others rekey:
// the removed ones cannot read what follows.
func TestLiveGroup(t *testing.T) {
	peer := startLibsignal(t)
	stats := runGroup(t, []groupMember{newGoMember("go-1"), newGoMember("go-2"), newGoMember("go-3"),
		&lsMember{"ls-1", peer}, &lsMember{"ls-2", peer}})
	if stats["go to libsignal"] < 500 || stats["libsignal to go"] < 500 {
		t.Fatalf("too little interop: %v", stats)
	}
}

// TestGroup is TestLiveGroup with five Go members, for runs without Node.
func TestGroup(t *testing.T) {
	runGroup(t, []groupMember{newGoMember("go-1"), newGoMember("go-2"), newGoMember("go-3"),
		newGoMember("go-4"), newGoMember("go-5")})
}

// runGroup runs the group script on five members (the third and the fifth
// are removed) and returns its counts.
func runGroup(t *testing.T, members []groupMember) map[string]int {
	rng := rand.New(rand.NewPCG(14, 5))
	g := &liveGroup{t: t, id: NewDistributionID(), members: members}
	g.distribute(members)

	type pending struct {
		from string
		wire []byte
		pt   []byte
		dup  bool
	}
	kind := func(name string) string {
		if strings.HasPrefix(name, "go-") {
			return "go"
		}
		return "libsignal"
	}
	// Each receiver has a queue of messages in flight; delivery picks a
	// random one of the oldest few (reordering), drops some and repeats
	// some.
	queues := map[string][]pending{}
	stats := map[string]int{}
	deliver := func(r groupMember, p pending) {
		if rng.IntN(50) == 0 {
			expectRefusedUnchanged(t, rng, r, p.from, p.wire)
			stats["tampered refused"]++
		}
		pt, v, unchanged := r.decrypt(t, p.from, p.wire)
		switch {
		case p.dup:
			if v != vDuplicate || !unchanged {
				t.Fatalf("%s: a duplicate from %s gave %q", r.name(), p.from, v)
			}
			stats["duplicates refused"]++
		case v != vOK || !bytes.Equal(pt, p.pt):
			t.Fatalf("%s: a message from %s gave %q", r.name(), p.from, v)
		default:
			stats["decrypted"]++
			stats[kind(p.from)+" to "+kind(r.name())]++
		}
	}
	drain := func(r groupMember, keep int) {
		q := queues[r.name()]
		for len(q) > keep {
			i := rng.IntN(min(len(q), 6))
			p := q[i]
			q = append(q[:i], q[i+1:]...)
			deliver(r, p)
			if !p.dup && rng.IntN(20) == 0 {
				p.dup = true
				q = append(q, p) // delivered again later
			}
		}
		queues[r.name()] = q
	}
	const messages = 1000
	for i := range messages {
		s := members[rng.IntN(len(members))]
		pt := fmt.Appendf(nil, "message %d from %s", i, s.name())
		wire := s.encrypt(t, g.id, pt)
		stats["sent"]++
		for _, r := range members {
			if r == s {
				continue
			}
			if rng.IntN(25) == 0 {
				stats["lost"]++
				continue
			}
			queues[r.name()] = append(queues[r.name()], pending{from: s.name(), wire: wire, pt: pt})
			drain(r, 8)
		}
	}
	for _, r := range members {
		drain(r, 0)
	}

	// Remove go-3 and ls-2; the others rekey among themselves.
	removed := []groupMember{members[2], members[4]}
	stay := []groupMember{members[0], members[1], members[3]}
	for _, s := range stay {
		s.forget(g.id)
	}
	g.distribute(stay)
	for i := range 30 {
		s := stay[i%len(stay)]
		pt := fmt.Appendf(nil, "after the removal %d", i)
		wire := s.encrypt(t, g.id, pt)
		for _, r := range stay {
			if r == s {
				continue
			}
			if got, v, _ := r.decrypt(t, s.name(), wire); v != vOK || !bytes.Equal(got, pt) {
				t.Fatalf("%s: after the rekey, a message from %s gave %q", r.name(), s.name(), v)
			}
			stats["decrypted after rekey"]++
		}
		for _, r := range removed {
			if _, v, unchanged := r.decrypt(t, s.name(), wire); v != vNoState || !unchanged {
				t.Fatalf("removed %s: a message from %s after the rekey gave %q", r.name(), s.name(), v)
			}
			stats["unreadable for the removed"]++
		}
	}
	if stats["decrypted"] < 3000 || stats["duplicates refused"] < 50 || stats["tampered refused"] < 50 {
		t.Fatalf("too little exercised: %v", stats)
	}
	t.Logf("%v", stats)
	return stats
}
