// Package aead is ratchetkit's message encryption: it turns a Double Ratchet
// message key into a cipher key and nonce and seals one message with them.
//
// Each message key is used for exactly one message, so the nonce can be
// derived from the key instead of sent: HKDF-SHA256 with a salt of 32 zero
// bytes stretches the 32-byte message key into 44 bytes, the first 32 the
// cipher key and the last 12 the nonce. The default suite, [AES256GCM], is the
// one profile v1 pins; [ChaCha20Poly1305] is the same construction over
// ChaCha20-Poly1305 with its own HKDF info string, for platforms without
// AES hardware. The two never interoperate: a suite is part of a session's
// configuration.
//
// This differs from Signal's Double Ratchet recommendation (AES-256-CBC and a
// truncated HMAC): messages are not wire-compatible with Signal's.
//
// Every Open failure is the one opaque error [ErrOpen], and a failed Open
// returns no plaintext.
package aead

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/ratchetkit/ratchetkit/internal/kdf"
)

const (
	// KeySize is the length of a message key.
	KeySize = 32
	// Overhead is the length of the authentication tag each suite appends.
	Overhead = 16
	// derivedSize is the HKDF output: a 32-byte cipher key, a 12-byte nonce.
	derivedSize = 32 + 12
)

// ErrOpen is the only error Open returns for a ciphertext that does not
// authenticate, whatever the reason (wrong key, tampered bytes, wrong
// associated data, truncation).
var ErrOpen = errors.New("aead: message authentication failed")

// Suite encrypts single messages under single-use message keys.
type Suite interface {
	// Seal encrypts and authenticates plaintext, authenticates ad, and
	// appends the ciphertext and tag to dst. mk must be KeySize bytes and
	// must never be used again; Seal panics on a wrong length.
	// To reuse plaintext's storage, use plaintext[:0] as dst.
	Seal(dst, mk, plaintext, ad []byte) []byte
	// Open authenticates and decrypts ciphertext and ad and appends the
	// plaintext to dst. On failure it returns ErrOpen and no plaintext, and
	// whatever it wrote into dst's spare capacity is zeroed.
	Open(dst, mk, ciphertext, ad []byte) ([]byte, error)
	// Name names the suite, for diagnostics.
	Name() string
}

// AES256GCM is profile v1's message AEAD: HKDF-SHA256(0x00*32, mk,
// "ratchetkit_MessageKeys_AES-256-GCM_v1", 44), then AES-256-GCM.
var AES256GCM Suite = &suite{
	name: "AES-256-GCM",
	info: []byte("ratchetkit_MessageKeys_AES-256-GCM_v1"),
	new: func(key []byte) (cipher.AEAD, error) {
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	},
}

// ChaCha20Poly1305 is the same construction with HKDF info
// "ratchetkit_MessageKeys_ChaCha20-Poly1305_v1" and ChaCha20-Poly1305
// (RFC 8439) as the cipher.
var ChaCha20Poly1305 Suite = &suite{
	name: "ChaCha20-Poly1305",
	info: []byte("ratchetkit_MessageKeys_ChaCha20-Poly1305_v1"),
	new:  chacha20poly1305.New,
}

type suite struct {
	name string
	info []byte
	new  func(key []byte) (cipher.AEAD, error)
}

// scratch keeps the derived key and nonce on the heap, in a pooled object:
// handing a stack buffer to cipher.AEAD's interface methods would make it
// escape, an allocation per message.
type scratch struct {
	h       *kdf.Hasher
	derived [derivedSize]byte
}

var scratchPool = sync.Pool{New: func() any { return &scratch{h: kdf.NewHasher()} }}

func (s *suite) Name() string { return s.name }

// derive returns a scratch holding the key and nonce for mk, and the cipher.
func (s *suite) derive(mk []byte) (*scratch, cipher.AEAD) {
	if len(mk) != KeySize {
		panic("aead: message key must be 32 bytes")
	}
	sc := scratchPool.Get().(*scratch)
	sc.h.HKDF(sc.derived[:], kdf.ZeroSalt(), mk, s.info)
	c, err := s.new(sc.derived[:32])
	if err != nil {
		// Both constructors only fail on a wrong key length.
		panic("aead: internal error: " + err.Error())
	}
	return sc, c
}

func (sc *scratch) release() {
	clear(sc.derived[:])
	scratchPool.Put(sc)
}

func (s *suite) Seal(dst, mk, plaintext, ad []byte) []byte {
	sc, c := s.derive(mk)
	out := c.Seal(dst, sc.derived[32:], plaintext, ad)
	sc.release()
	return out
}

func (s *suite) Open(dst, mk, ciphertext, ad []byte) ([]byte, error) {
	if len(mk) != KeySize {
		panic("aead: message key must be 32 bytes")
	}
	if len(ciphertext) < Overhead {
		return nil, ErrOpen
	}
	sc, c := s.derive(mk)
	out, err := c.Open(dst, sc.derived[32:], ciphertext, ad)
	sc.release()
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}
