package xeddsa

import (
	"crypto/ed25519"
	"testing"
)

// Floors beside each benchmark: crypto/ed25519 does the same group
// operations (one fixed-base multiplication to sign, one double-scalar
// multiplication to verify), so the ratios read directly off one run.

var benchMsg = make([]byte, 128)

func benchKey(b *testing.B) (*PrivateKey, []byte, [64]byte) {
	var k [32]byte
	k[0] = 0x42
	var z [64]byte
	priv := NewPrivateKey(&k)
	return priv, ecdhPublic(b, k[:]), priv.Sign(benchMsg, &z)
}

func BenchmarkSign(b *testing.B) {
	b.Run("floor=ed25519.Sign", func(b *testing.B) {
		priv := ed25519.NewKeyFromSeed(make([]byte, 32))
		b.ReportAllocs()
		for b.Loop() {
			ed25519.Sign(priv, benchMsg)
		}
	})
	b.Run("xeddsa", func(b *testing.B) {
		priv, _, _ := benchKey(b)
		var z [64]byte
		b.ReportAllocs()
		for b.Loop() {
			priv.Sign(benchMsg, &z)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	b.Run("floor=ed25519.Verify", func(b *testing.B) {
		priv := ed25519.NewKeyFromSeed(make([]byte, 32))
		pub, sig := priv.Public().(ed25519.PublicKey), ed25519.Sign(priv, benchMsg)
		b.ReportAllocs()
		for b.Loop() {
			ed25519.Verify(pub, benchMsg, sig)
		}
	})
	_, u, sig := benchKey(b)
	b.Run("xeddsa/PublicKey", func(b *testing.B) {
		pk, err := NewPublicKey(u)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			pk.Verify(benchMsg, sig[:])
		}
	})
	b.Run("xeddsa/Verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Verify(u, benchMsg, sig[:])
		}
	})
}

// BenchmarkNewPublicKey is the Montgomery-to-Edwards conversion alone, the
// cost that caching the Edwards key saves on every verification.
func BenchmarkNewPublicKey(b *testing.B) {
	_, u, _ := benchKey(b)
	b.ReportAllocs()
	for b.Loop() {
		NewPublicKey(u)
	}
}
