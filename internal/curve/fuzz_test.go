package curve

import (
	"bytes"
	"crypto/ecdh"
	"testing"
)

// FuzzScalarMult checks ScalarMult, DH and PublicKey against crypto/ecdh for
// arbitrary scalars and u-coordinates (crypto/ecdh accepts every 32-byte
// u). Inputs are cut or zero-padded to 32 bytes. The seed corpus in
// testdata/fuzz holds the RFC 7748 vectors and the small-order points.
func FuzzScalarMult(f *testing.F) {
	f.Fuzz(func(t *testing.T, scalar, point []byte) {
		var k, u, out, dh, pub [Size]byte
		copy(k[:], scalar)
		copy(u[:], point)
		k0, u0 := k, u

		ScalarMult(&out, &k, &u)
		err := DH(&dh, &k, &u)
		PublicKey(&pub, &k)
		if k != k0 || u != u0 {
			t.Fatal("inputs modified")
		}

		priv, perr := ecdh.X25519().NewPrivateKey(k[:])
		remote, rerr := ecdh.X25519().NewPublicKey(u[:])
		if perr != nil || rerr != nil {
			t.Fatalf("crypto/ecdh refused 32-byte inputs: %v, %v", perr, rerr)
		}
		if !bytes.Equal(pub[:], priv.PublicKey().Bytes()) {
			t.Fatalf("PublicKey = %x, crypto/ecdh says %x", pub, priv.PublicKey().Bytes())
		}
		want, werr := priv.ECDH(remote)
		if werr != nil {
			// crypto/ecdh refuses exactly the all-zero output.
			if out != ([Size]byte{}) || err != ErrZeroSecret || dh != ([Size]byte{}) {
				t.Fatalf("crypto/ecdh refused (%v) but ScalarMult = %x, DH = %x, %v", werr, out, dh, err)
			}
			return
		}
		if !bytes.Equal(out[:], want) || err != nil || dh != out {
			t.Fatalf("ScalarMult = %x, DH = %x, %v; crypto/ecdh says %x", out, dh, err, want)
		}
	})
}
