package xeddsa

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/edwards25519"
)

// keyErrors maps the key_error names of negative.json to the errors
// NewPublicKey must return.
var keyErrors = map[string]error{
	"length":        errKeyLength,
	"non_canonical": errNonCanonical,
	"minus_one":     errMinusOne,
	"not_on_curve":  errNotOnCurve,
	"small_order":   errSmallOrder,
}

func mustArray32(t testing.TB, b []byte) *[32]byte {
	t.Helper()
	if len(b) != 32 {
		t.Fatalf("want 32 bytes, got %d", len(b))
	}
	return (*[32]byte)(b)
}

func mustArray64(t testing.TB, b []byte) *[64]byte {
	t.Helper()
	if len(b) != 64 {
		t.Fatalf("want 64 bytes, got %d", len(b))
	}
	return (*[64]byte)(b)
}

// verifyAll checks sig through both entry points and returns their common
// verdict, failing the test if they disagree.
func verifyAll(t testing.TB, u, msg, sig []byte) bool {
	t.Helper()
	v1 := Verify(u, msg, sig)
	pk, err := NewPublicKey(u)
	v2 := err == nil && pk.Verify(msg, sig)
	if v1 != v2 {
		t.Fatalf("Verify = %v but NewPublicKey+Verify = %v (key error %v)", v1, v2, err)
	}
	return v1
}

// TestLibsignalKAT checks libsignal's own test_signature vector: a
// libsignal-convention signature with the Edwards sign bit 1.
func TestLibsignalKAT(t *testing.T) {
	var kat libsignalKAT
	loadJSON(t, "libsignal_kat.json", &kat)
	if got := ecdhPublic(t, kat.Priv); !bytes.Equal(got, kat.Pub) {
		t.Fatalf("public key %x, want %x", got, kat.Pub)
	}
	if kat.Sig[63]>>7 != 1 || edwardsSign(kat.Priv) != 1 {
		t.Fatal("the KAT is meant to carry sign bit 1")
	}
	if !verifyAll(t, kat.Pub, kat.Msg, kat.Sig) {
		t.Fatal("libsignal's known-answer signature rejected")
	}
	// libsignal's test flips the low bit of every byte; negative.json flips
	// every bit. This is the same check, kept beside the vector.
	for i := range kat.Sig {
		sig := bytes.Clone(kat.Sig)
		sig[i] ^= 1
		if verifyAll(t, kat.Pub, kat.Msg, sig) {
			t.Errorf("accepted with byte %d changed", i)
		}
	}
}

type libsignalFile struct {
	LibsignalClient string `json:"libsignal_client"`
	Vectors         []struct {
		Priv        hexBytes `json:"priv"`
		PrivClamped hexBytes `json:"priv_clamped"`
		Pub         hexBytes `json:"pub"`
		Msg         hexBytes `json:"msg"`
		Sig         hexBytes `json:"sig"`
		EdwardsSign int      `json:"edwards_sign"`
	} `json:"vectors"`
}

// TestLibsignalVectors verifies signatures made by libsignal-client itself.
func TestLibsignalVectors(t *testing.T) {
	var f libsignalFile
	loadJSON(t, "libsignal.json", &f)
	if f.LibsignalClient != "0.103.0" {
		t.Fatalf("vectors from libsignal-client %q, want 0.103.0", f.LibsignalClient)
	}
	if len(f.Vectors) < 200 {
		t.Fatalf("%d libsignal vectors, want at least 200", len(f.Vectors))
	}
	signs, lens := 0, map[int]bool{}
	for i, v := range f.Vectors {
		clamped := bytes.Clone(v.Priv)
		clamped[0] &= 248
		clamped[31] = clamped[31]&127 | 64
		switch {
		case !bytes.Equal(clamped, v.PrivClamped):
			t.Errorf("vector %d: libsignal stored %x, clamping gives %x", i, v.PrivClamped, clamped)
		case len(v.Pub) != 33 || v.Pub[0] != 0x05 || !bytes.Equal(ecdhPublic(t, v.Priv), v.Pub[1:]):
			t.Errorf("vector %d: public key %x does not match the private key", i, v.Pub)
		case edwardsSign(v.Priv) != v.EdwardsSign || int(v.Sig[63]>>7) != v.EdwardsSign:
			t.Errorf("vector %d: sign bit of sig[63] is %d, Edwards sign %d, recorded %d",
				i, v.Sig[63]>>7, edwardsSign(v.Priv), v.EdwardsSign)
		case !verifyAll(t, v.Pub[1:], v.Msg, v.Sig):
			t.Errorf("vector %d: libsignal's signature rejected", i)
		}
		signs += v.EdwardsSign
		lens[len(v.Msg)] = true
	}
	// About half of libsignal's signatures carry the sign bit; both halves
	// and the empty message must be represented for the file to mean much.
	if signs < len(f.Vectors)/4 || signs > 3*len(f.Vectors)/4 || !lens[0] {
		t.Errorf("%d of %d vectors with sign bit 1, empty message present: %v", signs, len(f.Vectors), lens[0])
	}
}

