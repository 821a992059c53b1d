package mlkem768

import (
	"bytes"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/wycheproof"
)

// TestBarrettReduce checks barrettReduce against % on every product of two
// field elements, the widest input it gets.
func TestBarrettReduce(t *testing.T) {
	for x := uint32(0); x < q*q; x++ {
		if got := barrettReduce(x); uint32(got) != x%q {
			t.Fatalf("barrettReduce(%d) = %d, want %d", x, got, x%q)
		}
	}
	for a := uint16(0); a < 2*q; a++ {
		if got := reduceOnce(a); uint16(got) != a%q {
			t.Fatalf("reduceOnce(%d) = %d", a, got)
		}
	}
}

// TestCompress checks Compress_d and Decompress_d against their
// definitions in exact integer arithmetic, for every input.
func TestCompress(t *testing.T) {
	for _, d := range []uint8{1, 4, 10} {
		for x := uint32(0); x < q; x++ {
			// round(2^d·x/q) = ⌊(2^(d+1)·x + q) / 2q⌋
			want := ((x<<(d+1) + q) / (2 * q)) % (1 << d)
			if got := compress(fieldElement(x), d); uint32(got) != want {
				t.Fatalf("compress(%d, %d) = %d, want %d", x, d, got, want)
			}
		}
		for y := uint32(0); y < 1<<d; y++ {
			want := (2*q*y + 1<<d) >> (d + 1)
			if got := decompress(uint16(y), d); uint32(got) != want {
				t.Fatalf("decompress(%d, %d) = %d, want %d", y, d, got, want)
			}
		}
	}
}

// TestNTTRoundTrip: inverseNTT undoes ntt, and the NTT-domain product is
// the negacyclic product of R_q computed the schoolbook way.
func TestNTTRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		var f, g ringElement
		for i := range f {
			f[i] = fieldElement(r.IntN(q))
			g[i] = fieldElement(r.IntN(q))
		}
		if inverseNTT(ntt(f)) != f {
			t.Fatal("inverseNTT(ntt(f)) != f")
		}
		var want ringElement
		for i := range n {
			for j := range n {
				p := fieldMul(f[i], g[j])
				if i+j < n {
					want[i+j] = fieldAdd(want[i+j], p)
				} else {
					want[i+j-n] = fieldSub(want[i+j-n], p)
				}
			}
		}
		var acc nttElement
		fh, gh := ntt(f), ntt(g)
		nttMulAdd(&acc, &fh, &gh)
		if inverseNTT(acc) != want {
			t.Fatal("NTT product differs from the schoolbook product")
		}
	}
}

// rng is a seeded generator with Read, for reproducible inputs.
type rng struct {
	*rand.Rand
	c *rand.ChaCha8
}

func (r rng) Read(b []byte) { r.c.Read(b) }

func seeded(seed uint64) rng {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	c := rand.NewChaCha8(s)
	return rng{rand.New(c), c}
}

// keyPairs derives the key pair of seed with crypto/mlkem and here, and
// checks that the encapsulation keys agree.
func keyPairs(t testing.TB, seed []byte) (*mlkem.DecapsulationKey768, *DecapsulationKey) {
	t.Helper()
	std, err := mlkem.NewDecapsulationKey768(seed)
	if err != nil {
		t.Fatal(err)
	}
	dk, err := NewDecapsulationKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dk.EncapsulationKey(), std.EncapsulationKey().Bytes()) {
		t.Fatalf("seed %x: encapsulation keys differ", seed[:4])
	}
	return std, dk
}

