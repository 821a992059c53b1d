// Package keys holds ratchetkit's long-term and ephemeral key material: X25519
// key pairs, identity keys that sign with XEdDSA, signed prekeys and batches of
// one-time prekeys.
//
// # Encoding
//
// A public key travels as Encode(PK) = 0x05 || u, a type byte followed by the
// 32-byte little-endian Curve25519 u-coordinate, 33 bytes in all (Signal's
// "Djb" key type). [DecodePublicKey] accepts only that form with a canonical u
// (u < p; a set bit 255 is never canonical), so every key has exactly one
// encoding and keys compare by their bytes.
//
// # Signatures
//
// Identity keys sign with XEdDSA (Signal's XEdDSA specification, revision 1),
// which lets one X25519 key pair both agree and sign. [IdentityKeyPair.Sign]
// produces spec-exact signatures with 64 fresh random bytes;
// [PublicKey.Verify] accepts those and libsignal's variant, which carries the
// Edwards sign bit in the top bit of the last signature byte, and rejects
// non-canonical s, non-canonical or twist or small-order keys, and every
// wrong length. See the profile in PROTOCOL.md for the exact rules.
//
// # Secrets
//
// Private key types print as REDACTED under every fmt verb, as pointers, as
// values and inside other values (fmt cannot reach their bytes even through
// unexported fields); public keys print as their encoding in hex, so logs
// can still say which key was involved. Their Clear methods wipe the bytes
// they own; this is best effort, since Go gives no
// control over copies the runtime makes (stack growth, registers, the
// garbage collector), and slices returned by Bytes are the caller's to wipe.
package keys

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/ratchetkit/ratchetkit/internal/curve"
	"github.com/ratchetkit/ratchetkit/internal/xeddsa"
)

const (
	// KeyTypeDJB is the type byte that starts every encoded public key.
	KeyTypeDJB byte = 0x05
	// PublicKeySize is the length of a raw public key (the u-coordinate).
	PublicKeySize = 32
	// EncodedPublicKeySize is the length of Encode's output.
	EncodedPublicKeySize = 1 + PublicKeySize
	// PrivateKeySize is the length of a raw X25519 private key.
	PrivateKeySize = 32
	// SharedSecretSize is the length of an X25519 shared secret.
	SharedSecretSize = 32
	// SignatureSize is the length of an XEdDSA signature.
	SignatureSize = xeddsa.SignatureSize
)

var (
	// ErrInvalidPublicKey is returned for a public key of the wrong length or
	// type byte, or with a non-canonical u-coordinate.
	ErrInvalidPublicKey = errors.New("keys: invalid public key")
	// ErrInvalidPrivateKey is returned for a private key of the wrong length.
	ErrInvalidPrivateKey = errors.New("keys: invalid private key")
	// ErrSmallOrder is returned by ECDH when the shared secret is all zeros,
	// which means the peer's key has small order and contributes nothing.
	ErrSmallOrder = errors.New("keys: all-zero shared secret from a small-order public key")
	// ErrInvalidSignature is returned when a signed prekey's signature does
	// not verify.
	ErrInvalidSignature = errors.New("keys: invalid signature")
)

// PublicKey is an X25519 public key. It is immutable and safe for
// concurrent use. Use *PublicKey; the zero value is not a valid key.
type PublicKey struct {
	u [PublicKeySize]byte
	// ed caches the Edwards form that XEdDSA verification needs, computed on
	// first use: the conversion costs about as much as an inversion and a
	// square root, which repeated verifications under one identity key skip.
	ed atomic.Pointer[edCache]
}

type edCache struct {
	pk  *xeddsa.PublicKey // nil if the key cannot verify anything
	err error
}

// NewPublicKey returns the public key with the raw 32-byte u-coordinate u.
// It rejects a wrong length and a non-canonical u.
func NewPublicKey(u []byte) (*PublicKey, error) {
	if len(u) != PublicKeySize {
		return nil, fmt.Errorf("%w: length %d, want %d", ErrInvalidPublicKey, len(u), PublicKeySize)
	}
	k := new(PublicKey)
	copy(k.u[:], u)
	if !curve.IsCanonical(&k.u) {
		return nil, fmt.Errorf("%w: u-coordinate is not below 2^255 - 19", ErrInvalidPublicKey)
	}
	return k, nil
}

// DecodePublicKey parses the 33-byte form 0x05 || u made by Encode.
func DecodePublicKey(b []byte) (*PublicKey, error) {
	if len(b) != EncodedPublicKeySize {
		return nil, fmt.Errorf("%w: encoded length %d, want %d", ErrInvalidPublicKey, len(b), EncodedPublicKeySize)
	}
	if b[0] != KeyTypeDJB {
		return nil, fmt.Errorf("%w: type byte 0x%02x, want 0x05", ErrInvalidPublicKey, b[0])
	}
	return NewPublicKey(b[1:])
}

// Bytes returns a copy of the raw 32-byte u-coordinate. It is small enough
// to inline, so a caller that only copies the result into a fixed-size array
// (as ratchetkit's own packages do) allocates nothing.
func (k *PublicKey) Bytes() []byte {
	b := k.u
	return b[:]
}

// Encode returns the 33-byte encoding 0x05 || u.
func (k *PublicKey) Encode() []byte {
	return k.AppendEncode(make([]byte, 0, EncodedPublicKeySize))
}

// AppendEncode appends Encode(k) to dst and returns the extended slice.
func (k *PublicKey) AppendEncode(dst []byte) []byte {
	dst = append(dst, KeyTypeDJB)
	return append(dst, k.u[:]...)
}