// TestOurs checks the committed signatures made by Sign and
// SignLibsignalStyle (TestVectorFiles checks that they are reproduced byte
// for byte).
func TestOurs(t *testing.T) {
	var f oursFile
	loadJSON(t, "ours.json", &f)
	if len(f.Spec) < 200 {
		t.Fatalf("%d spec signatures, want at least 200", len(f.Spec))
	}
	for name, vs := range map[string][]signVector{"spec": f.Spec, "libsignal_style": f.LibsignalStyle} {
		for i, v := range vs {
			if !verifyAll(t, v.Pub[1:], v.Msg, v.Sig) {
				t.Errorf("%s %d: rejected", name, i)
			}
			if name == "spec" && v.Sig[63]&0x80 != 0 {
				t.Errorf("spec %d: sig[63] bit 7 set in a spec-exact signature", i)
			}
		}
	}
}

type katFile struct {
	Spec           []signVector `json:"spec"`
	LibsignalStyle []signVector `json:"libsignal_style"`
}

// TestKAT reproduces, byte for byte, the fixed-Z signatures of the
// independent signer in testdata/xeddsa/gen.mjs.
func TestKAT(t *testing.T) {
	var f katFile
	loadJSON(t, "kat.json", &f)
	for name, c := range map[string]struct {
		vs   []signVector
		sign func(k *[32]byte, msg []byte, z *[64]byte) [64]byte
	}{
		"spec": {f.Spec, func(k *[32]byte, msg []byte, z *[64]byte) [64]byte {
			return NewPrivateKey(k).Sign(msg, z)
		}},
		"libsignal_style": {f.LibsignalStyle, SignLibsignalStyle},
	} {
		t.Run(name, func(t *testing.T) {
			signs := 0
			for i, v := range c.vs {
				got := c.sign(mustArray32(t, v.Priv), v.Msg, mustArray64(t, v.Z))
				if !bytes.Equal(got[:], v.Sig) {
					t.Errorf("vector %d (edwards sign %d): got %x, want %x", i, v.EdwardsSign, got, v.Sig)
				}
				if !verifyAll(t, v.Pub[1:], v.Msg, v.Sig) {
					t.Errorf("vector %d: rejected", i)
				}
				signs += v.EdwardsSign
			}
			if len(c.vs) < 20 || signs < 10 || len(c.vs)-signs < 10 {
				t.Errorf("%d vectors, %d with sign bit 1: want ≥ 20 with ≥ 10 of each sign", len(c.vs), signs)
			}
		})
	}
}

// TestNegativeVectors runs every vector of negative.json: the valid ones
// verify, and every flip and case is rejected, with the expected key error.
func TestNegativeVectors(t *testing.T) {
	var f negativeFile
	loadJSON(t, "negative.json", &f)
	for _, v := range f.Valid {
		if !verifyAll(t, v.Pub, v.Msg, v.Sig) {
			t.Errorf("valid vector %s rejected", v.Name)
		}
	}
	n := 0
	for _, fs := range f.Flips {
		v := f.Valid[fs.Valid]
		for bit := range fs.Bits {
			pub, msg, sig := v.Pub, v.Msg, v.Sig
			switch fs.Field {
			case "pub":
				pub = flipBit(pub, bit)
			case "msg":
				msg = flipBit(msg, bit)
			case "sig":
				sig = flipBit(sig, bit)
			default:
				t.Fatalf("unknown field %q", fs.Field)
			}
			if verifyAll(t, pub, msg, sig) {
				t.Errorf("%s: accepted with bit %d of %s flipped", v.Name, bit, fs.Field)
			}
			n++
		}
	}
	for _, c := range f.Cases {
		if verifyAll(t, c.Pub, c.Msg, c.Sig) {
			t.Errorf("%s accepted (%s)", c.Name, c.Reason)
		}
		_, err := NewPublicKey(c.Pub)
		if want := keyErrors[c.KeyError]; c.KeyError != "" && want == nil {
			t.Errorf("%s: unknown key_error %q", c.Name, c.KeyError)
		} else if !errors.Is(err, want) {
			t.Errorf("%s: NewPublicKey error %v, want %v", c.Name, err, want)
		}
		n++
	}
	t.Logf("%d negative vectors rejected", n)
}

