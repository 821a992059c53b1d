package aead

import (
	"bytes"
	"testing"
)

// FuzzOpen feeds arbitrary ciphertexts and associated data to both suites'
// Open. No input may panic; a failure must be exactly ErrOpen with no bytes
// and nothing left in dst's spare capacity; a success (the seed corpus in
// testdata/fuzz holds genuine messages) must be what Seal makes of the
// plaintext. The message key is the first 32 bytes of mk, zero-padded: a
// key of another length is a caller bug that Open rightly panics on.
func FuzzOpen(f *testing.F) {
	f.Fuzz(func(t *testing.T, which uint8, mk, ct, ad []byte) {
		s := suites[int(which)%len(suites)]
		key := make([]byte, KeySize)
		copy(key, mk)
		ct0, ad0 := bytes.Clone(ct), bytes.Clone(ad)

		dst := bytes.Repeat([]byte{0xaa}, 3+len(ct))[:3]
		pt, err := s.Open(dst, key, ct, ad)
		if !bytes.Equal(ct, ct0) || !bytes.Equal(ad, ad0) {
			t.Fatal("Open modified its inputs")
		}
		if err != nil {
			if err != ErrOpen || pt != nil {
				t.Fatalf("Open = %x, %v; want nil, ErrOpen", pt, err)
			}
			if n := len(ct) - Overhead; n > 0 && !bytes.Equal(dst[3:3+n], make([]byte, n)) {
				t.Fatalf("dst's spare capacity holds %x after a failed Open", dst[3:3+n])
			}
			return
		}
		if !bytes.Equal(pt[:3], []byte{0xaa, 0xaa, 0xaa}) || len(pt) != 3+len(ct)-Overhead {
			t.Fatalf("Open returned %x for a %d-byte ciphertext", pt, len(ct))
		}
		if again := s.Seal(nil, key, pt[3:], ad); !bytes.Equal(again, ct) {
			t.Fatalf("Seal(Open(ct)) = %x, want %x", again, ct)
		}
	})
}
