package aead

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// The benchmarks seal and open 1 KiB under a fresh derivation each time, as
// the ratchet does for every message, after their floor: the same work
// composed from the standard library (hkdf.Key, then the cipher's
// constructors, then Seal or Open) as impl=std. Read the results as ratios:
//
//	go test -run '^$' -bench . -count 6 ./aead > aead.txt
//	benchstat -col /impl aead.txt

const benchSize = 1024

type benchCase struct {
	name  string
	suite Suite
	info  string
	new   func(key []byte) (cipher.AEAD, error)
}

func benchCases() []benchCase {
	return []benchCase{
		{"AES256GCM", AES256GCM(), infoAES256GCM, newStdGCM},
		{"ChaCha20Poly1305", ChaCha20Poly1305(), infoChaCha20Poly1305, chacha20poly1305.New},
	}
}

func newStdGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// stdSeal is the standard-library composition of the message AEAD.
func stdSeal(newAEAD func([]byte) (cipher.AEAD, error), info string, dst, mk, pt, ad []byte) []byte {
	okm, err := hkdf.Key(sha256.New, mk, make([]byte, 32), info, 44)
	if err != nil {
		panic(err)
	}
	c, err := newAEAD(okm[:32])
	if err != nil {
		panic(err)
	}
	return c.Seal(dst, okm[32:], pt, ad)
}

func stdOpen(newAEAD func([]byte) (cipher.AEAD, error), info string, dst, mk, ct, ad []byte) ([]byte, error) {
	okm, err := hkdf.Key(sha256.New, mk, make([]byte, 32), info, 44)
	if err != nil {
		panic(err)
	}
	c, err := newAEAD(okm[:32])
	if err != nil {
		panic(err)
	}
	return c.Open(dst, okm[32:], ct, ad)
}

func benchInputs() (mk, pt, ad, dst []byte) {
	mk = make([]byte, KeySize)
	rand.Read(mk)
	pt = make([]byte, benchSize)
	rand.Read(pt)
	ad = make([]byte, 66+42)
	rand.Read(ad)
	return mk, pt, ad, make([]byte, 0, benchSize+Overhead)
}

func BenchmarkSeal(b *testing.B) {
	for _, bc := range benchCases() {
		mk, pt, ad, dst := benchInputs()
		b.Run("suite="+bc.name+"/impl=std", func(b *testing.B) {
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				stdSeal(bc.new, bc.info, dst[:0], mk, pt, ad)
			}
		})
		b.Run("suite="+bc.name+"/impl=aead", func(b *testing.B) {
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				bc.suite.Seal(dst[:0], mk, pt, ad)
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, bc := range benchCases() {
		mk, pt, ad, dst := benchInputs()
		ct := bc.suite.Seal(nil, mk, pt, ad)
		b.Run("suite="+bc.name+"/impl=std", func(b *testing.B) {
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := stdOpen(bc.new, bc.info, dst[:0], mk, ct, ad); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("suite="+bc.name+"/impl=aead", func(b *testing.B) {
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.suite.Open(dst[:0], mk, ct, ad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
