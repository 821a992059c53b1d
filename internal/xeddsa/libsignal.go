package xeddsa

import "filippo.io/edwards25519"

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

	sig := sign(&a, clamped[:], pub, msg, z)
	sig[63] |= pub[31] & 0x80
	clear(clamped[:])
	return sig
}
