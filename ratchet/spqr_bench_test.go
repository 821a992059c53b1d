package ratchet

import (
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/testutil"
)

// BenchmarkSPQRMessage is one 1 KiB Signal message, AppendEncrypt and
// AppendDecrypt, with full SPQR (the braid and every epoch's chains)
// beside the same message with minimal SPQR (epoch 1's chains and None
// messages), its floor: what full SPQR costs a message. The goal is
// full ≤ 1.3× minimal for the steady message.
//
//	mode=steady:   one direction on an established chain, as
//	               BenchmarkSignalSteady. The sender's braid keeps sending
//	               header chunks (parity chunks once the three data chunks
//	               are out), which the receiver, holding the header, parses
//	               and ignores: the braid cannot advance one way.
//	mode=pingpong: the parties take turns, every Decrypt a DH ratchet
//	               step, and the braid moves through epochs: the cost
//	               includes each message's share of an epoch's ML-KEM key
//	               generation, encapsulation, decapsulation and erasure
//	               coding (about 87 messages an epoch).
//
// impl=minimal and impl=full run one after the other (for benchstat
// -col /impl); ratio interleaves them on the thread's CPU clock
// (testutil.Interleave), whose x-floor holds on a loaded machine:
//
//	go test -c -o r.test ./ratchet && for i in 1 2 3 4 5 6 7 8; do
//		./r.test -test.run '^$' -test.bench 'SPQRMessage' >> spqr.txt; done
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl spqr.txt
func BenchmarkSPQRMessage(b *testing.B) {
	for _, mode := range []string{"steady", "pingpong"} {
		turns := mode == "pingpong"
		for _, impl := range []string{"minimal", "full"} {
			b.Run("mode="+mode+"/impl="+impl, func(b *testing.B) {
				step := spqrMessage(b, impl == "full", turns)
				b.SetBytes(benchSize)
				b.ReportAllocs()
				for b.Loop() {
					step()
				}
			})
		}
		b.Run("mode="+mode+"/ratio", func(b *testing.B) {
			testutil.Interleave(b, spqrMessage(b, false, turns), spqrMessage(b, true, turns))
		})
	}
}

// spqrMessage returns one message of an established pair with full or
// minimal SPQR: from Alice to Bob, or each way in turn.
func spqrMessage(b *testing.B, full, turns bool) func() {
	var alice, bob *Session
	if full {
		alice, bob = newSignalPairFullSPQR(b)
	} else {
		alice, bob = newSignalPairMinimalSPQR(b)
	}
	return messageStep(b, alice, bob, turns)
}
