package spqr

import (
	"crypto/mlkem"
	crand "crypto/rand"
	mrand "math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/internal/testutil"
)

// The cost of an SPQR epoch beside its floor, crypto/mlkem doing the same
// ML-KEM-768 operations, and the memory a session's SPQR state takes.
// Each comparison comes three ways in the same run: impl=crypto-mlkem and
// impl=spqr on their own (for benchstat), and ratio, the two interleaved
// on the thread's CPU clock (x-floor), which holds on a loaded machine.

var stateNames = [...]string{
	keysUnsampled: "keysUnsampled", keysSampled: "keysSampled", headerSent: "headerSent",
	ct1Received: "ct1Received", ekSentCt1Received: "ekSentCt1Received",
	noHeaderReceived: "noHeaderReceived", headerReceived: "headerReceived",
	ct1Sampled: "ct1Sampled", ekReceivedCt1Sampled: "ekReceivedCt1Sampled",
	ct1Acknowledged: "ct1Acknowledged", ct2Sampled: "ct2Sampled",
}

// mlkemEpoch is the floor of an epoch: one key pair, one encapsulation to
// it and its decapsulation.
func mlkemEpoch() {
	dk, _ := mlkem.GenerateKey768()
	ek, _ := mlkem.NewEncapsulationKey768(dk.EncapsulationKey().Bytes())
	_, ct := ek.Encapsulate()
	dk.Decapsulate(ct)
}

// epochStep advances a ping-pong conversation between x and y until both
// have moved one epoch on; it returns the messages it took.
func epochStep(b *testing.B, x, y *Ratchet) int {
	ex, ey := x.Epoch(), y.Epoch()
	n := 0
	for ; x.Epoch() == ex || y.Epoch() == ey; n++ {
		epochStep1(b, x, y)
		x, y = y, x
	}
	return n
}

// BenchmarkEpoch is one whole epoch of a ping-pong conversation, both
// parties' sends and receives, beside one crypto/mlkem key generation,
// encapsulation and decapsulation: what SPQR adds over the KEM is the
// erasure coding of about 87 chunks, the MACs, the incremental
// encapsulation's checks and the chains' per-message keys.
func BenchmarkEpoch(b *testing.B) {
	b.Run("impl=crypto-mlkem", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			mlkemEpoch()
		}
	})
	b.Run("impl=spqr", func(b *testing.B) {
		x, y := newPair(41)
		x.rand, y.rand = crand.Reader, crand.Reader
		b.ReportAllocs()
		msgs := 0
		for b.Loop() {
			msgs += epochStep(b, x, y)
		}
		b.ReportMetric(float64(msgs)/float64(b.N), "msgs/epoch")
	})
	b.Run("ratio", func(b *testing.B) {
		x, y := newPair(41)
		x.rand, y.rand = crand.Reader, crand.Reader
		testutil.Interleave(b, mlkemEpoch, func() { epochStep(b, x, y) })
	})
}

// epochStepState is a message of an epoch that does KEM work: the
// serialized state of the party that handles it, just before, and the
// message it receives (nil for a send).
type epochStepState struct {
	state []byte
	msg   []byte
}

