package aead

import (
	"bytes"
	"crypto/cipher"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
)

var suites = []Suite{AES256GCM(), ChaCha20Poly1305()}

func TestNames(t *testing.T) {
	if AES256GCM().Name() != "AES-256-GCM" || ChaCha20Poly1305().Name() != "ChaCha20-Poly1305" {
		t.Fatalf("names %q, %q", AES256GCM().Name(), ChaCha20Poly1305().Name())
	}
	if suiteOf(AES256GCM()).info == nil || string(suiteOf(AES256GCM()).info) != infoAES256GCM ||
		string(suiteOf(ChaCha20Poly1305()).info) != infoChaCha20Poly1305 {
		t.Fatal("info strings differ from the profile's")
	}
	if KeySize != 32 || Overhead != 16 || derivedSize != 44 {
		t.Fatal("sizes differ from the profile's")
	}
}

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func TestRoundTrip(t *testing.T) {
	for _, s := range suites {
		for _, n := range []int{0, 1, 15, 16, 17, 100, 4096} {
			mk, ad := testKey(byte(n)), []byte("associated data")
			pt := bytes.Repeat([]byte{0x5a}, n)
			ct := s.Seal(nil, mk, pt, ad)
			if len(ct) != n+Overhead {
				t.Fatalf("%s: %d-byte plaintext sealed to %d bytes", s.Name(), n, len(ct))
			}
			if n > 0 && bytes.Contains(ct, pt) {
				t.Fatalf("%s: ciphertext contains the plaintext", s.Name())
			}
			got, err := s.Open(nil, mk, ct, ad)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%s, %d bytes: Open = %v", s.Name(), n, err)
			}

			// Appending to dst keeps its contents.
			prefix := []byte("header")
			ct2 := s.Seal(bytes.Clone(prefix), mk, pt, ad)
			if !bytes.Equal(ct2, append(bytes.Clone(prefix), ct...)) {
				t.Fatalf("%s: Seal does not append to dst", s.Name())
			}
			got, err = s.Open(bytes.Clone(prefix), mk, ct, ad)
			if err != nil || !bytes.Equal(got, append(bytes.Clone(prefix), pt...)) {
				t.Fatalf("%s: Open does not append to dst", s.Name())
			}

			// In place, as the Suite docs suggest.
			buf := make([]byte, n, n+Overhead)
			copy(buf, pt)
			sealed := s.Seal(buf[:0], mk, buf, ad)
			if !bytes.Equal(sealed, ct) {
				t.Fatalf("%s: in-place Seal differs", s.Name())
			}
			opened, err := s.Open(sealed[:0], mk, sealed, ad)
			if err != nil || !bytes.Equal(opened, pt) {
				t.Fatalf("%s: in-place Open = %v", s.Name(), err)
			}
		}
	}
}

// mustFail asserts that Open fails exactly as documented: the ErrOpen
// sentinel itself, no bytes.
func mustFail(t *testing.T, what string, s Suite, mk, ct, ad []byte) {
	t.Helper()
	pt, err := s.Open(nil, mk, ct, ad)
	if err != ErrOpen || pt != nil {
		t.Fatalf("%s, %s: Open = %x, %v; want nil, ErrOpen", s.Name(), what, pt, err)
	}
}

func TestBitFlips(t *testing.T) {
	for _, s := range suites {
		mk := testKey(1)
		pt := []byte("a message of a little more than two cipher blocks")
		ad := []byte("AD: both identities and the header")
		ct := s.Seal(nil, mk, pt, ad)
		for i := range len(ct) * 8 {
			bad := bytes.Clone(ct)
			bad[i/8] ^= 1 << (i % 8)
			mustFail(t, fmt.Sprintf("ciphertext bit %d", i), s, mk, bad, ad)
		}
		for i := range len(ad) * 8 {
			bad := bytes.Clone(ad)
			bad[i/8] ^= 1 << (i % 8)
			mustFail(t, fmt.Sprintf("ad bit %d", i), s, mk, ct, bad)
		}
		for i := range len(mk) * 8 {
			bad := bytes.Clone(mk)
			bad[i/8] ^= 1 << (i % 8)
			mustFail(t, fmt.Sprintf("message key bit %d", i), s, bad, ct, ad)
		}
		// The untouched message still opens, so the failures above are
		// the flips' doing.
		if got, err := s.Open(nil, mk, ct, ad); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%s: the original fails: %v", s.Name(), err)
		}
	}
}

