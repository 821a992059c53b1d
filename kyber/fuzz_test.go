package kyber

import (
	"bytes"
	"testing"
	"time"
)

// FuzzParsePublicKey: a key that parses re-encodes to the same bytes, and
// nothing panics.
func FuzzParsePublicKey(f *testing.F) {
	sk, err := NewPrivateKey(bytes.Repeat([]byte{7}, SeedSize))
	if err != nil {
		f.Fatal(err)
	}
	pub := sk.PublicKey().Encode()
	f.Add(pub)
	f.Add(pub[:100])
	f.Add([]byte{KeyType})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParsePublicKey(b)
		if err != nil {
			return
		}
		if !bytes.Equal(k.Encode(), b) {
			t.Fatal("re-encoding differs")
		}
		ss, ct := k.Encapsulate()
		if len(ss) != SharedSecretSize || len(ct) != EncodedCiphertextSize {
			t.Fatal("bad encapsulation sizes")
		}
	})
}

// FuzzDecapsulate: any input either is refused for its shape or gives a
// 32-byte secret, deterministically.
func FuzzDecapsulate(f *testing.F) {
	sk, err := NewPrivateKey(bytes.Repeat([]byte{9}, SeedSize))
	if err != nil {
		f.Fatal(err)
	}
	_, ct := sk.PublicKey().Encapsulate()
	f.Add(ct)
	f.Add(ct[:10])
	f.Fuzz(func(t *testing.T, b []byte) {
		ss, err := sk.Decapsulate(b)
		if err != nil {
			return
		}
		again, _ := sk.Decapsulate(b)
		if len(ss) != SharedSecretSize || !bytes.Equal(ss, again) {
			t.Fatal("decapsulation is not a function of the ciphertext")
		}
	})
}

// FuzzParsePreKey: a blob that parses re-marshals to the same bytes.
func FuzzParsePreKey(f *testing.F) {
	sk, err := NewPrivateKey(bytes.Repeat([]byte{3}, SeedSize))
	if err != nil {
		f.Fatal(err)
	}
	p, err := NewPreKey(5, sk, make([]byte, 64), time.Unix(1767225600, 0), true)
	if err != nil {
		f.Fatal(err)
	}
	blob, _ := p.MarshalBinary()
	f.Add(blob)
	f.Add(blob[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePreKey(b)
		if err != nil {
			return
		}
		again, err := p.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatal("re-marshalling differs")
		}
	})
}
