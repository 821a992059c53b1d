package libsignaltest

import (
	"math/big"

	"filippo.io/edwards25519"
)

// order8 is a u-coordinate of order 8 on Curve25519.
var order8 = []byte{
	0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
	0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
}

// EdwardsY maps a Montgomery u (32 bytes, little-endian) to the Edwards
// y = (u − 1)/(u + 1), encoded with sign bit 0. It uses math/big, so that
// tests need not share the code under test.
func EdwardsY(u []byte) []byte {
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	r := make([]byte, 32)
	for i := range 32 {
		r[31-i] = u[i]
	}
	x := new(big.Int).SetBytes(r)
	num := new(big.Int).Mod(new(big.Int).Sub(x, big.NewInt(1)), p)
	den := new(big.Int).ModInverse(new(big.Int).Add(x, big.NewInt(1)), p)
	if den == nil {
		den = new(big.Int) // u = −1: no inverse, y = 0 is as good a refusal as any
	}
	yb := new(big.Int).Mod(new(big.Int).Mul(num, den), p).FillBytes(make([]byte, 32))
	out := make([]byte, 32)
	for i := range 32 {
		out[i] = yb[31-i]
	}
	return out
}

// AddTorsion returns the u-coordinate of P + T, where P is a point with
// u-coordinate u and T a point of order 8. X25519 with a clamped private key
// (a multiple of 8) gives the same shared secret for both, so only an
// explicit torsion check tells them apart. It returns nil if u is not on
// the curve.
func AddTorsion(u []byte) []byte {
	p, err := new(edwards25519.Point).SetBytes(EdwardsY(u))
	if err != nil {
		return nil
	}
	t, err := new(edwards25519.Point).SetBytes(EdwardsY(order8))
	if err != nil {
		panic("libsignaltest: bad order-8 point")
	}
	return new(edwards25519.Point).Add(p, t).BytesMontgomery()
}
