package keys

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"filippo.io/edwards25519"
)

// secretForms returns the ways a 32-byte secret could show up in fmt
// output: hex in both cases, the decimal and Go-syntax byte lists, the raw
// bytes, for every 8-byte window, so that a partial leak is caught too.
func secretForms(secret []byte) []string {
	var forms []string
	for i := 0; i+8 <= len(secret); i += 4 {
		w := secret[i : i+8]
		h := hex.EncodeToString(w)
		forms = append(forms, h, strings.ToUpper(h), string(w),
			strings.Trim(fmt.Sprint(w), "[]"), strings.Trim(fmt.Sprintf("%#v", w), "[]byte{}"))
	}
	return forms
}

// xeddsaScalars returns the encodings of a = ±clamp(k) mod q, the signing
// scalar an IdentityKeyPair keeps beside the raw key.
func xeddsaScalars(k []byte) [][]byte {
	var s, n edwards25519.Scalar
	s.SetBytesWithClamping(k)
	n.Negate(&s)
	return [][]byte{s.Bytes(), n.Bytes()}
}

// TestSecretsRedacted prints every secret type, as a pointer, as a value and
// inside structs, slices and maps, with every common verb, and checks that
// no form of the key appears.
func TestSecretsRedacted(t *testing.T) {
	ik := newIdentity(t)
	spk, err := GenerateSignedPreKey(ik, 1)
	if err != nil {
		t.Fatal(err)
	}
	opks, err := GenerateOneTimePreKeys(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	opk := opks[0]
	priv, _ := GeneratePrivateKey()

	type exported struct {
		Key      *PrivateKey
		Identity *IdentityKeyPair
		Signed   *SignedPreKey
		OneTime  *OneTimePreKey
	}
	type byValue struct {
		Key      PrivateKey
		Identity IdentityKeyPair
		Signed   SignedPreKey
		OneTime  OneTimePreKey
	}
	type unexported struct {
		key  PrivateKey
		ik   IdentityKeyPair
		spk  SignedPreKey
		opk  OneTimePreKey
		pkey *PrivateKey
		pik  *IdentityKeyPair
		pspk *SignedPreKey
		popk *OneTimePreKey
	}
	cases := []struct {
		name     string
		v        any
		redacted bool // output must say REDACTED (false where fmt shows only pointers)
	}{
		{"*PrivateKey", priv, true},
		{"PrivateKey", *priv, true},
		{"*IdentityKeyPair", ik, true},
		{"IdentityKeyPair", *ik, true},
		{"*IdentityKeyPair.PrivateKey()", ik.PrivateKey(), true},
		{"*SignedPreKey", spk, true},
		{"SignedPreKey", *spk, true},
		{"*OneTimePreKey", opk, true},
		{"OneTimePreKey", *opk, true},
		{"[]*OneTimePreKey", opks, true},
		{"struct of pointers", exported{priv, ik, spk, opk}, true},
		{"*struct of pointers", &exported{priv, ik, spk, opk}, true},
		{"struct of values", byValue{*priv, *ik, *spk, *opk}, true},
		{"struct of unexported fields", unexported{*priv, *ik, *spk, *opk, priv, ik, spk, opk}, false},
		{"*struct of unexported fields", &unexported{*priv, *ik, *spk, *opk, priv, ik, spk, opk}, false},
		{"embedded", struct {
			*PrivateKey
			x int
		}{priv, 1}, true},
		{"map", map[string]*SignedPreKey{"spk": spk}, true},
		{"[]any", []any{priv, *ik, spk, *opk}, true},
	}
	var forbidden []string
	for _, k := range [][]byte{priv.Bytes(), ik.PrivateKey().Bytes(), spk.PrivateKey().Bytes(), opk.PrivateKey().Bytes()} {
		forbidden = append(forbidden, secretForms(k)...)
		for _, a := range xeddsaScalars(k) {
			forbidden = append(forbidden, secretForms(a)...)
		}
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d", "%T %v", "%10v", "%-x"}
	for _, c := range cases {
		for _, verb := range verbs {
			out := fmt.Sprintf(verb, c.v)
			if verb == "%T %v" {
				out = fmt.Sprint(c.v)
			}
			for _, f := range forbidden {
				if strings.Contains(out, f) {
					t.Fatalf("%s printed with %s leaks %q:\n%s", c.name, verb, f, out)
				}
			}
			if c.redacted && !strings.Contains(out, "REDACTED") {
				t.Errorf("%s printed with %s does not say REDACTED: %s", c.name, verb, out)
			}
		}
	}
	// Error values never carry key bytes either.
	_, err = NewPrivateKey(append(priv.Bytes(), 0))
	for _, f := range forbidden {
		if err == nil || strings.Contains(err.Error(), f) {
			t.Fatalf("error %v leaks the key", err)
		}
	}
}

// TestPublicKeyFormat checks that public keys stay useful in logs.
func TestPublicKeyFormat(t *testing.T) {
	pub := randomPublicKey(t)
	enc := hex.EncodeToString(pub.Encode())
	for verb, want := range map[string]string{
		"%v":  "keys.PublicKey(" + enc + ")",
		"%+v": "keys.PublicKey(" + enc + ")",
		"%#v": "keys.PublicKey(" + enc + ")",
		"%s":  "keys.PublicKey(" + enc + ")",
		"%q":  `"keys.PublicKey(` + enc + `)"`,
		"%x":  enc,
		"%X":  strings.ToUpper(enc),
	} {
		if got := fmt.Sprintf(verb, pub); got != want {
			t.Errorf("%s: %s, want %s", verb, got, want)
		}
	}
	if got := pub.String(); got != "keys.PublicKey("+enc+")" {
		t.Errorf("String: %s", got)
	}
	ik := newIdentity(t)
	if s := fmt.Sprint(ik); !strings.Contains(s, hex.EncodeToString(ik.PublicKey().Bytes())) {
		t.Errorf("identity key pair prints without its public key: %s", s)
	}
}
