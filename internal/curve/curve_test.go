package curve

import (
	"bytes"
	"crypto/ecdh"
	"encoding/hex"
	"encoding/json"
	"flag"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

var long = flag.Bool("long", false, "also run the 1,000,000-iteration RFC 7748 vector (minutes)")

// The field prime and the small-order u-coordinates, written out here rather
// than taken from the package.
const (
	pHex      = "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f" // p = 2^255 - 19
	pMinus1   = "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f" // order 2
	pPlus1    = "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f" // ≡ 1
	order8a   = "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"
	order8b   = "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"
	zeroHex   = "0000000000000000000000000000000000000000000000000000000000000000"
	oneHex    = "0100000000000000000000000000000000000000000000000000000000000000"
	max255Hex = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f" // 2^255 - 1
)

func h32(t testing.TB, s string) *[Size]byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != Size {
		t.Fatalf("bad 32-byte hex %q", s)
	}
	return (*[Size]byte)(b)
}

func loadRFC(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "rfc", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

type rfc7748 struct {
	ScalarMult []struct{ Scalar, U, Out string }
	Iterated   struct {
		Start   string
		Results []struct {
			Iterations int
			K          string
		}
	}
	DiffieHellman struct {
		AlicePrivate, AlicePublic, BobPrivate, BobPublic, Shared string
	}
}

func TestRFC7748ScalarMult(t *testing.T) {
	var v rfc7748
	loadRFC(t, "rfc7748.json", &v)
	if len(v.ScalarMult) != 2 {
		t.Fatalf("got %d scalar-multiplication vectors, want 2", len(v.ScalarMult))
	}
	for i, tc := range v.ScalarMult {
		var out [Size]byte
		ScalarMult(&out, h32(t, tc.Scalar), h32(t, tc.U))
		if got := hex.EncodeToString(out[:]); got != tc.Out {
			t.Errorf("vector %d: ScalarMult = %s, want %s", i, got, tc.Out)
		}
		out = [Size]byte{}
		if err := DH(&out, h32(t, tc.Scalar), h32(t, tc.U)); err != nil || hex.EncodeToString(out[:]) != tc.Out {
			t.Errorf("vector %d: DH = %x, %v", i, out, err)
		}
	}
}

func TestRFC7748Iterated(t *testing.T) {
	var v rfc7748
	loadRFC(t, "rfc7748.json", &v)
	want := map[int]string{}
	maxIter := 0
	for _, r := range v.Iterated.Results {
		want[r.Iterations] = r.K
		if r.Iterations <= 1000 || *long {
			maxIter = max(maxIter, r.Iterations)
		}
	}
	if want[1] == "" || want[1000] == "" {
		t.Fatal("vector file lacks the 1- and 1,000-iteration results")
	}
	if !*long {
		t.Log("skipping the 1,000,000-iteration vector; run with -long to include it")
	}
	k, u := *h32(t, v.Iterated.Start), *h32(t, v.Iterated.Start)
	checked := 0
	for i := 1; i <= maxIter; i++ {
		var r [Size]byte
		ScalarMult(&r, &k, &u)
		u, k = k, r
		if w, ok := want[i]; ok {
			checked++
			if got := hex.EncodeToString(k[:]); got != w {
				t.Fatalf("after %d iterations: %s, want %s", i, got, w)
			}
		}
	}
	if checked < 2 {
		t.Fatalf("checked %d iteration results", checked)
	}
}

func TestRFC7748DiffieHellman(t *testing.T) {
	var v rfc7748
	loadRFC(t, "rfc7748.json", &v)
	dh := v.DiffieHellman
	var pubA, pubB, s1, s2 [Size]byte
	PublicKey(&pubA, h32(t, dh.AlicePrivate))
	PublicKey(&pubB, h32(t, dh.BobPrivate))
	if hex.EncodeToString(pubA[:]) != dh.AlicePublic || hex.EncodeToString(pubB[:]) != dh.BobPublic {
		t.Fatalf("public keys %x, %x", pubA, pubB)
	}
	if err := DH(&s1, h32(t, dh.AlicePrivate), &pubB); err != nil {
		t.Fatal(err)
	}
	if err := DH(&s2, h32(t, dh.BobPrivate), &pubA); err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(s1[:]) != dh.Shared || s1 != s2 {
		t.Fatalf("shared secrets %x, %x, want %s", s1, s2, dh.Shared)
	}
}

// edgeScalars are private keys at the edges of clamping and of the group
// order, where a fixed-base multiplication that reduces the scalar could
// part ways with the ladder.
func edgeScalars(t *testing.T) [][Size]byte {
	var s [][Size]byte
	for _, fill := range []byte{0x00, 0xff, 0x80, 0x7f, 0x01, 0xf8, 0x07} {
		var k [Size]byte
		for i := range k {
			k[i] = fill
		}
		s = append(s, k)
	}
	// 1, 8, and the group order ℓ and its multiples 8ℓ (what clamping
	// cannot reach) and 2^254 + 8ℓ, little-endian.
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	for _, n := range []*big.Int{
		big.NewInt(1), big.NewInt(8), l, new(big.Int).Lsh(l, 3),
		new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 254), new(big.Int).Lsh(l, 3)),
		new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(8)),
	} {
		var k [Size]byte
		be := n.FillBytes(make([]byte, 40))[8:]
		for i := range k {
			k[i] = be[Size-1-i]
		}
		s = append(s, k)
	}
	if len(s) != 13 {
		t.Fatalf("%d edge scalars", len(s))
	}
	return s
}

