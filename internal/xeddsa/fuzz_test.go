package xeddsa

import (
	"bytes"
	"math/big"
	"testing"

	"filippo.io/edwards25519"
)

// refVerify is profile v1's verification written out plainly: math/big for
// the key checks and the Montgomery-to-Edwards map, constant-time
// edwards25519 multiplications for sB − hA. It shares no code with Verify.
func refVerify(u, msg, sig []byte) bool {
	if len(u) != 32 || len(sig) != 64 {
		return false
	}
	bu := fromLE(u)
	if bu.Cmp(bigP) >= 0 || bu.Cmp(new(big.Int).Sub(bigP, big.NewInt(1))) == 0 || !onCurve(bu) {
		return false
	}
	A, Aenc := edwardsFromU(bu)
	if new(edwards25519.Point).MultByCofactor(A).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return false
	}
	s := sOf(sig)
	if s.Cmp(bigQ) >= 0 {
		return false
	}
	if sig[63]>>7 == 1 {
		A = new(edwards25519.Point).Negate(A)
		Aenc = A.Bytes()
	}
	h := hashScalar(sig[:32], Aenc, msg)
	ss, err := new(edwards25519.Scalar).SetCanonicalBytes(le32(s))
	if err != nil {
		return false
	}
	R := new(edwards25519.Point).ScalarBaseMult(ss)
	R.Subtract(R, new(edwards25519.Point).ScalarMult(h, A))
	return bytes.Equal(R.Bytes(), sig[:32])
}

// FuzzVerify runs Verify and NewPublicKey+PublicKey.Verify on arbitrary
// (u, msg, sig) and requires both to agree with refVerify, and never to
// panic. Seeds: testdata/fuzz/FuzzVerify (valid libsignal, spec and
// libsignal-style signatures and named negative cases), plus every vector
// of the testdata/xeddsa files added at run time.
func FuzzVerify(f *testing.F) {
	var lib libsignalFile
	loadJSON(f, "libsignal.json", &lib)
	for _, v := range lib.Vectors[:16] {
		f.Add([]byte(v.Pub[1:]), []byte(v.Msg), []byte(v.Sig))
	}
	var kat katFile
	loadJSON(f, "kat.json", &kat)
	for _, v := range append(kat.Spec[:8], kat.LibsignalStyle[:8]...) {
		f.Add([]byte(v.Pub[1:]), []byte(v.Msg), []byte(v.Sig))
	}
	var neg negativeFile
	loadJSON(f, "negative.json", &neg)
	for _, c := range neg.Cases {
		f.Add([]byte(c.Pub), []byte(c.Msg), []byte(c.Sig))
	}
	f.Fuzz(func(t *testing.T, u, msg, sig []byte) {
		got := Verify(u, msg, sig)
		pk, err := NewPublicKey(u)
		if viaKey := err == nil && pk.Verify(msg, sig); viaKey != got {
			t.Fatalf("Verify = %v, PublicKey.Verify = %v (%v)", got, viaKey, err)
		}
		if want := refVerify(u, msg, sig); got != want {
			t.Fatalf("Verify(%x, %x, %x) = %v, reference says %v", u, msg, sig, got, want)
		}
	})
}
