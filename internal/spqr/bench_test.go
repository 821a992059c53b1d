package spqr

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/testutil"
)

// BenchmarkMessage is the SPQR part of one ratchet message, sent and
// received, beside its floor: the minimal SPQR of the first epoch's chains
// and None messages. The full ratchet runs a ping-pong conversation, so
// the cost includes its share of each epoch's ML-KEM key generation,
// encapsulation, decapsulation and erasure coding.
func BenchmarkMessage(b *testing.B) {
	b.Run("floor=minimal", func(b *testing.B) {
		pqr := [KeySize]byte{1}
		e := Start(&pqr)
		snd, rcv := e.Chain(AToB), e.Chain(AToB)
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			k := snd.Next()
			buf = AppendNone(buf[:0], 1, snd.Index())
			m, err := Parse(buf)
			if err != nil {
				b.Fatal(err)
			}
			if got, err := rcv.KeyAt(m.Index); err != nil || got != k {
				b.Fatal("keys differ")
			}
		}
	})
	b.Run("full", func(b *testing.B) {
		x, y := newPair(1)
		b.ReportAllocs()
		for b.Loop() {
			msg, k, err := x.Send()
			if err != nil {
				b.Fatal(err)
			}
			got, commit, err := y.Receive(msg)
			if err != nil || got != k {
				b.Fatal("keys differ")
			}
			commit()
			x, y = y, x
		}
		b.ReportMetric(float64(x.Epoch()), "epochs")
	})
}

// BenchmarkErasure: a data chunk and a parity chunk of the 1152-byte
// vector, and decoding it from data chunks and from parity chunks only.
func BenchmarkErasure(b *testing.B) {
	msg := make([]byte, VectorMessageSize)
	r := rand.New(rand.NewPCG(1, 1))
	for i := range msg {
		msg[i] = byte(r.Uint32())
	}
	e, _ := NewEncoder(msg)
	need := uint16(VectorMessageSize / ChunkSize)
	b.Run("chunk=data", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			e.Chunk(uint16(i) % need)
		}
	})
	b.Run("chunk=parity", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			e.Chunk(need + uint16(i)%1000)
		}
	})
	for _, from := range []uint16{0, need} {
		name := map[uint16]string{0: "decode=data", need: "decode=parity"}[from]
		chunks := make([]Chunk, need)
		for i := range chunks {
			chunks[i] = e.Chunk(from + uint16(i))
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d, _ := NewDecoder(VectorMessageSize)
				for _, c := range chunks {
					d.Add(c)
				}
				if _, ok := d.Message(); !ok {
					b.Fatal("no message")
				}
			}
		})
	}
}

// BenchmarkMessageRatio interleaves a full SPQR message (ping-pong, epochs
// advancing) with a minimal one on the thread's CPU clock: x-floor is what
// full SPQR costs per message over the minimum that sessions send today.
func BenchmarkMessageRatio(b *testing.B) {
	pqr := [KeySize]byte{1}
	e := Start(&pqr)
	snd, rcv := e.Chain(AToB), e.Chain(AToB)
	var buf []byte
	x, y := newPair(1)
	testutil.Interleave(b, func() {
		snd.Next()
		buf = AppendNone(buf[:0], 1, snd.Index())
		m, _ := Parse(buf)
		rcv.KeyAt(m.Index)
	}, func() {
		msg, _, _ := x.Send()
		_, commit, err := y.Receive(msg)
		if err != nil {
			b.Fatal(err)
		}
		commit()
		x, y = y, x
	})
	b.ReportMetric(float64(x.Epoch()), "epochs")
}

// BenchmarkSessionMemory reports the live heap of one party's SPQR state
// (braid and chains) in a ping-pong conversation, sampled after every
// message over two epochs: peak-B/party and mean-B/party. Each iteration
// measures 20 conversations in lockstep.
func BenchmarkSessionMemory(b *testing.B) {
	const pairs = 20
	var peak, sum, samples float64
	for b.Loop() {
		xs, ys := make([]*Ratchet, pairs), make([]*Ratchet, pairs)
		for i := range xs {
			xs[i], ys[i] = newPair(uint64(i))
		}
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		base := ms.HeapAlloc
		for step := range 180 {
			for i := range xs {
				x, y := xs[i], ys[i]
				if step%2 == 1 {
					x, y = y, x
				}
				msg, _, _ := x.Send()
				_, commit, err := y.Receive(msg)
				if err != nil {
					b.Fatal(err)
				}
				commit()
			}
			runtime.GC()
			runtime.ReadMemStats(&ms)
			per := (float64(ms.HeapAlloc) - float64(base)) / (2 * pairs)
			peak = max(peak, per)
			sum += per
			samples++
		}
		runtime.KeepAlive(xs)
		runtime.KeepAlive(ys)
	}
	b.ReportMetric(peak, "peak-B/party")
	b.ReportMetric(sum/samples, "mean-B/party")
}
