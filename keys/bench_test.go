package keys

import (
	"crypto/ed25519"
	"testing"
)

// The floors: crypto/ed25519 signs and verifies with the same group
// operations XEdDSA needs (one fixed-base multiplication to sign, one double
// scalar multiplication to verify), so XEdDSA should cost about the same.

var benchMsg = make([]byte, 128)

func BenchmarkSign(b *testing.B) {
	b.Run("floor=ed25519.Sign", func(b *testing.B) {
		_, priv, _ := ed25519.GenerateKey(nil)
		b.ReportAllocs()
		for b.Loop() {
			ed25519.Sign(priv, benchMsg)
		}
	})
	b.Run("xeddsa", func(b *testing.B) {
		ik, err := GenerateIdentityKeyPair()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			ik.Sign(benchMsg)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	b.Run("floor=ed25519.Verify", func(b *testing.B) {
		pub, priv, _ := ed25519.GenerateKey(nil)
		sig := ed25519.Sign(priv, benchMsg)
		b.ReportAllocs()
		for b.Loop() {
			if !ed25519.Verify(pub, benchMsg, sig) {
				b.Fatal("ed25519 signature rejected")
			}
		}
	})
	ik, err := GenerateIdentityKeyPair()
	if err != nil {
		b.Fatal(err)
	}
	sig := ik.Sign(benchMsg)
	b.Run("xeddsa/cached", func(b *testing.B) {
		pub := ik.PublicKey()
		b.ReportAllocs()
		for b.Loop() {
			if !pub.Verify(benchMsg, sig) {
				b.Fatal("xeddsa signature rejected")
			}
		}
	})
	b.Run("xeddsa/uncached", func(b *testing.B) {
		raw := ik.PublicKey().Bytes()
		b.ReportAllocs()
		for b.Loop() {
			pub, err := NewPublicKey(raw)
			if err != nil || !pub.Verify(benchMsg, sig) {
				b.Fatal("xeddsa signature rejected")
			}
		}
	})
}
