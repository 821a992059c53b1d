package spqr

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/mlkem768"
)

// seededReader is a deterministic stand-in for crypto/rand in tests.
type seededReader struct{ c *rand.ChaCha8 }

func (s seededReader) Read(b []byte) (int, error) { return s.c.Read(b) }

func newPair(seed uint64) (a, b *Ratchet) {
	pqr := [KeySize]byte{byte(seed), byte(seed >> 8), 0xaa}
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	a, b = NewRatchet(&pqr, true), NewRatchet(&pqr, false)
	s[2] = 1
	a.rand = seededReader{rand.NewChaCha8(s)}
	s[2] = 2
	b.rand = seededReader{rand.NewChaCha8(s)}
	return a, b
}

type sent struct {
	msg []byte
	key [KeySize]byte
}

// conversation drives two ratchets through a seeded schedule: random
// senders, deliveries reordered within a window, losses, replays and
// tampered copies. Every genuine message must give the sender's key the
// first time; a replay and a tampered copy must be refused or at least
// (a tampered chunk with intact epoch and index) leave the state as it
// was, since the ratchet message's MAC fails and nothing is committed.
type conversation struct {
	t      testing.TB
	r      *rand.Rand
	a, b   *Ratchet
	queues [2][]sent // to B, to A
	stats  map[string]int
}

func (c *conversation) party(i int) *Ratchet { return [2]*Ratchet{c.b, c.a}[i] }

// lossyStep takes one random step of a lossy conversation: half the time a
// party sends, a tenth of the time the oldest message to a party is lost,
// and otherwise one of the first window messages to a party is delivered.
func (c *conversation) lossyStep(window int) {
	to := c.r.IntN(2)
	switch op := c.r.IntN(10); {
	case op < 5:
		c.send(to)
	case op < 6 && len(c.queues[to]) > 0:
		c.queues[to] = c.queues[to][1:]
	default:
		c.deliver(to, c.r.IntN(window), false, 0)
	}
}

func (c *conversation) send(to int) {
	from := c.party(1 - to)
	msg, key, err := from.Send()
	if err != nil {
		c.t.Fatal(err)
	}
	if m, _, err := ParseMessage(msg); err != nil || m.Epoch != from.chains.sendEpoch+1 {
		c.t.Fatalf("Send made a message that does not parse: %v", err)
	}
	c.queues[to] = append(c.queues[to], sent{msg, key})
	c.stats["sent"]++
}

func (c *conversation) deliver(to int, pos int, tamper bool, tamperAt int) {
	q := c.queues[to]
	if len(q) == 0 {
		return
	}
	pos %= len(q)
	s := q[pos]
	c.queues[to] = append(q[:pos:pos], q[pos+1:]...)
	rcv := c.party(to)
	if tamper {
		bad := bytes.Clone(s.msg)
		bad[tamperAt%len(bad)] ^= 1 << (tamperAt / len(bad) % 8)
		before := fingerprint(rcv)
		if _, _, err := rcv.Receive(bad); err == nil {
			c.stats["tampered-uncommitted"]++
		} else {
			c.stats["tampered-refused"]++
		}
		if fingerprint(rcv) != before {
			c.t.Fatal("an uncommitted receive changed the state")
		}
		c.queues[to] = append(c.queues[to], s) // the genuine copy still comes
		return
	}
	key, commit, err := rcv.Receive(s.msg)
	if err != nil {
		m, _, _ := ParseMessage(s.msg)
		if (errors.Is(err, ErrEpochOutOfRange) && m.Epoch < rcv.braid.epoch) || errors.Is(err, ErrKeyTrimmed) {
			c.stats["too-old"]++
			return
		}
		c.t.Fatalf("a genuine message was refused: %v", err)
	}
	if key != s.key {
		c.t.Fatal("receiver's key differs from sender's")
	}
	commit()
	c.stats["delivered"]++
	if _, _, err := rcv.Receive(s.msg); !errors.Is(err, ErrKeyUsed) {
		c.t.Fatalf("a replay: %v", err)
	}
}

