package ratchet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// The randomized tests run two parties against a model that knows only
// counters: which chain each message is on, its number, what each party
// has received and which skipped keys it must still hold. The model
// predicts the outcome of every delivery; the sessions must agree, keep
// their state unchanged on every error, and hold exactly the skipped keys
// the model says, in the same order.

type outcome string

const (
	outOK        outcome = "ok"
	outDuplicate outcome = "duplicate"
	outTooMany   outcome = "too_many_skipped"
	outAuth      outcome = "auth_failed"
)

type modelKey struct {
	epoch int // index into the sender's ratchet keys
	n     uint32
}

type simParty struct {
	name string
	s    *Session
	// Sending side. keys[i] is the party's i-th ratchet public key; it
	// sends under keys[len(keys)-1] once it has a sending chain.
	keys    [][]byte
	sending bool
	ns, pn  uint32
	// Receiving side: the peer's key index of the current receiving
	// chain (-1: none), its position, the stored skipped keys in order.
	recv   int
	nr     uint32
	stored []modelKey
}

type simMsg struct {
	from  int
	epoch int
	n, pn uint32
	pt    []byte
	wire  []byte
}

// chooser makes the simulation's decisions: a seeded generator, or the
// fuzzer's bytes.
type chooser interface {
	IntN(n int) int
}

type sim struct {
	t         testing.TB
	rng       chooser
	maxSkip   uint32
	maxKeys   int
	p         [2]*simParty
	inflight  [2][]*simMsg // messages to party i
	delivered [2][]*simMsg
	sent      int
	stats     map[string]int
}

func newSim(t testing.TB, rng chooser, cfg *Config) *sim {
	alice, bob := newPair(t, cfg)
	x := &sim{t: t, rng: rng, stats: map[string]int{}}
	x.maxSkip, x.maxKeys = alice.maxSkip, int(alice.maxKeys)
	x.p[0] = &simParty{name: "alice", s: alice, keys: [][]byte{alice.RatchetKey().Bytes()}, sending: true, recv: -1}
	x.p[1] = &simParty{name: "bob", s: bob, keys: [][]byte{bob.RatchetKey().Bytes()}, recv: -1}
	return x
}

func (x *sim) fatalf(format string, args ...any) {
	x.t.Helper()
	x.t.Fatalf("after %d messages: "+format, append([]any{x.sent}, args...)...)
}

func (x *sim) send(i int) {
	p := x.p[i]
	pt := make([]byte, x.rng.IntN(40))
	for k := range pt {
		pt[k] = byte(x.rng.IntN(256))
	}
	before := state(x.t, p.s)
	m, err := p.s.Encrypt(pt)
	if !p.sending {
		if !errors.Is(err, ErrNoSendingChain) {
			x.fatalf("%s encrypted without a sending chain: %v", p.name, err)
		}
		if !bytes.Equal(before, state(x.t, p.s)) {
			x.fatalf("failed Encrypt changed the state")
		}
		return
	}
	if err != nil {
		x.fatalf("%s Encrypt: %v", p.name, err)
	}
	epoch := len(p.keys) - 1
	if !bytes.Equal(m[2:34], p.keys[epoch]) || binary.BigEndian.Uint32(m[34:]) != p.pn || binary.BigEndian.Uint32(m[38:]) != p.ns {
		x.fatalf("%s header %x, model key %x PN %d N %d", p.name, m[:42], p.keys[epoch], p.pn, p.ns)
	}
	msg := &simMsg{from: i, epoch: epoch, n: p.ns, pn: p.pn, pt: pt, wire: m}
	p.ns++
	x.inflight[1-i] = append(x.inflight[1-i], msg)
	x.sent++
}

