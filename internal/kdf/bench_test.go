package kdf

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/testutil"
)

// Each benchmark runs its floor, the same job done with crypto/hmac or
// crypto/hkdf, first as impl=std, then the fast path (impl=kdf) and the
// fallback the package uses when its init self-check fails
// (impl=fallback), so that one run reads as ratios:
//
//	go test -run '^$' -bench . -count 6 ./internal/kdf > kdf.txt
//	benchstat -col /impl kdf.txt

var (
	benchKey  = []byte("0123456789abcdef0123456789abcdef")
	benchInfo = []byte("ratchetkit_MessageKeys_AES-256-GCM_v1")
)

// BenchmarkChainStep is the Double Ratchet's KDF_CK: a fresh chain key,
// then HMAC(ck, 0x01) and HMAC(ck, 0x02).
func BenchmarkChainStep(b *testing.B) {
	b.Run("impl=std", func(b *testing.B) {
		var mk, ck [Size]byte
		copy(ck[:], benchKey)
		b.ReportAllocs()
		for b.Loop() {
			m := hmac.New(sha256.New, ck[:])
			m.Write([]byte{1})
			m.Sum(mk[:0])
			m.Reset()
			m.Write([]byte{2})
			m.Sum(ck[:0])
		}
	})
	kdfRun(b, "", func(b *testing.B) {
		h := NewHasher()
		var k Key
		var mk, ck [Size]byte
		copy(ck[:], benchKey)
		b.ReportAllocs()
		for b.Loop() {
			h.SetKey(&k, ck[:])
			h.MACByte(&mk, &k, 1)
			h.MACByte(&ck, &k, 2)
		}
	})
}

// BenchmarkHMAC MACs a 32-byte message under an already set-up key.
func BenchmarkHMAC(b *testing.B) {
	msg := make([]byte, 32)
	b.Run("impl=std", func(b *testing.B) {
		m := hmac.New(sha256.New, benchKey)
		var out [Size]byte
		b.ReportAllocs()
		for b.Loop() {
			m.Reset()
			m.Write(msg)
			m.Sum(out[:0])
		}
	})
	kdfRun(b, "", func(b *testing.B) {
		h := NewHasher()
		var k Key
		h.SetKey(&k, benchKey)
		var out [Size]byte
		b.ReportAllocs()
		for b.Loop() {
			h.MAC(&out, &k, msg, nil, nil)
		}
	})
}

// BenchmarkHKDF covers the profile's two HKDF shapes: the message-key
// derivation (zero salt, 44 bytes) and KDF_RK (the root key as salt, 64
// bytes).
func BenchmarkHKDF(b *testing.B) {
	ikm := make([]byte, 32)
	zero := make([]byte, 32)
	rootInfo := []byte("ratchetkit_Ratchet_v1")
	b.Run("shape=MessageKeys/impl=std", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := hkdf.Key(sha256.New, ikm, zero, string(benchInfo), 44); err != nil {
				b.Fatal(err)
			}
		}
	})
	kdfRun(b, "shape=MessageKeys/", func(b *testing.B) {
		h := NewHasher()
		var out [44]byte
		b.ReportAllocs()
		for b.Loop() {
			h.HKDF(out[:], ZeroSalt(), ikm, benchInfo)
		}
	})
	b.Run("shape=RootKey/impl=std", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := hkdf.Key(sha256.New, ikm, benchKey, string(rootInfo), 64); err != nil {
				b.Fatal(err)
			}
		}
	})
	kdfRun(b, "shape=RootKey/", func(b *testing.B) {
		h := NewHasher()
		var salt Key
		var out [64]byte
		b.ReportAllocs()
		for b.Loop() {
			h.SetKey(&salt, benchKey)
			h.HKDF(out[:], &salt, ikm, rootInfo)
		}
	})
}

// kdfRun runs f as impl=kdf on the fast path and as impl=fallback with the
// fast path turned off.
func kdfRun(b *testing.B, prefix string, f func(b *testing.B)) {
	b.Run(prefix+"impl=kdf", f)
	b.Run(prefix+"impl=fallback", func(b *testing.B) {
		fast = false
		defer func() { fast = true }()
		f(b)
	})
}

// BenchmarkFastPathRatio runs one message's key derivations (KDF_CK and the
// message-key HKDF) on the fallback and then on the fast path in every
// iteration, on the thread's CPU clock, so that x-floor is the fast path's
// cost as a fraction of the fallback's even on a busy machine.
func BenchmarkFastPathRatio(b *testing.B) {
	h := NewHasher()
	var k Key
	var mk, ck [Size]byte
	var out [44]byte
	copy(ck[:], benchKey)
	message := func() {
		h.SetKey(&k, ck[:])
		h.MACByte(&mk, &k, 1)
		h.MACByte(&ck, &k, 2)
		h.HKDF(out[:], ZeroSalt(), mk[:], benchInfo)
	}
	testutil.Interleave(b, func() {
		fast = false
		message()
		fast = true
	}, message)
}