// fingerprint summarises everything a receive could change.
func fingerprint(r *Ratchet) string {
	b := r.braid
	s := fmt.Sprintf("%p %d %d %x %x %p %p %x %x %x", b, b.state, b.epoch, b.auth.root, b.auth.mac, b.dk, b.es, b.hdr, b.vec, b.ct1)
	if b.enc != nil {
		s += fmt.Sprintf(" enc %p %d", b.enc, b.enc.next)
	}
	if b.dec != nil {
		s += fmt.Sprintf(" dec %p %v", b.dec, b.dec.pts)
	}
	c := r.chains
	s += fmt.Sprintf(" chains %d %d %d %x", c.current, c.sendEpoch, len(c.links), c.nextRoot)
	for _, l := range c.links {
		s += fmt.Sprintf(" [%d %x %t %d %x %d]", l.send.index, l.send.key, l.sendLive, l.recv.index, l.recv.key, len(l.recv.history))
	}
	return s
}

func runConversation(t testing.TB, seed uint64, steps int, loss, window int) *conversation {
	a, b := newPair(seed)
	c := &conversation{t: t, r: rand.New(rand.NewPCG(seed, 99)), a: a, b: b, stats: map[string]int{}}
	for range steps {
		to := c.r.IntN(2)
		switch op := c.r.IntN(10); {
		case op < 5:
			c.send(to)
		case op < 5+loss && len(c.queues[to]) > 0:
			c.queues[to] = c.queues[to][1:] // lost
			c.stats["lost"]++
		default:
			c.deliver(to, c.r.IntN(window), c.r.IntN(20) == 0, c.r.IntN(1000))
		}
	}
	return c
}

// TestConversation: seeded two-party conversations with reordering (up to
// 5 positions), loss, replays and tampering advance the braid through
// many epochs, every genuine message giving both sides the same key.
func TestConversation(t *testing.T) {
	for seed := range uint64(4) {
		c := runConversation(t, seed, 4000, 1, 5)
		ea, eb := c.a.Epoch(), c.b.Epoch()
		t.Logf("seed %d: epochs %d/%d, %v", seed, ea, eb, c.stats)
		if ea < 5 || eb < 5 {
			t.Fatalf("seed %d: only reached epochs %d and %d", seed, ea, eb)
		}
	}
}

// TestLongSilence: one side sends only None messages for a long stretch
// (it cannot advance alone); once it speaks again the braid resumes.
func TestLongSilence(t *testing.T) {
	a, b := newPair(7)
	c := &conversation{t: t, r: rand.New(rand.NewPCG(7, 7)), a: a, b: b, stats: map[string]int{}}
	for range 3000 {
		c.send(1) // B to A only
		c.deliver(1, 0, false, 0)
	}
	if a.Epoch() != 1 || b.Epoch() != 1 {
		t.Fatalf("epochs moved without the initiator: %d/%d", a.Epoch(), b.Epoch())
	}
	for range 400 {
		c.send(0)
		c.deliver(0, 0, false, 0)
		c.send(1)
		c.deliver(1, 0, false, 0)
	}
	if a.Epoch() < 3 || b.Epoch() < 3 {
		t.Fatalf("epochs after the silence: %d/%d", a.Epoch(), b.Epoch())
	}
}

// TestBraidErrors: a message two epochs ahead, a header with a bad MAC
// and a vector that does not match its header are refused, changing
// nothing.
func TestBraidErrors(t *testing.T) {
	a, b := newPair(3)
	msg, _, _ := a.Send()
	m, _, _ := ParseMessage(msg)
	ahead := appendHeader(nil, m.Epoch+1, 5, None)
	if _, _, err := b.Receive(ahead); !errors.Is(err, ErrEpochOutOfRange) {
		t.Fatalf("a message an epoch ahead: %v", err)
	}
	for _, bad := range [][]byte{
		appendHeader(nil, 0, 1, None),                 // epoch 0
		append(appendHeader(nil, 1, 1, None), 0),      // trailing byte
		append(appendHeader(nil, 1, 1, Ct1Ack), 0),    // Ct1Ack with data
		append(appendHeader(nil, 1, 1, Hdr), 0, 1, 2), // short chunk
		appendHeader(nil, 1, 1, Ek),                   // no chunk
	} {
		if _, _, err := b.Receive(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("Receive(%x) = %v", bad, err)
		}
	}
	// A header whose MAC fails: B decodes the 3 data chunks of a header
	// made under another PQR key.
	other := [KeySize]byte{9}
	forger := NewRatchet(&other, true)
	forger.rand = a.rand
	var last error
	for range 3 {
		fm, _, _ := forger.Send()
		_, commit, err := b.Receive(fm)
		if err != nil {
			last = err
			break
		}
		commit()
	}
	if !errors.Is(last, ErrBadMAC) || b.braid.state != noHeaderReceived {
		t.Fatalf("a forged header: %v, state %d", last, b.braid.state)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%x"} {
		// The values too, not only the pointers: a copy of a state
		// (receive works on one) printed must not show its keys.
		for _, v := range []any{a, a.braid, *a.braid, a.braid.auth, *a.chains} {
			if s := fmt.Sprintf(verb, v); !strings.Contains(s, "REDACTED") {
				t.Fatalf("Sprintf(%q) = %.40s", verb, s)
			}
		}
	}
}

