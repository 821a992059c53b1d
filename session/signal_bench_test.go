package session_test

import (
	"testing"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/pqxdh"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// The Signal benchmarks put the session layer on the memory store beside
// its floor, the bare ratchet core's Signal sessions from PQXDH (package
// ratchet measures that core beside a standard-library floor of
// libsignal's ratchet): what the session layer adds is the record, the
// identity check and the store write.

// signalRatchetParties runs PQXDH and starts both ratchet sessions.
func signalRatchetParties(b *testing.B) (alice, bob *ratchet.Session) {
	aik, _ := keys.GenerateIdentityKeyPair()
	bik, _ := keys.GenerateIdentityKeyPair()
	spk, err := keys.GenerateSignedPreKey(bik, 1)
	if err != nil {
		b.Fatal(err)
	}
	kpk, err := kyber.GeneratePreKey(bik, 2, true)
	if err != nil {
		b.Fatal(err)
	}
	bundle := &pqxdh.Bundle{IdentityKey: bik.PublicKey(), SignedPreKeyID: 1, SignedPreKey: spk.PublicKey(),
		SignedPreKeySignature: spk.Signature(), KyberPreKeyID: 2, KyberPreKey: kpk.PublicKey(), KyberPreKeySignature: kpk.Signature()}
	in, err := pqxdh.Initiate(aik, bundle)
	if err != nil {
		b.Fatal(err)
	}
	k, err := pqxdh.Respond(bik, spk, nil, kpk, &in.Header)
	if err != nil {
		b.Fatal(err)
	}
	if alice, err = ratchet.NewSignalInitiator(&in.Keys, aik.PublicKey(), bik.PublicKey(), spk.PublicKey(), nil); err != nil {
		b.Fatal(err)
	}
	if bob, err = ratchet.NewSignalResponder(k, bik.PublicKey(), aik.PublicKey(), spk.PrivateKey(), nil); err != nil {
		b.Fatal(err)
	}
	return alice, bob
}

// signalSessionParties makes two Signal Managers on memory stores with a
// session that has been answered.
func signalSessionParties(b testing.TB) (alice, bob *signalDevice) {
	alice = newSignalDevice(b, memory.New(), "alice", 1, nil)
	bob = newSignalDevice(b, memory.New(), "bob", 2, nil)
	alice.start(bob, -1, -1)
	bob.decrypt(alice.device, alice.encrypt(bob.device, "hi"), "hi")
	alice.decrypt(bob.device, bob.encrypt(alice.device, "ok"), "ok")
	return alice, bob
}

// BenchmarkSignalSteady: one 1 KiB message on an established chain (no
// DH step), encrypted by Alice and decrypted by Bob.
func BenchmarkSignalSteady(b *testing.B) {
	pt := make([]byte, benchSize)
	b.Run("impl=ratchet", func(b *testing.B) {
		alice, bob := signalRatchetParties(b)
		m, _ := alice.Encrypt(pt)
		if _, err := bob.Decrypt(m); err != nil {
			b.Fatal(err)
		}
		if _, err := alice.Decrypt(must(bob.Encrypt(pt))); err != nil {
			b.Fatal(err)
		}
		msg := make([]byte, 0, benchSize+200)
		out := make([]byte, 0, benchSize+16)
		b.SetBytes(benchSize)
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if msg, err = alice.AppendEncrypt(msg[:0], pt); err != nil {
				b.Fatal(err)
			}
			if out, err = bob.AppendDecrypt(out[:0], msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=session-memory", func(b *testing.B) {
		alice, bob := signalSessionParties(b)
		ctx := b.Context()
		msg := make([]byte, 0, benchSize+200)
		out := make([]byte, 0, benchSize+16)
		b.SetBytes(benchSize)
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if msg, err = alice.m.AppendEncrypt(ctx, msg[:0], bob.addr, pt); err != nil {
				b.Fatal(err)
			}
			if out, err = bob.m.AppendDecrypt(ctx, out[:0], alice.addr, msg); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSignalPingPong: a 1 KiB message each way per iteration, each a
// DH ratchet step.
func BenchmarkSignalPingPong(b *testing.B) {
	pt := make([]byte, benchSize)
	b.Run("impl=ratchet", func(b *testing.B) {
		alice, bob := signalRatchetParties(b)
		b.SetBytes(2 * benchSize)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := bob.Decrypt(must(alice.Encrypt(pt))); err != nil {
				b.Fatal(err)
			}
			if _, err := alice.Decrypt(must(bob.Encrypt(pt))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=session-memory", func(b *testing.B) {
		alice, bob := signalSessionParties(b)
		ctx := b.Context()
		b.SetBytes(2 * benchSize)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := bob.m.Decrypt(ctx, alice.addr, must(alice.m.Encrypt(ctx, bob.addr, pt))); err != nil {
				b.Fatal(err)
			}
			if _, err := alice.m.Decrypt(ctx, bob.addr, must(bob.m.Encrypt(ctx, alice.addr, pt))); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
