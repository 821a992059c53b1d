// Package xeddsa implements XEdDSA signatures on Curve25519 (Signal's XEdDSA
// specification, revision 1) with the verification rules of ratchetkit's
// profile v1.
//
// XEdDSA lets an X25519 key pair sign: the Montgomery private scalar k is
// used as an Edwards scalar, and the Edwards public key is recovered from the
// Montgomery u-coordinate. Because u only fixes the Edwards point up to its
// sign, the specification picks the point with sign bit 0 and negates k when
// k·B has sign bit 1. This package signs exactly that way.
//
// libsignal deviates on purpose: it never negates k and instead stores the
// Edwards sign bit of k·B in the top bit of the signature's last byte, a bit
// that is always zero in an honest s because s < q < 2^253. Verify accepts
// both conventions by taking the sign bit from there, so spec-exact
// signatures (top bit 0) and libsignal ones verify alike, and libsignal in
// turn accepts every signature made here.
//
// Verify is stricter than both the specification and libsignal: it rejects
// s ≥ q (so signatures are not malleable), u ≥ p, u = p − 1, u-coordinates
// that are not on the curve (twist points) and public keys of small order.
// Honest signers and honest keys never produce any of these. libsignal
// 0.103 accepts s + q, ignores bit 255 of u, reduces u ≥ p, and accepts
// signatures under small-order keys, which anyone can forge without a
// private key; testdata/xeddsa/negative.json has a vector for each.
//
// Verification is cofactorless (sB − hA = R, compared as encodings), as in
// the specification and libsignal. Keys of mixed order (a prime-order point
// plus a small torsion component) are not rejected: clamped X25519 keys
// never have one, the profile does not ask for the check, and it would cost
// a full scalar multiplication per key.
package xeddsa