func ecdhPublic(t testing.TB, priv *[Size]byte) []byte {
	t.Helper()
	k, err := ecdh.X25519().NewPrivateKey(priv[:])
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey().Bytes()
}

func TestPublicKeyMatchesECDH(t *testing.T) {
	keys := edgeScalars(t)
	rng := rand.NewChaCha8([32]byte{'c', 'u', 'r', 'v', 'e'})
	n := 1000
	if testing.Short() || raceEnabled {
		n = 100
	}
	for range n {
		var k [Size]byte
		rng.Read(k[:])
		keys = append(keys, k)
	}
	for _, k := range keys {
		var pub, ladder [Size]byte
		PublicKey(&pub, &k)
		if want := ecdhPublic(t, &k); !bytes.Equal(pub[:], want) {
			t.Fatalf("PublicKey(%x) = %x, crypto/ecdh says %x", k, pub, want)
		}
		// And the ladder on the base point agrees.
		ScalarMult(&ladder, &k, &[Size]byte{9})
		if pub != ladder {
			t.Fatalf("PublicKey(%x) = %x, ladder says %x", k, pub, ladder)
		}
	}
}

func TestScalarMultMatchesECDH(t *testing.T) {
	rng := rand.NewChaCha8([32]byte{'l', 'a', 'd', 'd', 'e', 'r'})
	n := 300
	if testing.Short() || raceEnabled {
		n = 50
	}
	for i := range n {
		var k, u, out [Size]byte
		rng.Read(k[:])
		rng.Read(u[:]) // any u: curve or twist, canonical or not, bit 255 set or not
		if i%4 == 0 {
			u[31] |= 0x80
		}
		ScalarMult(&out, &k, &u)
		want := ecdhAgree(t, &k, &u)
		if !bytes.Equal(out[:], want) {
			t.Fatalf("ScalarMult(%x, %x) = %x, crypto/ecdh says %x", k, u, out, want)
		}
	}
}

// ecdhAgree returns crypto/ecdh's X25519(k, u), or nil if it refuses.
func ecdhAgree(t testing.TB, k, u *[Size]byte) []byte {
	t.Helper()
	priv, err := ecdh.X25519().NewPrivateKey(k[:])
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ecdh.X25519().NewPublicKey(u[:])
	if err != nil {
		t.Fatal(err)
	}
	s, err := priv.ECDH(pub)
	if err != nil {
		return nil
	}
	return s
}

// smallOrder lists every u whose X25519 output is zero for every scalar:
// the points of order 1, 2, 4 and 8 on the curve and twist after the
// reduction RFC 7748 asks for, in canonical and non-canonical encodings,
// with and without bit 255 set.
func smallOrder(t *testing.T) map[string]*[Size]byte {
	m := map[string]*[Size]byte{}
	for name, s := range map[string]string{
		"0": zeroHex, "1": oneHex, "order8a": order8a, "order8b": order8b,
		"p-1": pMinus1, "p": pHex, "p+1": pPlus1,
	} {
		m[name] = h32(t, s)
		high := *h32(t, s)
		high[31] |= 0x80
		m[name+"+2^255"] = &high
	}
	return m
}

func TestDHSmallOrder(t *testing.T) {
	rng := rand.NewChaCha8([32]byte{'s', 'm', 'a', 'l', 'l'})
	points := smallOrder(t)
	if len(points) != 14 {
		t.Fatalf("%d small-order encodings", len(points))
	}
	for name, u := range points {
		for range 8 {
			var k, out [Size]byte
			rng.Read(k[:])
			out[0] = 0xaa // DH must overwrite, not leave, what was there
			if err := DH(&out, &k, u); err != ErrZeroSecret {
				t.Errorf("DH(k, %s) error = %v, want ErrZeroSecret", name, err)
			}
			if out != ([Size]byte{}) {
				t.Errorf("DH(k, %s) left %x in dst", name, out)
			}
			if ecdhAgree(t, &k, u) != nil {
				t.Errorf("crypto/ecdh accepts %s; the list is wrong", name)
			}
		}
	}
}

