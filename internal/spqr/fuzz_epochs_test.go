package spqr

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// healMessages bounds the in-order ping-pong that must take both parties
// through two more epochs after any script. An epoch takes 87 messages of
// in-order ping-pong (measured from the start of a session); from any
// point two more take at most the rest of the current one and two whole
// ones, about 260.
const healMessages = 400

// FuzzEpochs runs a two-party conversation that the input scripts, one
// byte an operation: which side sends, in-order or out-of-order delivery
// (from any queue position), drops, corrupted copies (one bit flipped
// anywhere; the genuine copy still arrives later), save-and-load of both
// parties, and send-and-deliver at once. Throughout, every genuine
// message gives the receiver the sender's key (conversation.deliver), a
// corrupted one is refused or at least changes nothing uncommitted, and
// the epochs never go back nor drift more than one apart. After the
// script, in-flight messages are lost and the parties exchange in order:
// both must then advance two epochs within healMessages messages, so no
// script can wedge the braid.
func FuzzEpochs(f *testing.F) {
	f.Fuzz(runEpochScript)
}

// runEpochScript is FuzzEpochs on one script.
func runEpochScript(t *testing.T, script []byte) {
	if len(script) > 400 {
		return
	}
	a, b := newPair(33)
	c := &conversation{t: t, r: rand.New(rand.NewPCG(1, 1)), a: a, b: b, stats: map[string]int{}}
	ea, eb := a.Epoch(), b.Epoch()
	check := func() {
		na, nb := c.a.Epoch(), c.b.Epoch()
		if na < ea || nb < eb || na > nb+1 || nb > na+1 {
			t.Fatalf("epochs went from %d/%d to %d/%d", ea, eb, na, nb)
		}
		ea, eb = na, nb
	}
	for i, op := range script {
		to, arg := int(op&1), int(op>>4)
		switch op >> 1 & 7 {
		case 0, 1:
			c.send(to)
		case 2:
			c.deliver(to, 0, false, 0)
		case 3:
			c.deliver(to, arg, false, 0)
		case 4:
			if q := c.queues[to]; len(q) > 0 {
				p := arg % len(q)
				c.queues[to] = append(q[:p:p], q[p+1:]...)
			}
		case 5:
			c.deliver(to, arg, true, i*37+arg)
		case 6: // save and load both, two key expansions each: one time in 16
			if arg == 0 {
				c.a, c.b = reload(t, c.a), reload(t, c.b)
			} else {
				c.deliver(to, len(c.queues[to])-1, false, 0)
			}
		case 7:
			c.send(to)
			c.deliver(to, len(c.queues[to])-1, false, 0)
		}
		check()
	}
	c.queues = [2][]sent{}
	startA, startB := ea, eb
	for n := 0; c.a.Epoch() < startA+2 || c.b.Epoch() < startB+2; n++ {
		if n == healMessages {
			t.Fatalf("after the script, %d in-order messages took epochs only from %d/%d to %d/%d",
				n, startA, startB, c.a.Epoch(), c.b.Epoch())
		}
		c.send(n % 2)
		c.deliver(n%2, 0, false, 0)
		check()
	}
}

type epochSeed struct {
	name   string
	script []byte
}

// Operation bytes for the seeds: op(kind, to, arg).
func op(kind, to, arg int) byte { return byte(arg<<4 | kind<<1 | to) }

// fuzzEpochSeeds: ping-pong through epochs; one side only; bursts
// delivered out of order with losses; corruption of every kind of
// message; save-and-load mid-epoch.
func fuzzEpochSeeds() []epochSeed {
	rep := func(n int, ops ...byte) []byte { return bytes.Repeat(ops, n) }
	return []epochSeed{
		{"ping-pong", rep(120, op(7, 0, 0), op(7, 1, 0))},
		{"one-sided", rep(200, op(7, 1, 0))},
		{"bursts-reordered-lossy", rep(30,
			op(0, 0, 0), op(0, 0, 0), op(0, 0, 0), op(0, 1, 0), op(0, 1, 0),
			op(3, 0, 2), op(4, 0, 1), op(3, 0, 5), op(2, 1, 0), op(3, 1, 3), op(2, 0, 0))},
		{"corrupt", rep(60, op(0, 0, 0), op(5, 0, 0), op(2, 0, 0), op(0, 1, 0), op(5, 1, 9), op(2, 1, 0))},
		{"reload", rep(50, op(7, 0, 0), op(7, 1, 0), op(6, 0, 0), op(0, 0, 0), op(0, 1, 0), op(3, 1, 1), op(3, 0, 7))},
	}
}