// FuzzConversation runs a two-party conversation scripted by the input:
// each byte sends, delivers (from any position), drops or tampers. No
// input may panic, desynchronise the keys of a genuine message, or let an
// uncommitted receive change a state.
func FuzzConversation(f *testing.F) {
	f.Add([]byte{0, 2, 1, 3, 0, 2, 1, 3})
	f.Add(bytes.Repeat([]byte{0, 2, 1, 3}, 200))
	f.Add(bytes.Repeat([]byte{0, 0, 1, 0x82, 2, 3, 3, 1, 0x83, 0x43}, 60))
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) > 1500 {
			return
		}
		a, b := newPair(uint64(len(script)))
		c := &conversation{t: t, r: rand.New(rand.NewPCG(1, 1)), a: a, b: b, stats: map[string]int{}}
		for i, op := range script {
			to := int(op & 1)
			switch op >> 1 & 3 {
			case 0:
				c.send(to)
			case 1:
				c.deliver(to, int(op>>3), op&0x80 != 0 && op&0x40 != 0, i*31)
			case 2:
				c.deliver(to, 0, false, 0)
			case 3:
				if q := c.queues[to]; len(q) > 0 {
					c.queues[to] = q[1:]
				}
			}
		}
	})
}

// pingPongUntil exchanges messages in order until cond holds.
func pingPongUntil(t testing.TB, a, b *Ratchet, cond func() bool) {
	t.Helper()
	x, y := a, b
	for range 1000 {
		if cond() {
			return
		}
		msg, _, _ := x.Send()
		_, commit, err := y.Receive(msg)
		if err != nil {
			t.Fatal(err)
		}
		commit()
		x, y = y, x
	}
	t.Fatal("the state was never reached")
}

// feed sends the chunks of msg, coded as message type typ, to r with
// fresh indexes, and returns the error of the first one refused, checking
// that the refusal left r as it was.
func feed(t *testing.T, r *Ratchet, epoch uint64, typ MessageType, msg []byte, firstIndex uint32) error {
	e := must(NewEncoder(msg))
	for i := range uint32((len(msg) + ChunkSize - 1) / ChunkSize) {
		p := AppendChunk(appendHeader(nil, epoch, firstIndex+i, typ), e.Chunk(uint16(i)))
		before := fingerprint(r)
		_, commit, err := r.Receive(p)
		if err != nil {
			if fingerprint(r) != before {
				t.Fatal("a refused message changed the state")
			}
			return err
		}
		commit()
	}
	return nil
}

// TestForgedPieces: an encapsulation key vector that does not match the
// header, and a ct2 whose MAC fails, are refused when they complete, and
// the refusal changes nothing.
func TestForgedPieces(t *testing.T) {
	a, b := newPair(11)
	pingPongUntil(t, a, b, func() bool { return b.braid.state == ct1Sampled })
	other := must(mlkem768.NewDecapsulationKey(bytes.Repeat([]byte{1}, mlkem768.SeedSize)))
	if err := feed(t, b, 1, Ek, other.Vector(), 5000); !errors.Is(err, ErrVectorMismatch) {
		t.Fatalf("a foreign vector: %v", err)
	}
	a, b = newPair(12)
	pingPongUntil(t, a, b, func() bool { return a.braid.state == ekSentCt1Received })
	garbage := bytes.Repeat([]byte{0x5a}, Ciphertext2MessageSize)
	if err := feed(t, a, 1, Ct2, garbage, 5000); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("a forged ct2: %v", err)
	}
	if a.braid.state != ekSentCt1Received || a.Epoch() != 1 {
		t.Fatal("a forged ct2 moved the braid")
	}
}