// predict returns what delivering m to party r must do.
func (x *sim) predict(r *simParty, m *simMsg) outcome {
	for _, k := range r.stored {
		if k == (modelKey{m.epoch, m.n}) {
			return outOK
		}
	}
	if r.recv == m.epoch {
		switch {
		case m.n < r.nr:
			return outDuplicate
		case uint64(r.nr)+uint64(x.maxSkip) < uint64(m.n):
			return outTooMany
		}
		return outOK
	}
	if uint64(r.nr)+uint64(x.maxSkip) < uint64(m.pn) || uint64(x.maxSkip) < uint64(m.n) {
		return outTooMany
	}
	if m.epoch < r.recv {
		return outAuth // an older chain whose key is gone
	}
	return outOK
}

func (x *sim) store(r *simParty, epoch int, from, until uint32) {
	if x.maxKeys == 0 {
		return
	}
	for n := from; n < until; n++ {
		r.stored = append(r.stored, modelKey{epoch, n})
		if len(r.stored) > x.maxKeys {
			r.stored = r.stored[1:]
		}
	}
}

// apply updates the model for a successful delivery.
func (x *sim) apply(ri int, m *simMsg) {
	r := x.p[ri]
	for k, key := range r.stored {
		if key == (modelKey{m.epoch, m.n}) {
			r.stored = append(r.stored[:k:k], r.stored[k+1:]...)
			x.stats["skipped key used"]++
			return
		}
	}
	if r.recv == m.epoch {
		x.store(r, m.epoch, r.nr, m.n)
		r.nr = m.n + 1
		return
	}
	x.stats["dh step"]++
	if r.recv >= 0 {
		x.store(r, r.recv, r.nr, m.pn)
	}
	x.store(r, m.epoch, 0, m.n)
	r.recv, r.nr = m.epoch, m.n+1
	r.pn, r.ns = r.ns, 0
	r.sending = true
	r.keys = append(r.keys, r.s.RatchetKey().Bytes())
	if bytes.Equal(r.keys[len(r.keys)-1], r.keys[len(r.keys)-2]) {
		x.fatalf("%s: no new ratchet key at a DH step", r.name)
	}
}

// deliver hands wire (m's bytes, or a tampered copy) to party ri. A copy
// with a flipped ciphertext bit must fail as the model says, with
// auth_failed where the original would decrypt; one with a flipped header
// bit must fail somehow.
func (x *sim) deliver(ri int, m *simMsg, wire []byte, tamper int) outcome {
	r := x.p[ri]
	want := x.predict(r, m)
	if tamper >= 0 && want == outOK {
		want = outAuth
	}
	before := state(x.t, r.s)
	pt, err := r.s.Decrypt(wire)
	got := outcome(errorKind(err))
	switch {
	case tamper >= 0 && tamper < wireHeaderSize:
		if err == nil {
			x.fatalf("%s decrypted a message with a flipped header bit", r.name)
		}
		want = got
	case err == nil && want != outOK, err != nil && got != want:
		x.fatalf("%s: delivering %s's message (key %d, N %d, PN %d, tampered at %d): got %v, model says %s",
			r.name, x.p[m.from].name, m.epoch, m.n, m.pn, tamper, err, want)
	}
	x.stats[string(want)]++
	if err != nil {
		if !bytes.Equal(before, state(x.t, r.s)) {
			x.fatalf("failed Decrypt (%v) changed the state", err)
		}
		return want
	}
	if !bytes.Equal(pt, m.pt) {
		x.fatalf("wrong plaintext")
	}
	x.apply(ri, m)
	x.checkStore(ri)
	return outOK
}

// checkStore compares the session's skipped keys with the model's.
func (x *sim) checkStore(ri int) {
	r, peer := x.p[ri], x.p[1-ri]
	got := skippedList(&r.s.skipped)
	if len(got) != len(r.stored) {
		x.fatalf("%s stores %d skipped keys, model %d", r.name, len(got), len(r.stored))
	}
	for k, g := range got {
		w := r.stored[k]
		if g.N != w.n || !bytes.Equal(g.RatchetKey, peer.keys[w.epoch]) {
			x.fatalf("%s skipped key %d is (%x, %d), model (key %d, %d)", r.name, k, g.RatchetKey[:4], g.N, w.epoch, w.n)
		}
	}
	if max := 2 * x.maxKeys; len(r.s.skipped.ring) > max {
		x.fatalf("skipped-key ring of %d slots, above %d", len(r.s.skipped.ring), max)
	}
	if r.s.HasReceived() != (r.recv >= 0) {
		x.fatalf("HasReceived")
	}
}