func TestTruncatedAndExtended(t *testing.T) {
	for _, s := range suites {
		mk, ad := testKey(2), []byte{}
		for n := range Overhead {
			mustFail(t, fmt.Sprintf("%d zero bytes", n), s, mk, make([]byte, n), ad)
			mustFail(t, fmt.Sprintf("%d bytes", n), s, mk, bytes.Repeat([]byte{0xff}, n), ad)
		}
		mustFail(t, "nil", s, mk, nil, ad)
		ct := s.Seal(nil, mk, []byte("twenty bytes of text"), ad)
		for n := range len(ct) {
			mustFail(t, fmt.Sprintf("first %d bytes", n), s, mk, ct[:n], ad)
			mustFail(t, fmt.Sprintf("last %d bytes", n), s, mk, ct[len(ct)-n:], ad)
		}
		mustFail(t, "one byte appended", s, mk, append(bytes.Clone(ct), 0), ad)
	}
}

func TestSuitesDoNotInteroperate(t *testing.T) {
	mk := testKey(3)
	ct := AES256GCM().Seal(nil, mk, []byte("hello"), nil)
	mustFail(t, "AES-256-GCM ciphertext", ChaCha20Poly1305(), mk, ct, nil)
	ct = ChaCha20Poly1305().Seal(nil, mk, []byte("hello"), nil)
	mustFail(t, "ChaCha20-Poly1305 ciphertext", AES256GCM(), mk, ct, nil)
}

// TestFailedOpenClearsDst checks that a failed Open hands back nothing and
// leaves no decrypted bytes in the spare capacity of dst.
func TestFailedOpenClearsDst(t *testing.T) {
	for _, s := range suites {
		mk := testKey(4)
		pt := bytes.Repeat([]byte("secret!"), 10)
		ct := s.Seal(nil, mk, pt, nil)
		ct[0] ^= 0x80

		dst := make([]byte, 5, 200)
		for i := range dst[:cap(dst)] {
			dst[:cap(dst)][i] = 0xaa
		}
		got, err := s.Open(dst, mk, ct, nil)
		if err != ErrOpen || got != nil {
			t.Fatalf("%s: Open = %x, %v", s.Name(), got, err)
		}
		full := dst[:cap(dst)]
		if !bytes.Equal(full[:5], bytes.Repeat([]byte{0xaa}, 5)) {
			t.Errorf("%s: Open changed dst's existing bytes", s.Name())
		}
		if n := len(pt); !bytes.Equal(full[5:5+n], make([]byte, n)) {
			t.Errorf("%s: dst's spare capacity holds %x after a failed Open", s.Name(), full[5:5+n])
		}

		// In place: the buffer is wiped rather than left with plaintext.
		buf := bytes.Clone(ct)
		if got, err := s.Open(buf[:0], mk, buf, nil); err != ErrOpen || got != nil {
			t.Fatalf("%s: in-place Open = %x, %v", s.Name(), got, err)
		}
		if bytes.Contains(buf, pt[:7]) {
			t.Errorf("%s: plaintext left in the buffer after a failed in-place Open", s.Name())
		}
	}
}

// leakyAEAD is a cipher that fails every Open after writing into dst's
// spare capacity and without clearing it, as a careless implementation
// might.
type leakyAEAD struct{}

func (leakyAEAD) NonceSize() int { return 12 }
func (leakyAEAD) Overhead() int  { return Overhead }
func (leakyAEAD) Seal(dst, _, plaintext, _ []byte) []byte {
	return append(append(dst, plaintext...), make([]byte, Overhead)...)
}
func (leakyAEAD) Open(dst, _, ciphertext, _ []byte) ([]byte, error) {
	out := append(dst, ciphertext[:len(ciphertext)-Overhead]...)
	for i := len(dst); i < len(out); i++ {
		out[i] = 0x99
	}
	return nil, errors.New("leaky: tag mismatch")
}

// TestOpenRawClearsDst checks that the guarantee about dst is this
// package's own, not borrowed from the cipher: under a cipher that leaves
// bytes behind, openRaw still clears them, and still returns only ErrOpen.
func TestOpenRawClearsDst(t *testing.T) {
	s := &suite{name: "leaky", new: func([]byte) (cipher.AEAD, error) { return leakyAEAD{}, nil }}
	key, nonce := new([32]byte), new([12]byte)
	dst := bytes.Repeat([]byte{0xaa}, 64)[:2]
	got, err := s.openRaw(dst, key, nonce, make([]byte, 40+Overhead), nil)
	if err != ErrOpen || got != nil {
		t.Fatalf("openRaw = %x, %v; want nil, ErrOpen", got, err)
	}
	full := dst[:cap(dst)]
	if !bytes.Equal(full[:2], []byte{0xaa, 0xaa}) || !bytes.Equal(full[2:42], make([]byte, 40)) || full[42] != 0xaa {
		t.Errorf("openRaw left %x", full)
	}
	// With no room in dst the cipher wrote elsewhere: dst stays untouched.
	small := bytes.Repeat([]byte{0xaa}, 8)[:2]
	s.openRaw(small, key, nonce, make([]byte, 40+Overhead), nil)
	if !bytes.Equal(small[:cap(small)], bytes.Repeat([]byte{0xaa}, 8)) {
		t.Errorf("openRaw wrote past a short dst: %x", small[:cap(small)])
	}
}