type verdictsFile struct {
	LibsignalClient    string `json:"libsignal_client"`
	OursSHA256         string `json:"ours_sha256"`
	NegativeSHA256     string `json:"negative_sha256"`
	OursSpec           []bool `json:"ours_spec"`
	OursLibsignalStyle []bool `json:"ours_libsignal_style"`
	NegativeValid      []bool `json:"negative_valid"`
	NegativeFlips      []struct {
		Valid        int    `json:"valid"`
		Field        string `json:"field"`
		Bits         int    `json:"bits"`
		AcceptedBits []int  `json:"accepted_bits"`
	} `json:"negative_flips"`
	NegativeCases []struct {
		Name     string `json:"name"`
		Accepted bool   `json:"accepted"`
	} `json:"negative_cases"`
}

// TestLibsignalVerdicts checks what libsignal said about our files: it
// accepts every signature Sign made, and it accepts exactly the negative
// vectors that negative.json says it does (where we are stricter).
func TestLibsignalVerdicts(t *testing.T) {
	var v verdictsFile
	loadJSON(t, "verdicts.json", &v)
	for name, want := range map[string]string{"ours.json": v.OursSHA256, "negative.json": v.NegativeSHA256} {
		b, err := os.ReadFile(filepath.Join(vectorDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != want {
			t.Fatalf("verdicts.json was made from another %s; rerun gen.mjs (testdata/xeddsa/README.md)", name)
		}
	}
	var ours oursFile
	loadJSON(t, "ours.json", &ours)
	if len(v.OursSpec) != len(ours.Spec) || len(v.OursLibsignalStyle) != len(ours.LibsignalStyle) {
		t.Fatal("verdict counts differ from ours.json")
	}
	for i, ok := range v.OursSpec {
		if !ok {
			t.Errorf("libsignal rejected our spec signature %d", i)
		}
	}
	for i, ok := range v.OursLibsignalStyle {
		if !ok {
			t.Errorf("libsignal rejected our libsignal-style signature %d", i)
		}
	}

	var neg negativeFile
	loadJSON(t, "negative.json", &neg)
	for i, ok := range v.NegativeValid {
		if !ok {
			t.Errorf("libsignal rejected valid vector %s", neg.Valid[i].Name)
		}
	}
	if len(v.NegativeFlips) != len(neg.Flips) || len(v.NegativeCases) != len(neg.Cases) {
		t.Fatal("verdict counts differ from negative.json")
	}
	for i, got := range v.NegativeFlips {
		want := neg.Flips[i]
		if got.Valid != want.Valid || got.Field != want.Field || got.Bits != want.Bits ||
			!equalInts(got.AcceptedBits, want.LibsignalAcceptsBits) {
			t.Errorf("flips of %s.%s: libsignal accepted bits %v, negative.json says %v",
				neg.Valid[want.Valid].Name, want.Field, got.AcceptedBits, want.LibsignalAcceptsBits)
		}
	}
	stricter := 0
	for i, got := range v.NegativeCases {
		want := neg.Cases[i]
		if got.Name != want.Name || got.Accepted != want.LibsignalAccepts {
			t.Errorf("%s: libsignal accepted = %v, negative.json says %v", want.Name, got.Accepted, want.LibsignalAccepts)
		}
		if got.Accepted {
			stricter++
		}
	}
	t.Logf("libsignal %s accepts %d of %d negative cases that we reject", v.LibsignalClient, stricter, len(v.NegativeCases))
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSignVerifyRandom is a seeded randomized round trip in both
// conventions, with a random single-bit flip that must be rejected.
func TestSignVerifyRandom(t *testing.T) {
	r := drbg("test/random")
	n := 200
	if testing.Short() {
		n = 20
	}
	for i := range n {
		var k [32]byte
		var z [64]byte
		r.Read(k[:])
		r.Read(z[:])
		msg := randBytes(r, int(r.Uint64()%300))
		u := ecdhPublic(t, k[:])
		priv := NewPrivateKey(&k)
		for _, sig := range [][64]byte{priv.Sign(msg, &z), SignLibsignalStyle(&k, msg, &z)} {
			if !verifyAll(t, u, msg, sig[:]) {
				t.Fatalf("round %d: signature rejected", i)
			}
			bit := int(r.Uint64() % 512)
			if verifyAll(t, u, msg, flipBit(sig[:], bit)) {
				t.Fatalf("round %d: accepted with signature bit %d flipped", i, bit)
			}
		}
		// The Edwards key is A with sign bit 0, and its Montgomery form is u.
		A := priv.EdwardsPublicKey()
		P, err := new(edwards25519.Point).SetBytes(A[:])
		if err != nil || A[31]&0x80 != 0 || !bytes.Equal(P.BytesMontgomery(), u) {
			t.Fatalf("round %d: EdwardsPublicKey %x does not match u %x", i, A, u)
		}
	}
}

// TestSignatureRandomized checks that Z matters: two signatures of one
// message under one key with different Z differ, and both verify.
func TestSignatureRandomized(t *testing.T) {
	var k [32]byte
	k[0] = 1
	var z1, z2 [64]byte
	z2[0] = 1
	priv := NewPrivateKey(&k)
	s1, s2 := priv.Sign([]byte("m"), &z1), priv.Sign([]byte("m"), &z2)
	if s1 == s2 {
		t.Fatal("different Z gave the same signature")
	}
	u := ecdhPublic(t, k[:])
	if !verifyAll(t, u, []byte("m"), s1[:]) || !verifyAll(t, u, []byte("m"), s2[:]) {
		t.Fatal("rejected")
	}
}

func TestClear(t *testing.T) {
	var k [32]byte
	k[3] = 7
	priv := NewPrivateKey(&k)
	priv.Clear()
	if priv.aBytes != [32]byte{} || priv.a.Equal(edwards25519.NewScalar()) != 1 {
		t.Fatal("Clear left key material")
	}
}

func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	var k [32]byte
	var z [64]byte
	priv := NewPrivateKey(&k)
	msg := make([]byte, 100)
	sig := priv.Sign(msg, &z)
	pk, err := NewPublicKey(ecdhPublic(t, k[:]))
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(){
		"Sign":               func() { sig = priv.Sign(msg, &z) },
		"PublicKey.Verify":   func() { pk.Verify(msg, sig[:]) },
		"Verify":             func() { Verify(pk.u[:], msg, sig[:]) },
		"SignLibsignalStyle": func() { sig = SignLibsignalStyle(&k, msg, &z) },
	} {
		if n := testing.AllocsPerRun(20, f); n != 0 {
			t.Errorf("%s: %v allocations, want 0", name, n)
		}
	}
}

// TestConversionReference compares NewPublicKey's one-exponentiation
// conversion with a math/big computation of y = (u − 1)/(u + 1) and a plain
// edwards25519 decoding, on random u-coordinates (half of them on the
// twist) and on every small u.
func TestConversionReference(t *testing.T) {
	r := drbg("test/conversion")
	var us [][]byte
	for u := range int64(64) {
		us = append(us, le32(big.NewInt(u)))
	}
	for range 500 {
		b := randBytes(r, 32)
		b[31] &= 0x7f
		us = append(us, b)
	}
	curve := 0
	for _, u := range us {
		bu := fromLE(u)
		pk, err := NewPublicKey(u)
		switch {
		case bu.Cmp(bigP) >= 0:
			if !errors.Is(err, errNonCanonical) {
				t.Errorf("u=%x: error %v, want non-canonical", u, err)
			}
		case bu.Cmp(new(big.Int).Sub(bigP, big.NewInt(1))) == 0:
			if !errors.Is(err, errMinusOne) {
				t.Errorf("u=%x: error %v, want u = p − 1", u, err)
			}
		case !onCurve(bu):
			if !errors.Is(err, errNotOnCurve) {
				t.Errorf("u=%x (twist): error %v", u, err)
			}
		default:
			A, enc := edwardsFromU(bu)
			small := new(edwards25519.Point).MultByCofactor(A).Equal(edwards25519.NewIdentityPoint()) == 1
			if small {
				if !errors.Is(err, errSmallOrder) {
					t.Errorf("u=%x (small order): error %v", u, err)
				}
				continue
			}
			curve++
			if err != nil {
				t.Errorf("u=%x: %v", u, err)
				continue
			}
			negEnc := new(edwards25519.Point).Negate(A).Bytes()
			if !bytes.Equal(pk.enc[0][:], enc) || !bytes.Equal(pk.A.Bytes(), enc) ||
				!bytes.Equal(pk.enc[1][:], negEnc) || !bytes.Equal(pk.nA.Bytes(), negEnc) ||
				!bytes.Equal(pk.A.BytesMontgomery(), u) {
				t.Errorf("u=%x: converted to %x / %x, want %x / %x", u, pk.enc[0], pk.enc[1], enc, negEnc)
			}
		}
	}
	if curve < 200 {
		t.Errorf("only %d curve points among %d inputs", curve, len(us))
	}
}

// TestMixedOrderKeyAccepted pins a documented choice: a key with a torsion
// component that is not itself of small order converts without error (the
// profile rejects only small-order keys), while its torsion part alone is
// rejected.
func TestMixedOrderKeyAccepted(t *testing.T) {
	T, _ := edwardsFromU(bigU8a)
	P := new(edwards25519.Point).Add(edwards25519.NewGeneratorPoint(), T)
	if _, err := NewPublicKey(P.BytesMontgomery()); err != nil {
		t.Fatalf("mixed-order key rejected: %v", err)
	}
	if _, err := NewPublicKey(T.BytesMontgomery()); !errors.Is(err, errSmallOrder) {
		t.Fatalf("order-8 key: %v", err)
	}
}
