package signalsuite

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/signalwire"
)

// The message path of libsignal's suite, one 1 KiB message per iteration,
// beside its floor written with crypto/hmac, crypto/hkdf and crypto/aes
// (interleave the repetitions on a shared machine):
//
//	go test -c -o suite.test ./internal/signalsuite && for i in 1 2 3 4 5 6; do
//		./suite.test -test.run '^$' -test.bench . >> bench.txt; done
//	go run golang.org/x/perf/cmd/benchstat@latest bench.txt
//
// Each iteration is what a sender does per message once its chain key is
// known: the chain step, the message keys (with an SPQR salt), AES-256-CBC,
// the protobuf body and the tag; the Open benchmarks parse, check the tag and
// decrypt instead.

var (
	benchCK   = [KeySize]byte{1}
	benchSalt = bytes.Repeat([]byte{2}, 32)
	benchPT   = bytes.Repeat([]byte{'x'}, 1024)
)

func BenchmarkSeal1K(b *testing.B) {
	_, a, c := testKeys(b)
	pq := []byte{1, 1, 5, 0}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPT)))
	for b.Loop() {
		seed, _ := ChainStep(&benchCK)
		mk := DeriveMessageKeys(&seed, benchSalt)
		m := signalwire.SignalMessage{RatchetKey: a, Counter: 5, Ciphertext: Encrypt(mk, benchPT), PQRatchet: pq}
		body, err := m.AppendBody(make([]byte, 0, 1200))
		if err != nil {
			b.Fatal(err)
		}
		tag := Tag(mk, a, c, body)
		_ = append(body, tag[:]...)
		mk.Clear()
	}
}

func BenchmarkSeal1KFloor(b *testing.B) {
	_, a, c := testKeys(b)
	ae, ce := a.Encode(), c.Encode()
	ra := a.Encode()
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPT)))
	for b.Loop() {
		h := hmac.New(sha256.New, benchCK[:])
		h.Write([]byte{1})
		seed := h.Sum(nil)
		keys, _ := hkdf.Key(sha256.New, seed, benchSalt, "WhisperMessageKeys", 80)
		blk, _ := aes.NewCipher(keys[:32])
		pad := 16 - len(benchPT)%16
		ct := append(bytes.Clone(benchPT), bytes.Repeat([]byte{byte(pad)}, pad)...)
		cipher.NewCBCEncrypter(blk, keys[64:]).CryptBlocks(ct, ct)
		body := make([]byte, 0, 1200)
		body = append(body, 0x44, 0x0a, 33)
		body = append(body, ra...)
		body = append(body, 0x10, 5, 0x18, 0, 0x22, byte(len(ct)|0x80), byte(len(ct)>>7))
		body = append(body, ct...)
		body = append(body, 0x2a, 4, 1, 1, 5, 0)
		m := hmac.New(sha256.New, keys[32:64])
		m.Write(ae)
		m.Write(ce)
		m.Write(body)
		_ = append(body, m.Sum(nil)[:8]...)
	}
}

func BenchmarkOpen1K(b *testing.B) {
	_, a, c := testKeys(b)
	seed, _ := ChainStep(&benchCK)
	mk := DeriveMessageKeys(&seed, benchSalt)
	wire := seal(b, mk, a, c, benchPT)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPT)))
	for b.Loop() {
		seed, _ := ChainStep(&benchCK)
		mk := DeriveMessageKeys(&seed, benchSalt)
		if _, err := openWire(mk, a, c, wire); err != nil {
			b.Fatal(err)
		}
		mk.Clear()
	}
}

func BenchmarkOpen1KFloor(b *testing.B) {
	_, a, c := testKeys(b)
	seed, _ := ChainStep(&benchCK)
	mk := DeriveMessageKeys(&seed, benchSalt)
	wire := seal(b, mk, a, c, benchPT)
	ae, ce := a.Encode(), c.Encode()
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPT)))
	for b.Loop() {
		m, body, mac, err := signalwire.ParseSignalMessage(wire)
		if err != nil {
			b.Fatal(err)
		}
		h := hmac.New(sha256.New, benchCK[:])
		h.Write([]byte{1})
		keys, _ := hkdf.Key(sha256.New, h.Sum(nil), benchSalt, "WhisperMessageKeys", 80)
		t := hmac.New(sha256.New, keys[32:64])
		t.Write(ae)
		t.Write(ce)
		t.Write(body)
		if !hmac.Equal(t.Sum(nil)[:8], mac) {
			b.Fatal("tag")
		}
		blk, _ := aes.NewCipher(keys[:32])
		pt := make([]byte, len(m.Ciphertext))
		cipher.NewCBCDecrypter(blk, keys[64:]).CryptBlocks(pt, m.Ciphertext)
		_ = pt[:len(pt)-int(pt[len(pt)-1])]
	}
}
