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
// # Deviations from Signal
//
// Signal's Double Ratchet recommendation encrypts with AES-256-CBC and a
// truncated HMAC-SHA256, keyed from an 80-byte HKDF output. This package
// uses an AEAD instead, so messages are not wire-compatible with Signal's.
//
// # What it does and does not protect
//
// Open authenticates the ciphertext and the associated data together; the
// caller puts everything that must not be changed in transit (the parties'
// identities, the message header) in ad. Every Open failure is the one
// opaque error [ErrOpen], whatever failed, and a failed Open returns no
// plaintext and leaves none in dst. Attacker-controlled ciphertext and
// associated data never cause a panic.
//
// The construction is safe only while each message key seals one message:
// the nonce is a function of the key, so sealing two messages under one key
// reuses a nonce, which breaks both AES-GCM and ChaCha20-Poly1305. The
// ratchet guarantees that; code using this package directly must too.
// Neither cipher commits to its key, which matters only when one ciphertext
// could be tried under several keys chosen by an attacker; message keys are
// secret and derived, so that does not arise here.
//
// The derived key and nonce and the HKDF intermediates are wiped after each
// call, best effort: the ciphers' own key schedules, allocated by crypto/aes,
// crypto/cipher and x/crypto, cannot be wiped and are left to the garbage
// collector, and Go gives no control over copies the runtime makes.
//
// # Performance
//
// A call derives its key with the allocation-free HKDF of internal/kdf and
// then builds the cipher, which costs the allocations crypto/aes and
// crypto/cipher (or x/crypto) make for a key schedule and nothing else when
// dst has room. Pass ad from a heap buffer you own: a stack buffer handed
// through the Suite interface escapes, one more allocation per call.
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

// Suite encrypts single messages under single-use message keys. The suites
// are the values [AES256GCM] and [ChaCha20Poly1305] return; the interface
// has an unexported method, so no other package can implement it, as with
// crypto/ecdh.Curve. Two Suites are the same suite exactly when they are ==.
type Suite interface {
	// Seal encrypts and authenticates plaintext, authenticates ad, and
	// appends the ciphertext and tag (len(plaintext)+Overhead bytes) to dst.
	// mk must be KeySize bytes and must never be used again; Seal panics on
	// a wrong length, a bug in the caller. To reuse plaintext's storage, use
	// plaintext[:0] as dst; otherwise dst must not overlap plaintext or ad
	// (the ciphers panic on inexact overlap, as cipher.AEAD's do).
	Seal(dst, mk, plaintext, ad []byte) []byte
	// Open authenticates and decrypts ciphertext and ad and appends the
	// plaintext to dst. On any failure it returns nil and ErrOpen, and the
	// part of dst's spare capacity that the plaintext would have used is
	// zeroed. It panics only if mk is not KeySize bytes, a bug in the caller;
	// ciphertext and ad may be anything. To decrypt in place, use
	// ciphertext[:0] as dst.
	Open(dst, mk, ciphertext, ad []byte) ([]byte, error)
	// Name names the suite, for diagnostics.
	Name() string

	// derive closes the interface: it returns the pooled scratch holding
	// the cipher key and nonce for mk.
	derive(mk []byte) *scratch
}

// AES256GCM returns profile v1's message AEAD: HKDF-SHA256(0x00*32, mk,
// "ratchetkit_MessageKeys_AES-256-GCM_v1", 44), then AES-256-GCM. Every call
// returns the same value.
func AES256GCM() Suite { return aes256GCM }

// ChaCha20Poly1305 returns the same construction with HKDF info
// "ratchetkit_MessageKeys_ChaCha20-Poly1305_v1" and ChaCha20-Poly1305
// (RFC 8439) as the cipher. Every call returns the same value.
func ChaCha20Poly1305() Suite { return chaCha20Poly1305 }

var aes256GCM = &suite{
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

var chaCha20Poly1305 = &suite{
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

func (sc *scratch) key() *[32]byte   { return (*[32]byte)(sc.derived[:32]) }
func (sc *scratch) nonce() *[12]byte { return (*[12]byte)(sc.derived[32:]) }

// release wipes the derived key and nonce and the HKDF intermediates, then
// returns sc to the pool. The cipher's own key schedule, allocated by
// crypto/aes or x/crypto, is left to the garbage collector: there is no way
// to wipe it.
func (sc *scratch) release() {
	clear(sc.derived[:])
	sc.h.Wipe()
	scratchPool.Put(sc)
}

func (s *suite) Name() string { return s.name }

// derive returns a scratch holding the cipher key and nonce for mk.
func (s *suite) derive(mk []byte) *scratch {
	if len(mk) != KeySize {
		panic("aead: message key must be 32 bytes")
	}
	sc := scratchPool.Get().(*scratch)
	sc.h.HKDF(sc.derived[:], kdf.ZeroSalt(), mk, s.info)
	return sc
}

func (s *suite) Seal(dst, mk, plaintext, ad []byte) []byte {
	sc := s.derive(mk)
	out := s.sealRaw(dst, sc.key(), sc.nonce(), plaintext, ad)
	sc.release()
	return out
}

func (s *suite) Open(dst, mk, ciphertext, ad []byte) ([]byte, error) {
	if len(mk) != KeySize {
		panic("aead: message key must be 32 bytes")
	}
	if len(ciphertext) < Overhead {
		// Not worth a derivation; openRaw would refuse it too.
		return nil, ErrOpen
	}
	sc := s.derive(mk)
	out, err := s.openRaw(dst, sc.key(), sc.nonce(), ciphertext, ad)
	sc.release()
	return out, err
}

// newAEAD returns the suite's AEAD under key.
func (s *suite) newAEAD(key *[32]byte) cipher.AEAD {
	c, err := s.new(key[:])
	if err != nil {
		// Both constructors only fail on a wrong key length.
		panic("aead: internal error: " + err.Error())
	}
	return c
}

// sealRaw is Seal after the key derivation: the suite's cipher under key and
// nonce. It exists apart so that tests can run the cipher's own vectors
// through the exact code Seal uses.
func (s *suite) sealRaw(dst []byte, key *[32]byte, nonce *[12]byte, plaintext, ad []byte) []byte {
	return s.newAEAD(key).Seal(dst, nonce[:], plaintext, ad)
}

// openRaw is Open after the key derivation. Every failure is ErrOpen with a
// nil result, and the part of dst's spare capacity that the plaintext would
// have occupied is zeroed. The ciphers already clear their output on
// failure; doing it here as well makes that a property of this package
// rather than of the cipher behind it.
func (s *suite) openRaw(dst []byte, key *[32]byte, nonce *[12]byte, ciphertext, ad []byte) ([]byte, error) {
	if len(ciphertext) < Overhead {
		return nil, ErrOpen
	}
	out, err := s.newAEAD(key).Open(dst, nonce[:], ciphertext, ad)
	if err != nil {
		if n := len(ciphertext) - Overhead; cap(dst)-len(dst) >= n {
			clear(dst[len(dst) : len(dst)+n])
		}
		return nil, ErrOpen
	}
	return out, nil
}
