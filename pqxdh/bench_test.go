package pqxdh_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/mlkem"
	"crypto/sha256"
	"crypto/sha3"
	"testing"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/pqxdh"
)

// The benchmarks come in pairs, ratchetkit's operation and its floor: the
// same protocol steps with nothing but standard-library calls, read as a
// ratio from one run (interleave the repetitions on a shared machine):
//
//	go test -c -o pqxdh.test ./pqxdh && for i in 1 2 3 4 5 6; do
//		./pqxdh.test -test.run '^$' -test.bench . >> bench.txt; done
//	go run golang.org/x/perf/cmd/benchstat@latest bench.txt
//
// The standard library has no XEdDSA: the floors verify Ed25519 signatures
// over the same messages instead (the same equation on the same curve,
// without the Montgomery-to-Edwards conversion). Nor can it express the
// responder's base-key torsion check (one scalar multiplication), so the
// responder's floor leaves it out and the ratio includes it.

type benchKeys struct {
	alice, bob *keys.IdentityKeyPair
	spk        *keys.SignedPreKey
	opk        *keys.OneTimePreKey
	kpk        *kyber.PreKey
	enc        struct{ ik, spk, opk, kpk, spkSig, kpkSig []byte }
}

func newBenchKeys(b *testing.B) *benchKeys {
	k := new(benchKeys)
	var err error
	if k.alice, err = keys.NewIdentityKeyPair(bytes.Repeat([]byte{1}, 32)); err != nil {
		b.Fatal(err)
	}
	if k.bob, err = keys.NewIdentityKeyPair(bytes.Repeat([]byte{2}, 32)); err != nil {
		b.Fatal(err)
	}
	if k.spk, err = keys.GenerateSignedPreKey(k.bob, 7); err != nil {
		b.Fatal(err)
	}
	ops, err := keys.GenerateOneTimePreKeys(9, 1)
	if err != nil {
		b.Fatal(err)
	}
	k.opk = ops[0]
	if k.kpk, err = kyber.GeneratePreKey(k.bob, 11, true); err != nil {
		b.Fatal(err)
	}
	k.enc.ik, k.enc.spk, k.enc.opk = k.bob.PublicKey().Encode(), k.spk.PublicKey().Encode(), k.opk.PublicKey().Encode()
	k.enc.kpk, k.enc.spkSig, k.enc.kpkSig = k.kpk.PublicKey().Encode(), k.spk.Signature(), k.kpk.Signature()
	return k
}

// bundle decodes the fetched bundle, as a client does per new session.
func (k *benchKeys) bundle(b *testing.B) *pqxdh.Bundle {
	ik, err1 := keys.DecodePublicKey(k.enc.ik)
	spk, err2 := keys.DecodePublicKey(k.enc.spk)
	opk, err3 := keys.DecodePublicKey(k.enc.opk)
	kpk, err4 := kyber.ParsePublicKey(k.enc.kpk)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		b.Fatal("decode")
	}
	return &pqxdh.Bundle{IdentityKey: ik, SignedPreKeyID: 7, SignedPreKey: spk, SignedPreKeySignature: k.enc.spkSig,
		OneTimePreKeyID: 9, OneTimePreKey: opk, KyberPreKeyID: 11, KyberPreKey: kpk, KyberPreKeySignature: k.enc.kpkSig}
}

// BenchmarkInitiate decodes a bundle with a one-time prekey, verifies both
// signatures and runs Initiate.
func BenchmarkInitiate(b *testing.B) {
	k := newBenchKeys(b)
	b.ReportAllocs()
	for b.Loop() {
		in, err := pqxdh.Initiate(k.alice, k.bundle(b))
		if err != nil {
			b.Fatal(err)
		}
		in.Clear()
	}
}

