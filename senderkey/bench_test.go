package senderkey

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/testutil"
)

// Group encrypt and decrypt of a 1 KiB message beside their floor, what
// the standard library needs for the same work: the two HMACs of the chain
// step, HKDF of 48 bytes, AES-256-CBC, and an Ed25519 signature or
// verification (the standard library has no XEdDSA; XEdDSA is Ed25519 over
// the converted key plus one more hash in signing). On a shared machine:
//
//	go test -c -o sk.test ./senderkey && for i in 1 2 3 4 5 6; do
//		./sk.test -test.run '^$' -test.bench . >> bench.txt; done
//	go run golang.org/x/perf/cmd/benchstat@latest bench.txt

var benchPT = bytes.Repeat([]byte{'x'}, 1024)

// floorKeys is the chain step and the message key, IV || AES key, and the
// cipher.
func floorKeys(ck []byte) ([]byte, cipher.Block) {
	h := hmac.New(sha256.New, ck)
	h.Write([]byte{1})
	seed := h.Sum(nil)
	h.Reset()
	h.Write([]byte{2})
	_ = h.Sum(nil)
	k, _ := hkdf.Key(sha256.New, seed, nil, "WhisperGroup", 48)
	block, _ := aes.NewCipher(k[16:])
	return k, block
}

func encryptFloor(ck []byte, priv ed25519.PrivateKey) {
	k, block := floorKeys(ck)
	out := make([]byte, 1040)
	copy(out, benchPT)
	cipher.NewCBCEncrypter(block, k[:16]).CryptBlocks(out, out)
	body := append(make([]byte, 0, 1200), out...)
	_ = ed25519.Sign(priv, body)
}

func decryptFloor(ck []byte, pub ed25519.PublicKey, msg, sig []byte) {
	if !ed25519.Verify(pub, msg, sig) {
		panic("floor signature")
	}
	k, block := floorKeys(ck)
	out := make([]byte, 1040)
	cipher.NewCBCDecrypter(block, k[:16]).CryptBlocks(out, msg[len(msg)-1040:])
}

func BenchmarkEncrypt1K(b *testing.B) {
	id, sender, _ := pair(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPT)))
	for b.Loop() {
		if _, err := sender.Encrypt(id, benchPT); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncrypt1KFloor(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(nil)
	ck := make([]byte, 32)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPT)))
	for b.Loop() {
		encryptFloor(ck, priv)
	}
}

// decryptBench returns a member and an in-order message, and a reset that
// puts the member's chain back before the message, so that every
// iteration decrypts the same message as new.
func decryptBench(b *testing.B) (recv *Record, msg []byte, reset func()) {
	id, sender, recv := pair(b)
	msg, err := sender.Encrypt(id, benchPT)
	if err != nil {
		b.Fatal(err)
	}
	s := recv.states[0]
	ck, it := s.chainKey, s.iteration
	return recv, msg, func() { s.chainKey, s.iteration = ck, it }
}

func BenchmarkDecrypt1K(b *testing.B) {
	recv, msg, reset := decryptBench(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPT)))
	for b.Loop() {
		if _, err := recv.Decrypt(msg); err != nil {
			b.Fatal(err)
		}
		reset()
	}
}

func BenchmarkDecrypt1KFloor(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := bytes.Repeat([]byte{1}, 1070)
	sig := ed25519.Sign(priv, msg)
	ck := make([]byte, 32)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPT)))
	for b.Loop() {
		decryptFloor(ck, pub, msg, sig)
	}
}

// The same pairs interleaved call by call, for the ratio (x-floor) on a
// loaded machine.
func BenchmarkEncrypt1KInterleaved(b *testing.B) {
	id, sender, _ := pair(b)
	_, priv, _ := ed25519.GenerateKey(nil)
	ck := make([]byte, 32)
	testutil.Interleave(b, func() { encryptFloor(ck, priv) }, func() { sender.Encrypt(id, benchPT) })
}

func BenchmarkDecrypt1KInterleaved(b *testing.B) {
	recv, msg, reset := decryptBench(b)
	pub, priv, _ := ed25519.GenerateKey(nil)
	fmsg := bytes.Repeat([]byte{1}, 1070)
	sig := ed25519.Sign(priv, fmsg)
	ck := make([]byte, 32)
	testutil.Interleave(b, func() { decryptFloor(ck, pub, fmsg, sig) }, func() { recv.Decrypt(msg); reset() })
}
