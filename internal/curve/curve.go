// Package curve holds the X25519 arithmetic that ratchetkit needs beyond
// crypto/ecdh: a key-generation path through the Edwards fixed-base table and a
// Montgomery ladder that works from a raw private scalar.
//
// crypto/ecdh is correct and fast, but [ecdh.Curve.NewPrivateKey] always
// derives the public key with a full variable-base ladder, so loading a stored
// private key and using it once costs two ladders. The Double Ratchet loads
// and uses keys exactly that way, so this package keeps private keys as raw
// bytes and runs the ladder on demand. Public keys are computed with the
// fixed-base Edwards multiplication, which is about twice as fast as the
// ladder and gives the same u-coordinate (RFC 7748, section 4.1).
//
// Everything here is constant time in the secret scalar.
//
// # What is and is not checked
//
// ScalarMult is exactly RFC 7748's X25519 function: it accepts every 32-byte
// u-coordinate, masks bit 255, reduces non-canonical values and happily
// multiplies points of the quadratic twist, which is what makes X25519 safe
// without point validation. DH adds the one check RFC 7748 section 6.1
// recommends, rejecting the all-zero output that small-order inputs give.
// Rejecting non-canonical encodings (u ≥ p) is the decoder's job, with
// IsCanonical; keys.DecodePublicKey does it, so that every public key has one
// encoding.
//
// Stack copies of the clamped scalar are wiped, best effort: the field
// elements of the ladder and copies the compiler or runtime make are out of
// reach.
package curve

import (
	"crypto/subtle"
	"errors"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// Size is the length of X25519 scalars, u-coordinates and shared secrets.
const Size = 32

// ErrZeroSecret is returned by DH when the shared secret is all zeros, which
// happens exactly when the peer's public key has small order (or is a twist
// point of small order). Such an output carries no secret at all.
var ErrZeroSecret = errors.New("curve: all-zero X25519 output (small-order public key)")

// Clamp applies the RFC 7748 clamping to k in place.
func Clamp(k *[Size]byte) {
	k[0] &= 248
	k[31] &= 127
	k[31] |= 64
}

// PublicKey sets pub to X25519(priv, 9), the public key of the private key
// priv, computed as the u-coordinate of clamp(priv)·B on edwards25519.
func PublicKey(pub, priv *[Size]byte) {
	var s edwards25519.Scalar
	// SetBytesWithClamping only fails on a wrong length, impossible here.
	if _, err := s.SetBytesWithClamping(priv[:]); err != nil {
		panic("curve: internal error: " + err.Error())
	}
	var p edwards25519.Point
	p.ScalarBaseMult(&s)
	copy(pub[:], p.BytesMontgomery())
}

// ScalarMult sets dst to the RFC 7748 X25519 function of scalar and point,
// including the clamping of scalar and the masking of the point's top bit.
// Non-canonical u-coordinates are reduced, as RFC 7748 requires. It performs
// no check on the output; see DH.
func ScalarMult(dst, scalar, point *[Size]byte) {
	var k [Size]byte
	copy(k[:], scalar[:])
	Clamp(&k)

	var x1, x2, z2, x3, z3, tmp0, tmp1 field.Element
	// field.Element.SetBytes ignores bit 255 and accepts values ≥ p, which is
	// the decoding RFC 7748 section 5 asks for. The length is always right.
	if _, err := x1.SetBytes(point[:]); err != nil {
		panic("curve: internal error: " + err.Error())
	}
	x2.One()
	z2.Zero()
	x3.Set(&x1)
	z3.One()

	swap := 0
	for pos := 254; pos >= 0; pos-- {
		b := int(k[pos/8]>>uint(pos&7)) & 1
		swap ^= b
		x2.Swap(&x3, swap)
		z2.Swap(&z3, swap)
		swap = b

		// One ladder step: (x2:z2) doubles, (x3:z3) becomes the sum, using
		// x1 as the difference. Variable names follow RFC 7748 section 5.
		tmp0.Subtract(&x3, &z3)     // D
		tmp1.Subtract(&x2, &z2)     // B
		x2.Add(&x2, &z2)            // A
		z2.Add(&x3, &z3)            // C
		z3.Multiply(&tmp0, &x2)     // DA
		z2.Multiply(&z2, &tmp1)     // CB
		tmp0.Square(&tmp1)          // BB
		tmp1.Square(&x2)            // AA
		x3.Add(&z3, &z2)            // DA + CB
		z2.Subtract(&z3, &z2)       // DA - CB
		x2.Multiply(&tmp1, &tmp0)   // AA·BB
		tmp1.Subtract(&tmp1, &tmp0) // E = AA - BB
		z2.Square(&z2)              // (DA - CB)²
		z3.Mult32(&tmp1, 121666)    // a24·E with a24 = (A+2)/4
		x3.Square(&x3)              // (DA + CB)²
		tmp0.Add(&tmp0, &z3)        // BB + a24·E
		z3.Multiply(&x1, &z2)       // x1·(DA - CB)²
		z2.Multiply(&tmp1, &tmp0)   // E·(BB + a24·E)
	}
	x2.Swap(&x3, swap)
	z2.Swap(&z3, swap)

	z2.Invert(&z2)
	x2.Multiply(&x2, &z2)
	copy(dst[:], x2.Bytes())
	clear(k[:])
}

// DH sets dst to X25519(priv, pub) and returns ErrZeroSecret, leaving dst
// zeroed, if the result is all zeros.
func DH(dst, priv, pub *[Size]byte) error {
	ScalarMult(dst, priv, pub)
	var zero [Size]byte
	if subtle.ConstantTimeCompare(dst[:], zero[:]) == 1 {
		return ErrZeroSecret
	}
	return nil
}

// fieldPrime is p = 2^255 - 19, little-endian.
var fieldPrime = [Size]byte{
	0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
}

// IsCanonical reports whether u, a little-endian u-coordinate, is below p.
// Values with bit 255 set are never canonical. u is public, so the check runs
// in variable time.
func IsCanonical(u *[Size]byte) bool {
	for i := Size - 1; i >= 0; i-- {
		switch {
		case u[i] < fieldPrime[i]:
			return true
		case u[i] > fieldPrime[i]:
			return false
		}
	}
	return false // u == p
}
