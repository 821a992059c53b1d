package pqxdh

import (
	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"

	"github.com/ratchetkit/ratchetkit/keys"
)

// lMinus1 is the scalar ℓ − 1, with ℓ = 2^252 + 27742317777372353535851937790883648493
// the order of the prime-order subgroup, little-endian.
var lMinus1 = func() *edwards25519.Scalar {
	b := [32]byte{
		0xec, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
	}
	s, err := edwards25519.NewScalar().SetCanonicalBytes(b[:])
	if err != nil {
		panic("pqxdh: bad constant ℓ − 1")
	}
	return s
}()

// canonicalBaseKey reports whether the initiator's base key passes
// libsignal's is_canonical: bit 255 clear and u < p (keys.DecodePublicKey
// already guarantees both), and the Edwards point with y = (u − 1)/(u + 1)
// and sign 0 exists (u ≠ −1, and u is on the curve, not its twist) and is
// torsion-free, ℓ·P = 0. Every key made by X25519 from a clamped scalar
// passes; small-order keys and keys with a torsion component do not.
//
// The key is public, so nothing here needs to be constant time; the check
// costs one scalar multiplication, which is why it runs only on the base
// key, as in libsignal.
func canonicalBaseKey(k *keys.PublicKey) bool {
	u, err := new(field.Element).SetBytes(k.Bytes())
	if err != nil {
		return false
	}
	one := new(field.Element).One()
	den := new(field.Element).Add(u, one)
	if den.Equal(new(field.Element).Zero()) == 1 {
		return false // u = −1 has no Edwards image
	}
	y := new(field.Element).Multiply(new(field.Element).Subtract(u, one), new(field.Element).Invert(den))
	p, err := new(edwards25519.Point).SetBytes(y.Bytes()) // sign bit 0
	if err != nil {
		return false // a twist point
	}
	// (ℓ − 1)·P + P = ℓ·P, the identity exactly when P is torsion-free.
	q := new(edwards25519.Point).ScalarMult(lMinus1, p)
	q.Add(q, p)
	return q.Equal(edwards25519.NewIdentityPoint()) == 1
}