// captureSteps runs a ping-pong conversation through two epochs and keeps
// the first instance of each KEM step:
//
//	keygen:        the key side's send in keysUnsampled (key pair, header MAC)
//	encapsulate1:  the ciphertext side's send in headerReceived (ct1 from the header)
//	encapsulate2:  the ciphertext side's receive that completes the vector
//	               and the ack (ct2, its MAC) — it ends in ct2Sampled
//	decapsulate:   the key side's receive that completes ct2 (decapsulation,
//	               epoch secret, MAC check)
func captureSteps(b *testing.B) map[string]epochStepState {
	x, y := newPair(42)
	out := map[string]epochStepState{}
	save := func(r *Ratchet) []byte {
		s, err := r.AppendBinary(nil)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	for range 400 {
		sx, sy := save(x), save(y)
		before := y.braid.state
		switch x.braid.state {
		case keysUnsampled:
			out["keygen"] = epochStepState{sx, nil}
		case headerReceived:
			out["encapsulate1"] = epochStepState{sx, nil}
		}
		msg, _, err := x.Send()
		if err != nil {
			b.Fatal(err)
		}
		_, commit, err := y.Receive(msg)
		if err != nil {
			b.Fatal(err)
		}
		commit()
		switch after := y.braid.state; {
		case before != ct2Sampled && after == ct2Sampled:
			out["encapsulate2"] = epochStepState{sy, msg}
		case before == ekSentCt1Received && after == noHeaderReceived:
			out["decapsulate"] = epochStepState{sy, msg}
		}
		x, y = y, x
	}
	if len(out) != 4 {
		b.Fatalf("captured only %d steps", len(out))
	}
	return out
}

// BenchmarkEpochSteps times each KEM step of an epoch as SPQR does it
// (state loaded untimed before each, so every iteration repeats the same
// step) beside the crypto/mlkem operation it stands for: keygen beside
// GenerateKey768, encapsulate1 and encapsulate2 (the two halves of the
// incremental encapsulation, header then vector) each beside a whole
// Encapsulate, decapsulate beside Decapsulate.
func BenchmarkEpochSteps(b *testing.B) {
	steps := captureSteps(b)
	dk, _ := mlkem.GenerateKey768()
	ekBytes := dk.EncapsulationKey().Bytes()
	_, ct := dk.EncapsulationKey().Encapsulate()
	floors := map[string]func(){
		"keygen": func() {
			k, _ := mlkem.GenerateKey768()
			_ = k.EncapsulationKey().Bytes()
		},
		"encapsulate1": func() {
			ek, _ := mlkem.NewEncapsulationKey768(ekBytes)
			ek.Encapsulate()
		},
		"decapsulate": func() { dk.Decapsulate(ct) },
	}
	floors["encapsulate2"] = floors["encapsulate1"]
	for _, name := range []string{"keygen", "encapsulate1", "encapsulate2", "decapsulate"} {
		st := steps[name]
		prep := func() func() {
			r, err := ParseRatchet(st.state)
			if err != nil {
				b.Fatal(err)
			}
			if st.msg == nil {
				return func() {
					if _, _, err := r.Send(); err != nil {
						b.Fatal(err)
					}
				}
			}
			return func() {
				_, commit, err := r.Receive(st.msg)
				if err != nil {
					b.Fatal(err)
				}
				commit()
			}
		}
		b.Run("step="+name+"/impl=crypto-mlkem", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				floors[name]()
			}
		})
		b.Run("step="+name+"/impl=spqr", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				op := prep()
				b.StartTimer()
				op()
			}
		})
		b.Run("step="+name+"/ratio", func(b *testing.B) {
			interleavePrepared(b, floors[name], prep)
		})
	}
}

// interleavePrepared is testutil.Interleave for a step that needs a fresh
// state each time: prep, untimed, returns the step to time.
func interleavePrepared(b *testing.B, floor func(), prep func() func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var tf, to time.Duration
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		op := prep()
		b.StartTimer()
		t0 := testutil.ThreadCPU()
		floor()
		t1 := testutil.ThreadCPU()
		op()
		t2 := testutil.ThreadCPU()
		tf += t1 - t0
		to += t2 - t1
	}
	b.ReportMetric(float64(to)/float64(tf), "x-floor")
	b.ReportMetric(float64(tf.Nanoseconds())/float64(b.N), "floor-cpu-ns/op")
	b.ReportMetric(float64(to.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkEpochMemory is the memory of one party's SPQR state in each
// state of the braid, the largest instance of it seen in a seeded
// conversation of 6 000 steps (both roles, many epochs, reordering by up
// to 5 and loss, so chains with out-of-order history): state-B is its serialized size (what the
// session record holds), heap-B the live heap of a Ratchet loaded from
// it (measured over 64 copies; a loaded state lacks only the encoder's
// parity weights, which a live one computes at its first parity chunk).
// Each iteration loads and measures the 64 copies.
func BenchmarkEpochMemory(b *testing.B) {
	largest := map[braidState][]byte{}
	c := &conversation{t: b, r: mrand.New(mrand.NewPCG(43, 43)), stats: map[string]int{}}
	c.a, c.b = newPair(43)
	for range 6000 {
		c.lossyStep(5)
		for _, r := range []*Ratchet{c.a, c.b} {
			s, err := r.AppendBinary(nil)
			if err != nil {
				b.Fatal(err)
			}
			if len(s) > len(largest[r.braid.state]) {
				largest[r.braid.state] = s
			}
		}
	}
	for st := range braidState(len(stateNames)) {
		s := largest[st]
		if s == nil {
			b.Fatalf("state %s never reached", stateNames[st])
		}
		b.Run("state="+stateNames[st], func(b *testing.B) {
			const copies = 64
			rs := make([]*Ratchet, copies)
			var heap int64
			b.ReportAllocs()
			for b.Loop() {
				var m0, m1 runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&m0)
				for i := range rs {
					r, err := ParseRatchet(s)
					if err != nil {
						b.Fatal(err)
					}
					rs[i] = r
				}
				runtime.GC()
				runtime.ReadMemStats(&m1)
				heap += int64(m1.HeapAlloc) - int64(m0.HeapAlloc)
				runtime.KeepAlive(rs)
				clear(rs)
			}
			b.ReportMetric(float64(len(s)), "state-B")
			b.ReportMetric(float64(heap)/float64(copies*b.N), "heap-B")
		})
	}
}

// epochStep1 is one message from x to y.
func epochStep1(b *testing.B, x, y *Ratchet) {
	msg, _, err := x.Send()
	if err != nil {
		b.Fatal(err)
	}
	_, commit, err := y.Receive(msg)
	if err != nil {
		b.Fatal(err)
	}
	commit()
}
