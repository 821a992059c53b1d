package kdf

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"testing"
)

// FuzzHMAC compares SetKey and MAC, with the message split in three at
// fuzzer-chosen points, and MACByte with crypto/hmac.
func FuzzHMAC(f *testing.F) {
	h := NewHasher()
	f.Fuzz(func(t *testing.T, key, msg []byte, cut1, cut2 uint16) {
		a := int(cut1) % (len(msg) + 1)
		b := a + int(cut2)%(len(msg)-a+1)
		var k Key
		h.SetKey(&k, key)
		var out [Size]byte
		h.MAC(&out, &k, msg[:a], msg[a:b], msg[b:])
		if want := stdHMAC(key, msg); !bytes.Equal(out[:], want) {
			t.Fatalf("MAC = %x, crypto/hmac says %x", out, want)
		}
		if len(msg) > 0 {
			h.MACByte(&out, &k, msg[0])
			if want := stdHMAC(key, msg[:1]); !bytes.Equal(out[:], want) {
				t.Fatalf("MACByte = %x, crypto/hmac says %x", out, want)
			}
		}
	})
}

// FuzzHKDF compares HKDF with crypto/hkdf; length is taken modulo the
// longest output plus one, so zero-length and maximal outputs occur too.
func FuzzHKDF(f *testing.F) {
	h := NewHasher()
	f.Fuzz(func(t *testing.T, salt, ikm, info []byte, length uint16) {
		n := int(length) % (MaxExpand + 1)
		var s Key
		h.SetKey(&s, salt)
		out := make([]byte, n)
		h.HKDF(out, &s, ikm, info)
		if n == 0 {
			return // crypto/hkdf refuses a zero length; HKDF writes nothing
		}
		want, err := hkdf.Key(sha256.New, ikm, salt, string(info), n)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("HKDF = %x, crypto/hkdf says %x", out, want)
		}
	})
}
