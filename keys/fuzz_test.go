package keys

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodePublicKey checks that decoding never panics and accepts exactly
// the canonical 33-byte encodings, each of which re-encodes to its input:
// every key has one accepted encoding. The raw 32-byte form obeys the same
// rule. Seeds: testdata/fuzz/FuzzDecodePublicKey.
func FuzzDecodePublicKey(f *testing.F) {
	f.Add(append([]byte{wireKeyType}, make([]byte, 32)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		pub, err := DecodePublicKey(b)
		canonical := len(b) == wireEncodedLen && b[0] == wireKeyType && fromLE(b[1:]).Cmp(fieldP) < 0
		if canonical != (err == nil) {
			t.Fatalf("DecodePublicKey(%x): error %v, canonical %v", b, err, canonical)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidPublicKey) {
				t.Fatalf("error %v does not wrap ErrInvalidPublicKey", err)
			}
		} else {
			if !bytes.Equal(pub.Encode(), b) || !bytes.Equal(pub.AppendEncode(nil), b) || !bytes.Equal(pub.Bytes(), b[1:]) {
				t.Fatalf("DecodePublicKey(%x) re-encodes to %x", b, pub.Encode())
			}
			// Verification under any decodable key must not panic, whatever
			// the curve thinks of the point.
			pub.Verify(b, append(bytes.Clone(b[1:]), b[1:]...))
		}

		raw, err := NewPublicKey(b)
		rawCanonical := len(b) == wireRawLen && fromLE(b).Cmp(fieldP) < 0
		if rawCanonical != (err == nil) {
			t.Fatalf("NewPublicKey(%x): error %v, canonical %v", b, err, rawCanonical)
		}
		if err == nil && !bytes.Equal(raw.Bytes(), b) {
			t.Fatalf("NewPublicKey(%x).Bytes() = %x", b, raw.Bytes())
		}
	})
}