func TestDHAcceptsOrdinaryPoints(t *testing.T) {
	// A u one away from a small-order value is an ordinary point (on the
	// curve or its twist): DH must not mistake it for one.
	for _, s := range []string{
		"0200000000000000000000000000000000000000000000000000000000000000",
		"ebffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"e1eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"0900000000000000000000000000000000000000000000000000000000000000",
	} {
		var out [Size]byte
		k := [Size]byte{1, 2, 3}
		if err := DH(&out, &k, h32(t, s)); err != nil {
			t.Errorf("DH(k, %s) = %v", s, err)
		}
		if !bytes.Equal(out[:], ecdhAgree(t, &k, h32(t, s))) {
			t.Errorf("DH(k, %s) disagrees with crypto/ecdh", s)
		}
	}
}

func TestIsCanonical(t *testing.T) {
	for _, tc := range []struct {
		name, u string
		want    bool
	}{
		{"0", zeroHex, true},
		{"1", oneHex, true},
		{"9", "0900000000000000000000000000000000000000000000000000000000000000", true},
		{"p-1", pMinus1, true},
		{"p", pHex, false},
		{"p+1", pPlus1, false},
		{"2^255-1", max255Hex, false},
		{"p-2^248", "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7e", true},
		{"2^255-256", "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", true},
		{"2^254", "0000000000000000000000000000000000000000000000000000000000000040", true},
		{"2^255 (bit 255 only)", "0000000000000000000000000000000000000000000000000000000000000080", false},
		{"1+2^255", "0100000000000000000000000000000000000000000000000000000000000080", false},
		{"2^256-1", "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", false},
	} {
		if got := IsCanonical(h32(t, tc.u)); got != tc.want {
			t.Errorf("IsCanonical(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}

	// Random values, most of them near p, against math/big.
	p, _ := new(big.Int).SetString("57896044618658097711785492504343953926634992332820282019728792003956564819949", 10)
	rng := rand.NewChaCha8([32]byte{'c', 'a', 'n'})
	for range 2000 {
		var u [Size]byte
		rng.Read(u[:])
		if rng.Uint64()%4 != 0 {
			for i := 1 + int(rng.Uint64()%(Size-1)); i < Size; i++ {
				u[i] = 0xff
			}
			u[31] &= 0x7f | byte(rng.Uint64()&1)<<7
		}
		be := make([]byte, Size)
		for i := range u {
			be[Size-1-i] = u[i]
		}
		want := new(big.Int).SetBytes(be).Cmp(p) < 0
		if got := IsCanonical(&u); got != want {
			t.Fatalf("IsCanonical(%x) = %v, want %v", u, got, want)
		}
	}
}

func TestClamp(t *testing.T) {
	k := [Size]byte{}
	for i := range k {
		k[i] = 0xff
	}
	Clamp(&k)
	if k[0] != 0xf8 || k[31] != 0x7f || !bytes.Equal(k[1:31], bytes.Repeat([]byte{0xff}, 30)) {
		t.Errorf("Clamp(ff…) = %x", k)
	}
	k = [Size]byte{}
	Clamp(&k)
	if k != ([Size]byte{31: 0x40}) {
		t.Errorf("Clamp(00…) = %x", k)
	}
}

func TestScalarMultDoesNotModifyInputs(t *testing.T) {
	k := *h32(t, max255Hex)
	u := *h32(t, order8a)
	k0, u0 := k, u
	var out [Size]byte
	ScalarMult(&out, &k, &u)
	PublicKey(&out, &k)
	if k != k0 || u != u0 {
		t.Fatal("inputs modified")
	}
	// dst may alias the inputs.
	want := out
	PublicKey(&k, &k)
	if k != want {
		t.Fatalf("PublicKey with pub == priv: %x, want %x", k, want)
	}
	k = k0
	ScalarMult(&want, &k, &u)
	ScalarMult(&u, &k, &u)
	if u != want {
		t.Fatal("ScalarMult with dst == point differs")
	}
}

func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	var k, u, out [Size]byte
	k[0], u[0] = 7, 9
	for name, f := range map[string]func(){
		"PublicKey":  func() { PublicKey(&out, &k) },
		"ScalarMult": func() { ScalarMult(&out, &k, &u) },
		"DH":         func() { _ = DH(&out, &k, &u) },
	} {
		if n := testing.AllocsPerRun(10, f); n != 0 {
			t.Errorf("%s: %v allocations, want 0", name, n)
		}
	}
}
