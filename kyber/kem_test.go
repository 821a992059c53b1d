package kyber

import (
	"bytes"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	sk, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ParsePublicKey(sk.PublicKey().Encode())
	if err != nil {
		t.Fatal(err)
	}
	ss, ct := pk.Encapsulate()
	if len(ct) != EncodedCiphertextSize || ct[0] != KeyType || len(ss) != SharedSecretSize {
		t.Fatalf("ciphertext %d bytes type %#x, secret %d bytes", len(ct), ct[0], len(ss))
	}
	got, err := sk.Decapsulate(ct)
	if err != nil || !bytes.Equal(got, ss) {
		t.Fatalf("Decapsulate = %x, %v; want %x", got, err, ss)
	}
	ss2, _ := pk.Encapsulate()
	if bytes.Equal(ss, ss2) {
		t.Fatal("two encapsulations gave the same secret")
	}
	again, err := NewPrivateKey(sk.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := again.Decapsulate(ct); !bytes.Equal(got, ss) {
		t.Fatal("a key reloaded from its seed decapsulates differently")
	}
}

// TestOutputStep pins the Kyber output step on a derandomized ML-KEM
// encapsulation: the secret is SHAKE-256(K || SHA3-256(c)), not K.
func TestOutputStep(t *testing.T) {
	seed := bytes.Repeat([]byte{0x42}, SeedSize)
	sk, err := NewPrivateKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	m := bytes.Repeat([]byte{0x17}, 32)
	ek, err := mlkem.NewEncapsulationKey1024(sk.PublicKey().Encode()[1:])
	if err != nil {
		t.Fatal(err)
	}
	k, c, err := mlkemtest.Encapsulate1024(ek, m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sk.Decapsulate(append([]byte{KeyType}, c...))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got, k) {
		t.Fatal("Decapsulate returns the ML-KEM secret unchanged")
	}
	if want := kyberSecret(k, c); !bytes.Equal(got, want) {
		t.Fatalf("Decapsulate = %x, want %x", got, want)
	}
}

func TestInvalidInputs(t *testing.T) {
	sk, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := sk.PublicKey().Encode()
	for name, b := range map[string][]byte{
		"empty":     nil,
		"raw":       pub[1:],
		"type 0x07": append([]byte{0x07}, pub[1:]...),
		"type 0x0a": append([]byte{0x0a}, pub[1:]...),
		"type 0x05": append([]byte{0x05}, pub[1:]...),
		"short":     pub[:len(pub)-1],
		"long":      append(bytes.Clone(pub), 0),
		"coefficient≥q": func() []byte {
			// The first coefficient is the low 12 bits of bytes 1..2:
			// 0xFFF = 4095 ≥ q = 3329.
			b := bytes.Clone(pub)
			b[1] = 0xFF
			b[2] |= 0x0F
			return b
		}(),
	} {
		if _, err := ParsePublicKey(b); !errors.Is(err, ErrInvalidPublicKey) {
			t.Errorf("ParsePublicKey(%s) = %v, want ErrInvalidPublicKey", name, err)
		}
	}
	_, ct := sk.PublicKey().Encapsulate()
	for name, b := range map[string][]byte{
		"empty": nil, "raw": ct[1:], "type 0x07": append([]byte{0x07}, ct[1:]...),
		"short": ct[:len(ct)-1], "long": append(bytes.Clone(ct), 0),
	} {
		if _, err := sk.Decapsulate(b); !errors.Is(err, ErrInvalidCiphertext) {
			t.Errorf("Decapsulate(%s) = %v, want ErrInvalidCiphertext", name, err)
		}
	}
	for _, n := range []int{0, 32, 63, 65} {
		if _, err := NewPrivateKey(make([]byte, n)); !errors.Is(err, ErrInvalidPrivateKey) {
			t.Errorf("NewPrivateKey(%d bytes) = %v", n, err)
		}
	}
	if _, err := PublicKeyOfLibsignalSecret(make([]byte, LibsignalSecretKeySize)); !errors.Is(err, ErrInvalidPrivateKey) {
		t.Errorf("PublicKeyOfLibsignalSecret(zeros) = %v", err)
	}
}

func TestPrivateKeyRedacted(t *testing.T) {
	sk, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	seed := fmt.Sprintf("%x", sk.Bytes())
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		for _, arg := range []any{sk, *sk, struct{ K *PrivateKey }{sk}} {
			out := fmt.Sprintf(verb, arg)
			if strings.Contains(out, seed[:16]) || !strings.Contains(out, "REDACTED") {
				t.Errorf("Sprintf(%q) = %q", verb, out)
			}
		}
	}
}