// TestAgainstCryptoMLKEM compares every operation with crypto/mlkem on
// many seeds: the encapsulation key, derandomized encapsulation (whole and
// incremental) through mlkemtest, decapsulation of each other's
// ciphertexts, and implicit rejection on tampered and random ciphertexts.
func TestAgainstCryptoMLKEM(t *testing.T) {
	iters := 300
	if testing.Short() {
		iters = 30
	}
	r := seeded(7)
	for it := range iters {
		seed := make([]byte, SeedSize)
		r.Read(seed)
		m := make([]byte, 32)
		r.Read(m)
		std, dk := keyPairs(t, seed)
		ek := std.EncapsulationKey().Bytes()
		if !bytes.Equal(dk.Bytes(), std.Bytes()) {
			t.Fatalf("seed %d: Bytes differ", it)
		}
		hdr, vec, err := SplitEncapsulationKey(ek)
		if err != nil || !bytes.Equal(hdr, dk.Header()) || !bytes.Equal(vec, dk.Vector()) {
			t.Fatalf("seed %d: SplitEncapsulationKey disagrees with Header and Vector: %v", it, err)
		}
		wantK, wantC, err := mlkemtest.Encapsulate768(std.EncapsulationKey(), m)
		if err != nil {
			t.Fatal(err)
		}
		c, key, err := Encapsulate(ek, m)
		if err != nil || !bytes.Equal(c, wantC) || !bytes.Equal(key, wantK) {
			t.Fatalf("seed %d: Encapsulate differs from crypto/mlkem (%v)", it, err)
		}
		ct1, st, key1, err := Encapsulate1(hdr, m)
		if err != nil {
			t.Fatal(err)
		}
		ct2, err := st.Encapsulate2(vec)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(append(ct1, ct2...), wantC) || !bytes.Equal(key1, wantK) {
			t.Fatalf("seed %d: incremental encapsulation differs from crypto/mlkem", it)
		}
		if got, err := dk.Decapsulate(wantC[:Ciphertext1Size], wantC[Ciphertext1Size:]); err != nil || !bytes.Equal(got, wantK) {
			t.Fatalf("seed %d: Decapsulate of crypto/mlkem's ciphertext: %v", it, err)
		}
		// Implicit rejection: a flipped bit anywhere, and random bytes.
		bad := bytes.Clone(wantC)
		bad[r.IntN(len(bad))] ^= 1 << r.IntN(8)
		rnd := make([]byte, CiphertextSize)
		r.Read(rnd)
		for _, ct := range [][]byte{bad, rnd} {
			want, err := std.Decapsulate(ct)
			if err != nil {
				t.Fatal(err)
			}
			got, err := dk.DecapsulateFull(ct)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("seed %d: implicit rejection differs from crypto/mlkem", it)
			}
			if bytes.Equal(got, wantK) {
				t.Fatalf("seed %d: a tampered ciphertext gave the real key", it)
			}
		}
	}
}

