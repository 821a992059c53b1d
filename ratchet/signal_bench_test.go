package ratchet

import (
	"bytes"
	"testing"
)

// The Signal benchmarks, each beside its floor (signalFloor) in the same
// run; read the ratio with benchstat on interleaved runs:
//
//	go test -c -o r.test ./ratchet && for i in 1 2 3 4 5 6 7 8; do
//		./r.test -test.run '^$' -test.bench 'Signal' >> bench.txt; done
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl bench.txt

// BenchmarkSignalSteady is one 1 KiB message, Encrypt and Decrypt, on an
// established chain.
func BenchmarkSignalSteady(b *testing.B) { benchSignal(b, false) }

// BenchmarkSignalPingPong is one 1 KiB message per iteration, the parties
// taking turns, so that every Decrypt is a DH ratchet step.
func BenchmarkSignalPingPong(b *testing.B) { benchSignal(b, true) }

func benchSignal(b *testing.B, turns bool) {
	pt := make([]byte, benchSize)
	b.Run("impl=ratchet", func(b *testing.B) {
		alice, bob := signalEstablished(b)
		msg := make([]byte, 0, benchSize+128)
		out := make([]byte, 0, benchSize)
		b.SetBytes(benchSize)
		b.ReportAllocs()
		from, to := alice, bob
		if turns {
			from, to = bob, alice
		}
		for b.Loop() {
			var err error
			if msg, err = from.AppendEncrypt(msg[:0], pt); err != nil {
				b.Fatal(err)
			}
			if out, err = to.AppendDecrypt(out[:0], msg); err != nil {
				b.Fatal(err)
			}
			if turns {
				from, to = to, from
			}
		}
	})
	b.Run("impl=floor", func(b *testing.B) {
		alice, bob := newSignalFloorPair()
		signalFloorEstablish(b, alice, bob)
		b.SetBytes(benchSize)
		b.ReportAllocs()
		from, to := alice, bob
		if turns {
			from, to = bob, alice
		}
		for b.Loop() {
			if _, err := to.decrypt(from.encrypt(pt)); err != nil {
				b.Fatal(err)
			}
			if turns {
				from, to = to, from
			}
		}
	})
}

// signalFloorEstablish brings the floor pair to signalEstablished's point
// and checks that it decrypts what it encrypts.
func signalFloorEstablish(b *testing.B, alice, bob *signalFloor) {
	for _, x := range []struct {
		from, to *signalFloor
		pt       string
	}{{alice, bob, "hello"}, {bob, alice, "hi"}, {alice, bob, "on the second chain"}} {
		got, err := x.to.decrypt(x.from.encrypt([]byte(x.pt)))
		if err != nil || !bytes.Equal(got, []byte(x.pt)) {
			b.Fatalf("floor: %v", err)
		}
	}
}
