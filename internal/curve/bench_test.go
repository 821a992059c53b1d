package curve

import (
	"crypto/ecdh"
	"crypto/rand"
	"testing"
)

// Each benchmark runs its floor, the same job done by crypto/ecdh, first as
// impl=ecdh, so that one run reads as ratios:
//
//	go test -run '^$' -bench . -count 6 ./internal/curve > curve.txt
//	benchstat -col /impl curve.txt

// BenchmarkKeyGen measures what keys.GeneratePrivateKey does: 32 random
// bytes, then the public key through the Edwards fixed-base table.
func BenchmarkKeyGen(b *testing.B) {
	b.Run("impl=ecdh", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ecdh.X25519().GenerateKey(rand.Reader); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=curve", func(b *testing.B) {
		var priv, pub [Size]byte
		b.ReportAllocs()
		for b.Loop() {
			rand.Read(priv[:])
			PublicKey(&pub, &priv)
		}
	})
}

// BenchmarkAgreement measures one X25519 agreement from a stored raw private
// key: DH runs one ladder, while crypto/ecdh's NewPrivateKey computes the
// public key first.
func BenchmarkAgreement(b *testing.B) {
	var priv, peerPriv, peer [Size]byte
	rand.Read(priv[:])
	rand.Read(peerPriv[:])
	PublicKey(&peer, &peerPriv)
	b.Run("impl=ecdh", func(b *testing.B) {
		pub, err := ecdh.X25519().NewPublicKey(peer[:])
		if err != nil {
			b.Fatal(err)
		}
		raw := priv[:]
		b.ReportAllocs()
		for b.Loop() {
			k, err := ecdh.X25519().NewPrivateKey(raw)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := k.ECDH(pub); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=curve", func(b *testing.B) {
		var out [Size]byte
		b.ReportAllocs()
		for b.Loop() {
			if err := DH(&out, &priv, &peer); err != nil {
				b.Fatal(err)
			}
		}
	})
}