// TestIncrementalHostile: Encapsulate2 refuses a vector that is not the
// header's, one that fails the modulus check, and wrong lengths, and the
// state still finishes correctly afterwards.
func TestIncrementalHostile(t *testing.T) {
	r := seeded(9)
	seed := make([]byte, SeedSize)
	r.Read(seed)
	dk, _ := NewDecapsulationKey(seed)
	r.Read(seed)
	other, _ := NewDecapsulationKey(seed)
	m := make([]byte, 32)
	r.Read(m)
	ct1, st, key, err := Encapsulate1(dk.Header(), m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Encapsulate2(other.Vector()); !errors.Is(err, ErrVectorMismatch) {
		t.Fatalf("another key's vector: %v", err)
	}
	unreduced := dk.Vector()
	unreduced[0], unreduced[1] = 0xff, unreduced[1]|0x0f // first coefficient 4095
	if _, err := st.Encapsulate2(unreduced); err == nil {
		t.Fatal("a vector with a coefficient ≥ q was accepted")
	}
	if VectorMatchesHeader(dk.Header(), unreduced) || !VectorMatchesHeader(dk.Header(), dk.Vector()) {
		t.Fatal("VectorMatchesHeader")
	}
	for _, l := range []int{0, VectorSize - 1, VectorSize + 1} {
		if _, err := st.Encapsulate2(make([]byte, l)); err == nil {
			t.Fatalf("a %d-byte vector was accepted", l)
		}
	}
	ct2, err := st.Encapsulate2(dk.Vector())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := dk.Decapsulate(ct1, ct2); !bytes.Equal(got, key) {
		t.Fatal("the state did not survive refused vectors")
	}
	for _, c := range []struct{ h, m []byte }{{dk.Header()[1:], m}, {dk.Header(), m[1:]}, {nil, nil}} {
		if _, _, _, err := Encapsulate1(c.h, c.m); err == nil {
			t.Fatal("Encapsulate1 accepted a wrong length")
		}
	}
	if _, err := dk.Decapsulate(ct1[1:], ct2); err == nil {
		t.Fatal("Decapsulate accepted a short ct1")
	}
	if _, err := dk.Decapsulate(ct1, append(ct2, 0)); err == nil {
		t.Fatal("Decapsulate accepted a long ct2")
	}
	if _, err := NewDecapsulationKey(seed[1:]); err == nil {
		t.Fatal("NewDecapsulationKey accepted a 63-byte seed")
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%x", "%s"} {
		for _, v := range []any{dk, st} {
			if out := fmt.Sprintf(verb, v); !strings.Contains(out, "REDACTED") {
				t.Fatalf("Sprintf(%q) = %.40s", verb, out)
			}
		}
	}
	dk.Clear()
	st.Clear()
	if dk.s != ([k]nttElement{}) || dk.z != ([32]byte{}) || st.m != ([32]byte{}) || st.r != ([k]nttElement{}) {
		t.Fatal("Clear left secrets")
	}
}

// mlkemGroup holds a test group of any of the ML-KEM-768 files; each file
// fills the fields it has.
type mlkemGroup struct {
	Type  string `json:"type"`
	Tests []struct {
		wycheproof.Test
		Seed wycheproof.Hex `json:"seed"`
		M    wycheproof.Hex `json:"m"`
		EK   wycheproof.Hex `json:"ek"`
		DK   wycheproof.Hex `json:"dk"`
		C    wycheproof.Hex `json:"c"`
		K    wycheproof.Hex `json:"K"`
	} `json:"tests"`
}

// TestWycheproof runs every ML-KEM-768 file of the pinned Wycheproof
// release: FIPS 203 key generation from seeds (ek and the expanded dk),
// encapsulation with fixed m (whole and incremental; unreduced keys
// refused), decapsulation from seeds and from expanded keys, with the
// invalid lengths and keys refused.
func TestWycheproof(t *testing.T) {
	counts := map[string]int{}
	kg := wycheproof.Load[mlkemGroup](t, "mlkem_768_keygen_seed_test")
	for _, g := range kg.TestGroups {
		for _, tc := range g.Tests {
			dk, err := NewDecapsulationKey(tc.Seed)
			if err != nil || !bytes.Equal(dk.EncapsulationKey(), tc.EK) || !bytes.Equal(dk.ExpandedBytes(), tc.DK) {
				t.Errorf("keygen tc%d: %v", tc.ID, err)
			}
			counts["keygen/"+tc.Result]++
		}
	}
	enc := wycheproof.Load[mlkemGroup](t, "mlkem_768_encaps_test")
	for _, g := range enc.TestGroups {
		for _, tc := range g.Tests {
			c, key, err := Encapsulate(tc.EK, tc.M)
			hdr, vec, serr := SplitEncapsulationKey(tc.EK)
			switch tc.Result {
			case "valid":
				if err != nil || !bytes.Equal(c, tc.C) || !bytes.Equal(key, tc.K) {
					t.Errorf("encaps tc%d: %v", tc.ID, err)
				}
				if serr != nil {
					t.Fatalf("encaps tc%d: %v", tc.ID, serr)
				}
				ct1, st, key1, _ := Encapsulate1(hdr, tc.M)
				ct2, err := st.Encapsulate2(vec)
				if err != nil || !bytes.Equal(append(ct1, ct2...), tc.C) || !bytes.Equal(key1, tc.K) {
					t.Errorf("encaps tc%d (incremental): %v", tc.ID, err)
				}
			default:
				if err == nil || serr == nil {
					t.Errorf("encaps tc%d (%s): invalid key accepted", tc.ID, tc.Comment)
				}
			}
			counts["encaps/"+tc.Result]++
		}
	}
	for _, name := range []string{"mlkem_768_test", "mlkem_768_semi_expanded_decaps_test"} {
		dec := wycheproof.Load[mlkemGroup](t, name)
		for _, g := range dec.TestGroups {
			for _, tc := range g.Tests {
				var dk *DecapsulationKey
				var err error
				if tc.Seed != nil {
					dk, err = NewDecapsulationKey(tc.Seed)
				} else {
					dk, err = NewDecapsulationKeyFromExpanded(tc.DK)
				}
				var key []byte
				if err == nil {
					if tc.EK != nil && !bytes.Equal(dk.EncapsulationKey(), tc.EK) {
						t.Errorf("%s tc%d: encapsulation key differs", name, tc.ID)
					}
					key, err = dk.DecapsulateFull(tc.C)
				}
				switch tc.Result {
				case "valid":
					if err != nil || !bytes.Equal(key, tc.K) {
						t.Errorf("%s tc%d (%s): %v", name, tc.ID, tc.Comment, err)
					}
				default:
					if err == nil {
						t.Errorf("%s tc%d (%s): accepted", name, tc.ID, tc.Comment)
					}
				}
				counts[name+"/"+tc.Result]++
			}
		}
	}
	want := map[string]int{
		"keygen/valid": 100, "encaps/valid": 133, "encaps/invalid": 132,
		"mlkem_768_test/valid": 153, "mlkem_768_test/invalid": 40,
		"mlkem_768_semi_expanded_decaps_test/valid": 3, "mlkem_768_semi_expanded_decaps_test/invalid": 6,
	}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s: ran %d vectors, want %d", k, counts[k], n)
		}
	}
	t.Logf("ran %v", counts)
}