func (x *sim) roundTrip(i int) {
	p := x.p[i]
	b := state(x.t, p.s)
	s, err := ParseSession(b)
	if err != nil {
		x.fatalf("ParseSession: %v", err)
	}
	if !bytes.Equal(state(x.t, s), b) {
		x.fatalf("parse -> marshal differs")
	}
	p.s = s
	x.stats["round trip"]++
}

func (x *sim) pick(list []*simMsg) int {
	// Mostly near the front, so most gaps stay small: reordering, not chaos.
	if x.rng.IntN(4) > 0 {
		return x.rng.IntN(min(len(list), 3))
	}
	return x.rng.IntN(len(list))
}

func (x *sim) step() {
	ri := x.rng.IntN(2)
	switch a := x.rng.IntN(100); {
	case a < 40:
		x.send(1 - ri)
	case a < 80:
		list := x.inflight[ri]
		if len(list) == 0 {
			return
		}
		k := x.pick(list)
		m := list[k]
		if out := x.deliver(ri, m, m.wire, -1); out != outTooMany {
			x.inflight[ri] = append(list[:k], list[k+1:]...)
			x.delivered[ri] = append(x.delivered[ri], m)
		}
	case a < 85:
		if list := x.inflight[ri]; len(list) > 0 {
			k := x.pick(list)
			x.inflight[ri] = append(list[:k], list[k+1:]...)
			x.stats["dropped"]++
		}
	case a < 90:
		if list := x.delivered[ri]; len(list) > 0 {
			m := list[x.rng.IntN(len(list))]
			x.deliver(ri, m, m.wire, -1)
			x.stats["redelivered"]++
		}
	case a < 96:
		list := append(x.inflight[ri], x.delivered[ri]...)
		if len(list) == 0 {
			return
		}
		m := list[x.rng.IntN(len(list))]
		w := bytes.Clone(m.wire)
		at := x.rng.IntN(len(w))
		w[at] ^= 1 << x.rng.IntN(8)
		x.deliver(ri, m, w, at)
		x.stats["tampered"]++
	default:
		x.roundTrip(ri)
	}
}

var simConfigs = []*Config{
	nil,
	{MaxSkip: 5, MaxSkippedKeys: 7},
	{MaxSkip: 20, MaxSkippedKeys: 15},
	{MaxSkip: 3, MaxSkippedKeys: 100},
	{MaxSkip: -1, MaxSkippedKeys: 5},
	{MaxSkip: 10, MaxSkippedKeys: -1},
	{MaxSkip: 8, MaxSkippedKeys: 1},
}

// TestRandomConversations runs seeded two-party conversations with
// reordering, loss, redelivery, tampering and state round trips: 10,000
// messages in all (1,000 with -short).
func TestRandomConversations(t *testing.T) {
	total := 10000
	if testing.Short() {
		total = 1000
	}
	const seeds = 14
	stats := map[string]int{}
	for seed := range uint64(seeds) {
		cfg := simConfigs[int(seed)%len(simConfigs)]
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			x := newSim(t, rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), cfg)
			for x.sent < total/seeds {
				x.step()
			}
			for k, v := range x.stats {
				stats[k] += v
			}
		})
	}
	t.Logf("outcomes: %v", stats)
	// The mix must exercise every path.
	for _, k := range []string{"ok", "duplicate", "too_many_skipped", "auth_failed", "dropped", "tampered", "round trip", "dh step", "skipped key used"} {
		if stats[k] == 0 {
			t.Errorf("no %q in the randomized run", k)
		}
	}
}
