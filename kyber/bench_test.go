package kyber

import (
	"bytes"
	"crypto/mlkem"
	"crypto/sha3"
	"testing"
)

// Each benchmark sits beside its floor, the same steps with nothing but
// crypto/mlkem and crypto/sha3, so that one run reads as a ratio:
//
//	go test -c -o kyber.test ./kyber && for i in 1 2 3 4 5 6; do
//		./kyber.test -test.run '^$' -test.bench . >> bench.txt; done
//	go run golang.org/x/perf/cmd/benchstat@latest bench.txt

func benchKey(b *testing.B) (*PrivateKey, []byte, []byte) {
	sk, err := NewPrivateKey(bytes.Repeat([]byte{1}, SeedSize))
	if err != nil {
		b.Fatal(err)
	}
	pub := sk.PublicKey().Encode()
	_, ct := sk.PublicKey().Encapsulate()
	return sk, pub, ct
}

// BenchmarkEncapsulate parses a fetched public key and encapsulates to it,
// as an initiator does once per session.
func BenchmarkEncapsulate(b *testing.B) {
	_, pub, _ := benchKey(b)
	b.ReportAllocs()
	for b.Loop() {
		pk, err := ParsePublicKey(pub)
		if err != nil {
			b.Fatal(err)
		}
		pk.Encapsulate()
	}
}

// BenchmarkEncapsulateFloor is the same with crypto/mlkem and the Kyber
// output step written out.
func BenchmarkEncapsulateFloor(b *testing.B) {
	_, pub, _ := benchKey(b)
	b.ReportAllocs()
	for b.Loop() {
		ek, err := mlkem.NewEncapsulationKey1024(pub[1:])
		if err != nil {
			b.Fatal(err)
		}
		ss, ct := ek.Encapsulate()
		h := sha3.Sum256(ct)
		sha3.SumSHAKE256(append(ss, h[:]...), 32)
	}
}

// BenchmarkDecapsulate loads a stored prekey from its seed and
// decapsulates, as a responder does once per session.
func BenchmarkDecapsulate(b *testing.B) {
	sk, _, ct := benchKey(b)
	seed := sk.Bytes()
	b.ReportAllocs()
	for b.Loop() {
		k, err := NewPrivateKey(seed)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := k.Decapsulate(ct); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecapsulateFloor is the same with crypto/mlkem and crypto/sha3.
func BenchmarkDecapsulateFloor(b *testing.B) {
	sk, _, ct := benchKey(b)
	seed := sk.Bytes()
	b.ReportAllocs()
	for b.Loop() {
		dk, err := mlkem.NewDecapsulationKey1024(seed)
		if err != nil {
			b.Fatal(err)
		}
		ss, err := dk.Decapsulate(ct[1:])
		if err != nil {
			b.Fatal(err)
		}
		h := sha3.Sum256(ct[1:])
		sha3.SumSHAKE256(append(ss, h[:]...), 32)
	}
}
