package xeddsa

import (
	"crypto/sha512"

	"filippo.io/edwards25519"
)

// SignLibsignalStyle signs msg the way libsignal does, for tests and vector
// generation only: it never negates the scalar, hashes the clamped private
// key bytes (not the reduced scalar) into the nonce, and stores the Edwards
// sign bit of k·B in the top bit of the last signature byte. Verify accepts
// its output; the library itself always signs spec-exactly with Sign.
func SignLibsignalStyle(k *[KeySize]byte, msg []byte, z *[RandomSize]byte) [SignatureSize]byte {
	clamped := *k
	clamped[0] &= 248
	clamped[31] &= 127
	clamped[31] |= 64
	var a edwards25519.Scalar
	if _, err := a.SetBytesWithClamping(clamped[:]); err != nil {
		panic("xeddsa: internal error: " + err.Error())
	}
	var A edwards25519.Point
	A.ScalarBaseMult(&a)
	pub := A.Bytes()

	var digest [64]byte
	h := sha512.New()
	h.Write(hashPrefix1[:])
	h.Write(clamped[:])
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
	s.MultiplyAdd(&hs, &a, &r)
	copy(sig[32:], s.Bytes())
	sig[63] |= pub[31] & 0x80
	clear(clamped[:])
	return sig
}
