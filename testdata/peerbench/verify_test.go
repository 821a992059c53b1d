package peerbench

import (
	"crypto/ed25519"
	"testing"

	"filippo.io/edwards25519/field"
	"go.mau.fi/libsignal/ecc"

	"github.com/ratchetkit/ratchetkit/internal/testutil"
	"github.com/ratchetkit/ratchetkit/keys"
)

// msg is as long as keys' own benchmark message.
var msg = make([]byte, 128)

type fixture struct {
	edPub  ed25519.PublicKey
	edSig  []byte
	rk     *keys.PublicKey // cached Edwards form after the first Verify
	rkRaw  []byte
	rkSig  []byte // spec-exact XEdDSA, from keys.IdentityKeyPair.Sign
	mauPub ecc.ECPublicKeyable
	mauSig [64]byte // libsignal-style, from ecc.CalculateSignature
}

func newFixture(tb testing.TB) *fixture {
	edPub, edPriv, err := ed25519.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	ik, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		tb.Fatal(err)
	}
	mk, err := ecc.GenerateKeyPair()
	if err != nil {
		tb.Fatal(err)
	}
	f := &fixture{
		edPub: edPub, edSig: ed25519.Sign(edPriv, msg),
		rk: ik.PublicKey(), rkRaw: ik.PublicKey().Bytes(), rkSig: ik.Sign(msg),
		mauPub: mk.PublicKey(), mauSig: ecc.CalculateSignature(mk.PrivateKey(), msg),
	}
	if !f.ed25519() || !f.ratchetkit() || !f.ratchetkitDecode() || !f.mau() || !f.composed() {
		tb.Fatal("a valid signature was rejected")
	}
	return f
}

func (f *fixture) ed25519() bool    { return ed25519.Verify(f.edPub, msg, f.edSig) }
func (f *fixture) ratchetkit() bool { return f.rk.Verify(msg, f.rkSig) }

// ratchetkitDecode parses the key first, as a receiver of a bundle does:
// the Edwards form is converted again on every call.
func (f *fixture) ratchetkitDecode() bool {
	k, err := keys.NewPublicKey(f.rkRaw)
	return err == nil && k.Verify(msg, f.rkSig)
}

func (f *fixture) mau() bool { return ecc.VerifySignature(f.mauPub, msg, f.mauSig) }

// composed is go.mau.fi/libsignal's verification without its logging: the
// Edwards y = (u − 1)/(u + 1) by one field inversion, the sign bit moved
// from the signature into the key, then crypto/ed25519.Verify.
func (f *fixture) composed() bool {
	u := f.mauPub.PublicKey()
	u[31] &= 0x7f
	var x, one, num, den, y field.Element
	if _, err := x.SetBytes(u[:]); err != nil {
		return false
	}
	one.One()
	num.Subtract(&x, &one)
	den.Add(&x, &one)
	den.Invert(&den)
	y.Multiply(&num, &den)
	var pub [32]byte
	copy(pub[:], y.Bytes())
	sig := f.mauSig
	pub[31] |= sig[63] & 0x80
	sig[63] &= 0x7f
	return ed25519.Verify(pub[:], msg, sig[:])
}

func (f *fixture) impls() []struct {
	name string
	fn   func() bool
} {
	return []struct {
		name string
		fn   func() bool
	}{
		{"ed25519", f.ed25519},
		{"ratchetkit", f.ratchetkit},
		{"ratchetkit-decode", f.ratchetkitDecode},
		{"mau", f.mau},
		{"composed", f.composed},
	}
}

// TestInterop checks that each side accepts the other's signatures and
// rejects a flipped bit, so that the benchmarks compare working verifiers.
func TestInterop(t *testing.T) {
	f := newFixture(t)
	k, err := keys.NewPublicKey(func() []byte { u := f.mauPub.PublicKey(); return u[:] }())
	if err != nil {
		t.Fatal(err)
	}
	if !k.Verify(msg, f.mauSig[:]) {
		t.Error("ratchetkit rejects go.mau.fi/libsignal's signature")
	}
	var rkSig [64]byte
	copy(rkSig[:], f.rkSig)
	var rkU [32]byte
	copy(rkU[:], f.rkRaw)
	if !ecc.VerifySignature(ecc.NewDjbECPublicKey(rkU), msg, rkSig) {
		t.Error("go.mau.fi/libsignal rejects ratchetkit's signature")
	}
	f.rkSig[5] ^= 1
	f.mauSig[5] ^= 1
	f.edSig[5] ^= 1
	for _, impl := range f.impls() {
		if impl.fn() {
			t.Errorf("%s accepts a corrupted signature", impl.name)
		}
	}
}

// BenchmarkVerify measures each verifier on its own, wall clock.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	for _, impl := range f.impls() {
		b.Run("impl="+impl.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !impl.fn() {
					b.Fatal("rejected")
				}
			}
		})
	}
}

// BenchmarkRatio interleaves each verifier with crypto/ed25519.Verify, one
// call of each per iteration, timed on the thread's CPU clock, and reports
// their ratio (x-floor, the floor being Ed25519): on a shared machine, wall-clock runs of one
// verifier after another swing by far more than the differences measured.
func BenchmarkRatio(b *testing.B) {
	f := newFixture(b)
	for _, impl := range f.impls()[1:] {
		b.Run("impl="+impl.name, func(b *testing.B) {
			testutil.Interleave(b, func() { f.ed25519() }, func() { impl.fn() })
		})
	}
}
