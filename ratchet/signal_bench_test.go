package ratchet

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/testutil"
	"github.com/ratchetkit/ratchetkit/internal/testutil/signalfloor"
)

// The Signal benchmarks of the bare ratchet core, each beside its floor in
// the same run: internal/testutil/signalfloor, libsignal's ratchet steps
// made of standard-library calls only (its package documentation lists
// what the floor does and leaves out; its tests hold sessions with this
// package, so it does the same work). Package session measures the same
// messages, and setup, through the session layer.
//
// The sessions run full SPQR, the floor the minimum (the first epoch's
// chains and None messages): the braid's work (ML-KEM-768 key
// generation, encapsulation and decapsulation once per epoch, the erasure
// code and the authenticator) is all charged to the ratchet, and the
// ratio includes it. Read the ratio with benchstat on interleaved runs:
//
//	go test -c -o r.test ./ratchet && for i in 1 2 3 4 5 6 7 8; do
//		./r.test -test.run '^$' -test.bench 'Signal' >> bench.txt; done
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl bench.txt
//
// BenchmarkSignalRatio times both on the thread's CPU clock, one call of
// each per iteration (testutil.Interleave), for a ratio that holds on a
// shared machine.

// BenchmarkSignalSteady is one 1 KiB message, Encrypt and Decrypt, on an
// established chain.
func BenchmarkSignalSteady(b *testing.B) { benchSignal(b, false) }

// BenchmarkSignalPingPong is one 1 KiB message per iteration, the parties
// taking turns, so that every Decrypt is a DH ratchet step.
func BenchmarkSignalPingPong(b *testing.B) { benchSignal(b, true) }

func benchSignal(b *testing.B, turns bool) {
	b.Run("impl=ratchet", func(b *testing.B) {
		step, alice := signalStep(b, turns)
		b.SetBytes(benchSize)
		b.ReportAllocs()
		for b.Loop() {
			step()
		}
		// The SPQR epochs the braid completed per 1 000 messages: none
		// on a one-way chain, about one per 80 messages in ping-pong.
		b.ReportMetric(float64(pqEpoch(alice)-1)*1000/float64(b.N), "epochs/1k-msgs")
	})
	b.Run("impl=floor", func(b *testing.B) {
		step := signalFloorStep(b, turns)
		b.SetBytes(benchSize)
		b.ReportAllocs()
		for b.Loop() {
			step()
		}
	})
}

// BenchmarkSignalRatio interleaves the floor and the ratchet, one message
// of each per iteration, and reports x-floor.
func BenchmarkSignalRatio(b *testing.B) {
	for _, mode := range []string{"steady", "ping-pong"} {
		b.Run("msg="+mode, func(b *testing.B) {
			turns := mode == "ping-pong"
			step, _ := signalStep(b, turns)
			testutil.Interleave(b, signalFloorStep(b, turns), step)
		})
	}
}

// signalStep returns one 1 KiB message of an established ratchet pair:
// Encrypt by one party, Decrypt by the other; with turns the parties
// swap after each message. It also returns Alice's session.
func signalStep(b *testing.B, turns bool) (func(), *Session) {
	alice, bob := signalEstablished(b)
	if turns {
		return messageStep(b, bob, alice, turns), alice
	}
	return messageStep(b, alice, bob, turns), alice
}

// messageStep returns one 1 KiB message of an established pair: from
// encrypts and to decrypts; with turns the two swap after each message.
func messageStep(b *testing.B, from, to *Session, turns bool) func() {
	pt := make([]byte, benchSize)
	msg := make([]byte, 0, benchSize+256)
	out := make([]byte, 0, benchSize)
	return func() {
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
}

// signalFloorStep is signalStep for the floor, from signalEstablished's
// point.
func signalFloorStep(b *testing.B, turns bool) func() {
	pt := make([]byte, benchSize)
	alice, bob := signalFloorPair(b)
	for _, x := range []struct {
		from, to *signalfloor.Party
		pt       string
	}{{alice, bob, "hello"}, {bob, alice, "hi"}, {alice, bob, "on the second chain"}} {
		got, err := x.to.Decrypt(x.from.Encrypt([]byte(x.pt)))
		if err != nil || !bytes.Equal(got, []byte(x.pt)) {
			b.Fatalf("floor: %v", err)
		}
	}
	from, to := alice, bob
	if turns {
		from, to = bob, alice
	}
	return func() {
		if _, err := to.Decrypt(from.Encrypt(pt)); err != nil {
			b.Fatal(err)
		}
		if turns {
			from, to = to, from
		}
	}
}

// signalFloorPair starts the floor from random PQXDH keys.
func signalFloorPair(b *testing.B) (alice, bob *signalfloor.Party) {
	var k signalfloor.Keys
	rand.Read(k[:])
	aid, _ := ecdh.X25519().GenerateKey(rand.Reader)
	bid, _ := ecdh.X25519().GenerateKey(rand.Reader)
	spk, _ := ecdh.X25519().GenerateKey(rand.Reader)
	ae, be := append([]byte{5}, aid.PublicKey().Bytes()...), append([]byte{5}, bid.PublicKey().Bytes()...)
	alice, err := signalfloor.NewInitiator(&k, ae, be, spk.PublicKey())
	if err != nil {
		b.Fatal(err)
	}
	return alice, signalfloor.NewResponder(&k, be, ae, spk)
}