// Equal reports whether k and x are the same key, in constant time.
func (k *PublicKey) Equal(x *PublicKey) bool {
	if k == nil || x == nil {
		return k == x
	}
	return subtle.ConstantTimeCompare(k.u[:], x.u[:]) == 1
}

// String returns "keys.PublicKey(05…)" with the key's 33-byte encoding in
// hex. Public keys are not secret.
func (k *PublicKey) String() string {
	var enc [EncodedPublicKeySize]byte
	return fmt.Sprintf("keys.PublicKey(%x)", k.AppendEncode(enc[:0]))
}

// GoString returns the same as String.
func (k *PublicKey) GoString() string { return k.String() }

// Format prints the encoding as bare hex for %x and %X and as String for
// every other verb, so that logs can show which key was involved.
func (k *PublicKey) Format(f fmt.State, verb rune) {
	var enc [EncodedPublicKeySize]byte
	switch verb {
	case 'x', 'X':
		fmt.Fprintf(f, fmt.FormatString(f, verb), k.AppendEncode(enc[:0]))
	case 'q':
		fmt.Fprintf(f, "%q", k.String())
	default:
		io.WriteString(f, k.String())
	}
}

// Verify reports whether sig is a valid XEdDSA signature of msg under k. It
// accepts spec-exact and libsignal-style signatures and returns false for
// anything else, including any key that XEdDSA rejects (u = p − 1, twist
// points, small order). The key's Edwards form is computed once and cached.
func (k *PublicKey) Verify(msg, sig []byte) bool {
	c := k.ed.Load()
	if c == nil {
		pk, err := xeddsa.NewPublicKey(k.u[:])
		c = &edCache{pk: pk, err: err}
		k.ed.Store(c)
	}
	return c.err == nil && c.pk.Verify(msg, sig)
}

// PrivateKey is an X25519 private key. Its public key is computed on first
// use and cached, so loading a stored key to run one agreement costs one
// scalar multiplication, not two. It is safe for concurrent use. Use the
// constructors; the zero value is not a valid key.
type PrivateKey struct {
	// The state sits behind a pointer so that copies of a PrivateKey share
	// one key (Clear reaches them all), and so that the fmt methods, which
	// take the value, redact a PrivateKey as well as a *PrivateKey.
	st *privateState
}

// privateState keeps the key bytes behind one more pointer. fmt never runs
// our methods on a value it reached through an unexported field, and for a
// verb that does not apply to pointers (%s, %d, %q) it prints what such a
// pointer points to; a second pointer is only ever shown as an address.
// TestSecretsRedacted covers those paths.
type privateState struct {
	k   *[PrivateKeySize]byte
	pub atomic.Pointer[PublicKey]
}

func newPrivateState() *privateState {
	return &privateState{k: new([PrivateKeySize]byte)}
}

// GeneratePrivateKey returns a fresh private key from crypto/rand. Its public
// key is computed right away, through the Edwards fixed-base table (about
// twice as fast as crypto/ecdh's key generation, and the same key).
func GeneratePrivateKey() (*PrivateKey, error) {
	p := &PrivateKey{st: newPrivateState()}
	if _, err := rand.Read(p.st.k[:]); err != nil {
		return nil, err
	}
	p.PublicKey()
	return p, nil
}

// NewPrivateKey returns the private key with the 32 raw bytes b (clamped
// when used, as RFC 7748 says). It does not compute the public key.
func NewPrivateKey(b []byte) (*PrivateKey, error) {
	if len(b) != PrivateKeySize {
		return nil, fmt.Errorf("%w: length %d, want %d", ErrInvalidPrivateKey, len(b), PrivateKeySize)
	}
	p := &PrivateKey{st: newPrivateState()}
	copy(p.st.k[:], b)
	return p, nil
}

// Bytes returns a copy of the 32 raw bytes, as given or generated (not
// clamped). The caller owns the copy and should wipe it when done. Like
// [PublicKey.Bytes] it inlines, so copying the result into an array
// allocates nothing.
func (p *PrivateKey) Bytes() []byte {
	b := *p.st.k
	return b[:]
}

// PublicKey returns the public key, computing it on first use.
func (p *PrivateKey) PublicKey() *PublicKey {
	if pk := p.st.pub.Load(); pk != nil {
		return pk
	}
	pk := new(PublicKey)
	curve.PublicKey(&pk.u, p.st.k)
	p.st.pub.Store(pk)
	return pk
}

// ECDH returns X25519(p, remote). It fails with ErrSmallOrder, returning no
// bytes, when the result is all zeros.
func (p *PrivateKey) ECDH(remote *PublicKey) ([]byte, error) {
	var out [SharedSecretSize]byte
	if err := curve.DH(&out, p.st.k, &remote.u); err != nil {
		return nil, ErrSmallOrder
	}
	return out[:], nil
}

// Equal reports whether p and x hold the same bytes, in constant time.
func (p *PrivateKey) Equal(x *PrivateKey) bool {
	if p == nil || x == nil {
		return p == x
	}
	return subtle.ConstantTimeCompare(p.st.k[:], x.st.k[:]) == 1
}

// Clear wipes the private key (best effort; see the package docs).
func (p *PrivateKey) Clear() { clear(p.st.k[:]) }

// String, GoString and Format print "keys.PrivateKey(REDACTED)" for every
// verb, for the value and the pointer alike.
func (p PrivateKey) String() string             { return "keys.PrivateKey(REDACTED)" }
func (p PrivateKey) GoString() string           { return p.String() }
func (p PrivateKey) Format(f fmt.State, _ rune) { io.WriteString(f, p.String()) }
