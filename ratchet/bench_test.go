package ratchet

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/ratchetkit/ratchetkit/keys"
)

const benchSize = 1024

func benchPair(b testing.TB, cfg *Config) (alice, bob *Session) {
	sk := make([]byte, 32)
	rand.Read(sk)
	ad := make([]byte, 66)
	rand.Read(ad)
	spk, err := keys.GeneratePrivateKey()
	if err != nil {
		b.Fatal(err)
	}
	alice, err = NewInitiator(sk, ad, spk.PublicKey(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	bob, err = NewResponder(sk, ad, spk, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return alice, bob
}

func benchFloorPair() (alice, bob *floorParty) {
	sk := make([]byte, 32)
	rand.Read(sk)
	ad := make([]byte, 66)
	rand.Read(ad)
	return newFloorPair(sk, ad)
}

// BenchmarkSteady is one 1 KiB message, Encrypt and Decrypt, on a chain
// that is already established (no DH ratchet step).
func BenchmarkSteady(b *testing.B) {
	pt := make([]byte, benchSize)
	b.Run("ratchet", func(b *testing.B) {
		alice, bob := benchPair(b, nil)
		msg := make([]byte, 0, benchSize+minMessageSize)
		out := make([]byte, 0, benchSize)
		b.SetBytes(benchSize)
		b.ReportAllocs()
		for b.Loop() {
			var err error
			msg, err = alice.AppendEncrypt(msg[:0], pt)
			if err != nil {
				b.Fatal(err)
			}
			if out, err = bob.AppendDecrypt(out[:0], msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("floor", func(b *testing.B) {
		alice, bob := benchFloorPair()
		b.SetBytes(benchSize)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := bob.decrypt(alice.encrypt(pt)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPingPong is one 1 KiB message per iteration, the parties taking
// turns, so every Decrypt is a DH ratchet step.
func BenchmarkPingPong(b *testing.B) {
	pt := make([]byte, benchSize)
	b.Run("ratchet", func(b *testing.B) {
		alice, bob := benchPair(b, nil)
		msg := make([]byte, 0, benchSize+minMessageSize)
		out := make([]byte, 0, benchSize)
		b.SetBytes(benchSize)
		b.ReportAllocs()
		from, to := alice, bob
		for b.Loop() {
			var err error
			msg, err = from.AppendEncrypt(msg[:0], pt)
			if err != nil {
				b.Fatal(err)
			}
			if out, err = to.AppendDecrypt(out[:0], msg); err != nil {
				b.Fatal(err)
			}
			from, to = to, from
		}
	})
	b.Run("floor", func(b *testing.B) {
		alice, bob := benchFloorPair()
		b.SetBytes(benchSize)
		b.ReportAllocs()
		from, to := alice, bob
		for b.Loop() {
			if _, err := to.decrypt(from.encrypt(pt)); err != nil {
				b.Fatal(err)
			}
			from, to = to, from
		}
	})
}

var _ = bytes.Equal