func TestOpenDoesNotModifyInputs(t *testing.T) {
	for _, s := range suites {
		mk, ad := testKey(5), []byte("ad")
		ct := s.Seal(nil, mk, []byte("plaintext"), ad)
		bad := bytes.Clone(ct)
		bad[3] ^= 4
		mk0, ad0, bad0 := bytes.Clone(mk), bytes.Clone(ad), bytes.Clone(bad)
		s.Open(nil, mk, bad, ad)
		s.Open(nil, mk, ct, ad)
		if !bytes.Equal(mk, mk0) || !bytes.Equal(ad, ad0) || !bytes.Equal(bad, bad0) {
			t.Fatalf("%s: Open modified its inputs", s.Name())
		}
	}
}

// TestWrongKeyLengthPanics: a message key of the wrong length is a bug in
// the caller (keys come from the chain, never from the wire), so both Seal
// and Open panic, with a message that says what is wrong.
func TestWrongKeyLengthPanics(t *testing.T) {
	const want = "aead: message key must be 32 bytes"
	for _, s := range suites {
		for _, n := range []int{0, 1, 16, 31, 33, 44, 64} {
			mk := make([]byte, n)
			ct := make([]byte, 40)
			for name, f := range map[string]func(){
				"Seal":          func() { s.Seal(nil, mk, []byte("x"), nil) },
				"Open":          func() { s.Open(nil, mk, ct, nil) },
				"Open(short)":   func() { s.Open(nil, mk, nil, nil) },
				"Seal(nil key)": func() { s.Seal(nil, nil, nil, nil) },
			} {
				if r := recovered(f); r != want {
					t.Errorf("%s %s with a %d-byte key: recovered %v, want %q", s.Name(), name, n, r, want)
				}
			}
		}
	}
}

func recovered(f func()) (r any) {
	defer func() { r = recover() }()
	f()
	return nil
}

func TestConcurrentUse(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				s := suites[(g+i)%2]
				mk := testKey(byte(g))
				pt := []byte(fmt.Sprintf("goroutine %d message %d", g, i))
				ct := s.Seal(nil, mk, pt, pt[:5])
				got, err := s.Open(nil, mk, ct, pt[:5])
				if err != nil || !bytes.Equal(got, pt) {
					t.Errorf("goroutine %d: %v", g, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestAllocations pins the allocations of a Seal or Open into a dst with
// room: only the cipher's key schedule (crypto/aes's block and
// crypto/cipher's GCM; x/crypto's ChaCha20-Poly1305 struct) and nothing of
// ours. A failed Open costs the same, a too-short one nothing.
func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	for _, tc := range []struct {
		s    Suite
		want float64
	}{{AES256GCM(), 2}, {ChaCha20Poly1305(), 1}} {
		mk, ad := testKey(6), make([]byte, 108)
		pt := make([]byte, 1024)
		dst := make([]byte, 0, len(pt)+Overhead)
		ct := tc.s.Seal(nil, mk, pt, ad)
		bad := bytes.Clone(ct)
		bad[0] ^= 1
		for name, f := range map[string]func(){
			"Seal":        func() { tc.s.Seal(dst, mk, pt, ad) },
			"Open":        func() { tc.s.Open(dst, mk, ct, ad) },
			"Open(bad)":   func() { tc.s.Open(dst, mk, bad, ad) },
			"Open(short)": func() { tc.s.Open(dst, mk, ct[:5], ad) },
		} {
			want := tc.want
			if name == "Open(short)" {
				want = 0
			}
			if n := testing.AllocsPerRun(100, f); n != want {
				t.Errorf("%s %s: %v allocations, want %v", tc.s.Name(), name, n, want)
			}
		}
	}
}

// TestSuiteSealed checks that Suite has an unexported method, so that only
// this package's values implement it, and that the constructors hand out one
// value per suite (the ratchet compares suites with ==).
func TestSuiteSealed(t *testing.T) {
	typ := reflect.TypeFor[Suite]()
	sealed := false
	for i := range typ.NumMethod() {
		sealed = sealed || !typ.Method(i).IsExported()
	}
	if !sealed {
		t.Error("Suite has no unexported method: other packages can implement it")
	}
	if AES256GCM() != AES256GCM() || ChaCha20Poly1305() != ChaCha20Poly1305() || AES256GCM() == ChaCha20Poly1305() {
		t.Error("the suite constructors do not hand out one value per suite")
	}
}