import (
	"bytes"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

const (
	// SignatureSize is the length of an XEdDSA signature, R || s.
	SignatureSize = 64
	// KeySize is the length of private keys and Montgomery public keys.
	KeySize = 32
	// RandomSize is the length of the signer's fresh randomness Z.
	RandomSize = 64
)

// hashPrefix1 is hash_1's domain separator: 2^256 − 1 − 1 in little-endian,
// that is 0xFE followed by 31 bytes of 0xFF (XEdDSA spec, section 2.5).
var hashPrefix1 = [32]byte{
	0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
}

// PrivateKey is an XEdDSA signing key with calculate_key_pair done once: the
// Edwards scalar a (negated where the spec says so) and the Edwards public key
// A with sign bit 0. It is secret.
type PrivateKey struct {
	a      edwards25519.Scalar
	aBytes [32]byte
	pub    [32]byte
}

// NewPrivateKey runs calculate_key_pair on the X25519 private key k (which
// is clamped first, as RFC 7748 does before any use).
func NewPrivateKey(k *[KeySize]byte) *PrivateKey {
	p := new(PrivateKey)
	var s edwards25519.Scalar
	if _, err := s.SetBytesWithClamping(k[:]); err != nil {
		panic("xeddsa: internal error: " + err.Error())
	}
	var E edwards25519.Point
	E.ScalarBaseMult(&s)
	copy(p.pub[:], E.Bytes())
	sign := int(p.pub[31] >> 7)
	p.pub[31] &= 0x7f

	// a = −k mod q if E's sign bit is 1, else k mod q. Selecting between the
	// encodings keeps this constant time in the sign, which depends on k.
	var neg edwards25519.Scalar
	neg.Negate(&s)
	pos, negB := s.Bytes(), neg.Bytes()
	subtle.ConstantTimeCopy(1-sign, p.aBytes[:], pos)
	subtle.ConstantTimeCopy(sign, p.aBytes[:], negB)
	clear(pos)
	clear(negB)
	if _, err := p.a.SetCanonicalBytes(p.aBytes[:]); err != nil {
		panic("xeddsa: internal error: " + err.Error())
	}
	s = edwards25519.Scalar{}
	return p
}

// EdwardsPublicKey returns A, the Edwards encoding of the public key with
// sign bit 0.
func (p *PrivateKey) EdwardsPublicKey() [32]byte { return p.pub }

// Clear wipes the secret scalar (best effort: Go may have copied it, on the
// stack or by the garbage collector, where no code can reach). p must not
// sign afterwards.
func (p *PrivateKey) Clear() {
	p.a = edwards25519.Scalar{}
	clear(p.aBytes[:])
}

// String, GoString and Format keep the scalar out of every fmt verb. They
// take the value so that a dereferenced key is redacted too.
func (p PrivateKey) String() string             { return "xeddsa.PrivateKey(REDACTED)" }
func (p PrivateKey) GoString() string           { return p.String() }
func (p PrivateKey) Format(f fmt.State, _ rune) { io.WriteString(f, p.String()) }

// Sign returns the XEdDSA signature of msg with randomness z, exactly as the
// specification's xeddsa_sign: r = hash_1(a || M || Z) mod q, R = rB,
// h = SHA-512(R || A || M) mod q, s = r + h·a mod q. The top bit of the
// result is always 0. z must be fresh random bytes for every signature.
func (p *PrivateKey) Sign(msg []byte, z *[RandomSize]byte) [SignatureSize]byte {
	return sign(&p.a, p.aBytes[:], p.pub[:], msg, z)
}

// sign is the signing equation shared by Sign and SignLibsignalStyle, which
// differ only in their inputs: the scalar a, the secret bytes hashed into
// the nonce (nonceKey), and the Edwards public key encoding pub that goes
// into h. r = hash_1(nonceKey || M || Z) mod q, R = rB,
// h = SHA-512(R || pub || M) mod q, s = r + h·a mod q.
func sign(a *edwards25519.Scalar, nonceKey, pub, msg []byte, z *[RandomSize]byte) [SignatureSize]byte {
	var digest [64]byte
	h := sha512.New()
	h.Write(hashPrefix1[:])
	h.Write(nonceKey)
	h.Write(msg)
	h.Write(z[:])
	h.Sum(digest[:0])
	var r edwards25519.Scalar
	if _, err := r.SetUniformBytes(digest[:]); err != nil {
		panic("xeddsa: internal error: " + err.Error())
	}
	var R edwards25519.Point
	R.ScalarBaseMult(&r)

	var sig [SignatureSize]byte
	copy(sig[:32], R.Bytes())

	h.Reset()
	h.Write(sig[:32])
	h.Write(pub)
	h.Write(msg)
	h.Sum(digest[:0])
	var hs edwards25519.Scalar
	if _, err := hs.SetUniformBytes(digest[:]); err != nil {
		panic("xeddsa: internal error: " + err.Error())
	}
	var s edwards25519.Scalar
	s.MultiplyAdd(&hs, a, &r)
	copy(sig[32:], s.Bytes())
	r = edwards25519.Scalar{}
	clear(digest[:])
	return sig
}

// PublicKey is a verification key: the Montgomery u-coordinate together with
// its Edwards point of sign 0, converted and checked once. Only NewPublicKey
// makes a usable one.
type PublicKey struct {
	u  [KeySize]byte
	A  edwards25519.Point // sign bit 0
	nA edwards25519.Point // −A, sign bit 1
	// enc[0] and enc[1] are the encodings of A and −A.
	enc [2][32]byte
}

var (
	errKeyLength    = errors.New("xeddsa: public key is not 32 bytes")
	errNonCanonical = errors.New("xeddsa: public key u-coordinate is not below p")
	errMinusOne     = errors.New("xeddsa: public key u = p − 1 has no Edwards point")
	errNotOnCurve   = errors.New("xeddsa: public key is not on the curve")
	errSmallOrder   = errors.New("xeddsa: public key has small order")
)

var (
	feOne      = new(field.Element).One()
	feMinusOne = new(field.Element).Negate(feOne)
	// feD is the twisted Edwards curve constant d = −121665/121666.
	feD = func() *field.Element {
		var num, den field.Element
		num.Mult32(feOne, 121665)
		num.Negate(&num)
		den.Mult32(feOne, 121666)
		den.Invert(&den)
		return num.Multiply(&num, &den)
	}()
	identity = edwards25519.NewIdentityPoint()
)

// NewPublicKey converts and validates the Montgomery public key u. It fails
// for u ≥ p, u = p − 1, points on the twist and points of small order.
func NewPublicKey(u []byte) (*PublicKey, error) {
	pk := new(PublicKey)
	if err := pk.set(u); err != nil {
		return nil, err
	}
	return pk, nil
}

// set converts u to the Edwards point A with sign bit 0. The birational map
// of RFC 7748 section 4.1 gives y = (u − 1)/(u + 1), and the curve equation
// gives x² = (y² − 1)/(d·y² + 1). Written over N = u − 1 and D = u + 1 that
// is x² = a/b with a = N² − D² and b = d·N² + D², and one inverse square
// root yields both unknowns: with w = 1/√(a·b·D²),
//
//	x = a·D·w   (up to sign)   and   1/D = a·b·D·w²,
//
// so the conversion costs one exponentiation instead of an inversion for y
// plus a square root for x. a·b is a square exactly when u is on the curve
// rather than on its twist.
func (pk *PublicKey) set(u []byte) error {
	if len(u) != KeySize {
		return errKeyLength
	}
	var fu field.Element
	if _, err := fu.SetBytes(u); err != nil {
		return errKeyLength
	}
	// field.Element.SetBytes accepts non-canonical input; a canonical value
	// re-encodes to the same bytes. Everything here is public, so variable
	// time is fine.
	if !bytes.Equal(fu.Bytes(), u) {
		return errNonCanonical
	}
	if fu.Equal(feMinusOne) == 1 {
		return errMinusOne // D = 0: no Edwards point
	}
	if fu.Equal(new(field.Element)) == 1 {
		return errSmallOrder // (0, −1), of order 2; a = 0 below
	}
	var N, D, N2, D2, a, b, v, w, x, y, t field.Element
	N.Subtract(&fu, feOne)
	D.Add(&fu, feOne)
	N2.Square(&N)
	D2.Square(&D)
	a.Subtract(&N2, &D2)
	b.Multiply(feD, &N2)
	b.Add(&b, &D2)
	v.Multiply(&a, &b)
	t.Multiply(&v, &D2) // a·b·D²
	if _, sq := w.SqrtRatio(feOne, &t); sq != 1 {
		return errNotOnCurve
	}
	x.Multiply(&a, &D)
	x.Multiply(&x, &w)
	x.Absolute(&x) // sign bit 0
	t.Square(&w)
	t.Multiply(&t, &v)
	t.Multiply(&t, &D) // 1/D
	y.Multiply(&N, &t)
	t.Multiply(&x, &y)
	if _, err := pk.A.SetExtendedCoordinates(&x, &y, feOne, &t); err != nil {
		return errNotOnCurve // unreachable: x and y satisfy the curve equation
	}
	var c edwards25519.Point
	if c.MultByCofactor(&pk.A).Equal(identity) == 1 {
		return errSmallOrder
	}
	pk.nA.Negate(&pk.A)
	// A has sign bit 0, so its encoding is y; −A has the same y and x ≠ 0
	// negated, whose parity is the opposite: the encodings differ in bit 255
	// only.
	copy(pk.enc[0][:], y.Bytes())
	pk.enc[1] = pk.enc[0]
	pk.enc[1][31] |= 0x80
	copy(pk.u[:], u)
	return nil
}

// Verify reports whether sig is a valid signature of msg under pk, following
// profile v1: the Edwards sign bit comes from the top bit of sig[63] (always 0
// for spec-exact signers, the key's sign for libsignal), s must be canonical,
// and the encoding of sB − hA must equal R.
func (pk *PublicKey) Verify(msg, sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	sign := sig[63] >> 7
	var sBytes [32]byte
	copy(sBytes[:], sig[32:])
	sBytes[31] &= 0x7f
	var s edwards25519.Scalar
	if _, err := s.SetCanonicalBytes(sBytes[:]); err != nil {
		return false
	}
	A, enc := &pk.A, &pk.enc[0]
	if sign == 1 {
		A, enc = &pk.nA, &pk.enc[1]
	}

	var digest [64]byte
	h := sha512.New()
	h.Write(sig[:32])
	h.Write(enc[:])
	h.Write(msg)
	h.Sum(digest[:0])
	var k edwards25519.Scalar
	if _, err := k.SetUniformBytes(digest[:]); err != nil {
		return false
	}
	k.Negate(&k)
	// sB − hA, variable time: every input here is public.
	var R edwards25519.Point
	R.VarTimeDoubleScalarBaseMult(&k, A, &s)
	return subtle.ConstantTimeCompare(R.Bytes(), sig[:32]) == 1
}

// Verify checks sig over msg under the Montgomery public key u. It is
// NewPublicKey followed by PublicKey.Verify; an invalid key verifies nothing.
func Verify(u, msg, sig []byte) bool {
	var pk PublicKey
	if pk.set(u) != nil {
		return false
	}
	return pk.Verify(msg, sig)
}