// BenchmarkInitiateFloor: two Ed25519 verifications, four ecdh public keys
// decoded, a fresh base key, four ECDH calls, ML-KEM-1024 encapsulation
// with the Kyber output step, one hkdf.Key of 96 bytes. Alice's identity
// key is loaded once, as for Initiate.
func BenchmarkInitiateFloor(b *testing.B) {
	k := newBenchKeys(b)
	edPub, edPriv, _ := ed25519.GenerateKey(nil)
	spkSig, kpkSig := ed25519.Sign(edPriv, k.enc.spk), ed25519.Sign(edPriv, k.enc.kpk)
	curve := ecdh.X25519()
	ikA, err := curve.NewPrivateKey(k.alice.PrivateKey().Bytes())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(edPub, k.enc.spk, spkSig) || !ed25519.Verify(edPub, k.enc.kpk, kpkSig) {
			b.Fatal("verify")
		}
		ikB, _ := curve.NewPublicKey(k.enc.ik[1:])
		spkB, _ := curve.NewPublicKey(k.enc.spk[1:])
		opkB, _ := curve.NewPublicKey(k.enc.opk[1:])
		ekA, _ := curve.GenerateKey(nil)
		ikm := bytes.Repeat([]byte{0xFF}, 32)
		for _, p := range []struct {
			k *ecdh.PrivateKey
			p *ecdh.PublicKey
		}{{ikA, spkB}, {ekA, ikB}, {ekA, spkB}, {ekA, opkB}} {
			s, err := p.k.ECDH(p.p)
			if err != nil {
				b.Fatal(err)
			}
			ikm = append(ikm, s...)
		}
		ek, err := mlkem.NewEncapsulationKey1024(k.enc.kpk[1:])
		if err != nil {
			b.Fatal(err)
		}
		ss, ct := ek.Encapsulate()
		h := sha3.Sum256(ct)
		ikm = append(ikm, sha3.SumSHAKE256(append(ss, h[:]...), 32)...)
		if _, err := hkdf.Key(sha256.New, ikm, nil, pqxdh.Info, 96); err != nil {
			b.Fatal(err)
		}
		_ = ekA.PublicKey().Bytes()
	}
}

// BenchmarkRespond loads the signed, one-time and Kyber prekeys from their
// stored bytes and runs Respond (base-key check included). Bob's identity
// key is loaded once.
func BenchmarkRespond(b *testing.B) {
	k := newBenchKeys(b)
	in, err := pqxdh.Initiate(k.alice, k.bundle(b))
	if err != nil {
		b.Fatal(err)
	}
	spkRaw, opkRaw, sig := k.spk.PrivateKey().Bytes(), k.opk.PrivateKey().Bytes(), k.spk.Signature()
	kpkSeed := k.kpk.PrivateKey().Bytes()
	b.ReportAllocs()
	for b.Loop() {
		sk, _ := keys.NewPrivateKey(spkRaw)
		spk, _ := keys.NewSignedPreKey(7, sk, sig, k.spk.Created())
		ok, _ := keys.NewPrivateKey(opkRaw)
		ksk, err := kyber.NewPrivateKey(kpkSeed)
		if err != nil {
			b.Fatal(err)
		}
		kpk, _ := kyber.NewPreKey(11, ksk, k.kpk.Signature(), k.kpk.Created(), true)
		out, err := pqxdh.Respond(k.bob, spk, keys.NewOneTimePreKey(9, ok), kpk, &in.Header)
		if err != nil {
			b.Fatal(err)
		}
		out.Clear()
	}
}

// BenchmarkRespondFloor: ecdh private keys for SPK_B and OPK_B, public keys
// for IK_A and EK_A, four ECDH calls, ML-KEM-1024 decapsulation from the
// seed with the Kyber output step, one hkdf.Key of 96 bytes.
func BenchmarkRespondFloor(b *testing.B) {
	k := newBenchKeys(b)
	in, err := pqxdh.Initiate(k.alice, k.bundle(b))
	if err != nil {
		b.Fatal(err)
	}
	curve := ecdh.X25519()
	ikB, _ := curve.NewPrivateKey(k.bob.PrivateKey().Bytes())
	spkRaw, opkRaw, seed := k.spk.PrivateKey().Bytes(), k.opk.PrivateKey().Bytes(), k.kpk.PrivateKey().Bytes()
	ikARaw, ekARaw, ct := in.Header.IdentityKey.Bytes(), in.Header.BaseKey.Bytes(), in.Header.KyberCiphertext
	b.ReportAllocs()
	for b.Loop() {
		spk, _ := curve.NewPrivateKey(spkRaw)
		opk, _ := curve.NewPrivateKey(opkRaw)
		ikA, _ := curve.NewPublicKey(ikARaw)
		ekA, _ := curve.NewPublicKey(ekARaw)
		ikm := bytes.Repeat([]byte{0xFF}, 32)
		for _, p := range []struct {
			k *ecdh.PrivateKey
			p *ecdh.PublicKey
		}{{spk, ikA}, {ikB, ekA}, {spk, ekA}, {opk, ekA}} {
			s, err := p.k.ECDH(p.p)
			if err != nil {
				b.Fatal(err)
			}
			ikm = append(ikm, s...)
		}
		dk, err := mlkem.NewDecapsulationKey1024(seed)
		if err != nil {
			b.Fatal(err)
		}
		ss, err := dk.Decapsulate(ct[1:])
		if err != nil {
			b.Fatal(err)
		}
		h := sha3.Sum256(ct[1:])
		ikm = append(ikm, sha3.SumSHAKE256(append(ss, h[:]...), 32)...)
		if _, err := hkdf.Key(sha256.New, ikm, nil, pqxdh.Info, 96); err != nil {
			b.Fatal(err)
		}
	}
}
