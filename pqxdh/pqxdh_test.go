package pqxdh

import (
	"bytes"
	"crypto/hkdf"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"

	"filippo.io/edwards25519"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
)

func session0(t *testing.T) *libsignaltest.Session {
	return &libsignaltest.Load(t).Sessions[0]
}

// TestInitiatorByHand fixes the base key and the encapsulation randomness
// and recomputes the initiator's output by hand, in the order libsignal
// uses: 0xFF*32 || DH(IK_A, SPK_B) || DH(EK_A, IK_B) || DH(EK_A, SPK_B) ||
// DH(EK_A, OPK_B) || SS.
func TestInitiatorByHand(t *testing.T) {
	s := session0(t)
	b := bundleOf(t, &s.Bundle)
	ik, err := keys.NewIdentityKeyPair(bytes.Repeat([]byte{0x11}, 32))
	if err != nil {
		t.Fatal(err)
	}
	ek, err := keys.NewPrivateKey(bytes.Repeat([]byte{0x22}, 32))
	if err != nil {
		t.Fatal(err)
	}
	m := bytes.Repeat([]byte{0x33}, 32)
	var ss []byte
	encaps := func(pk *kyber.PublicKey) ([]byte, []byte) {
		ek, err := mlkem.NewEncapsulationKey1024(pk.Encode()[1:])
		if err != nil {
			t.Fatal(err)
		}
		_, ct, err := mlkemtest.Encapsulate1024(ek, m)
		if err != nil {
			t.Fatal(err)
		}
		ct = append([]byte{kyber.KeyType}, ct...)
		// The Kyber secret, as the responder's key sees it.
		bob := responder(t, s)
		if ss, err = bob.kpk.PrivateKey().Decapsulate(ct); err != nil {
			t.Fatal(err)
		}
		return bytes.Clone(ss), ct
	}
	in, err := initiate(ik, b, ek, encaps)
	if err != nil {
		t.Fatal(err)
	}
	dh := func(k *keys.PrivateKey, p *keys.PublicKey) []byte {
		out, err := k.ECDH(p)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	ikm := bytes.Repeat([]byte{0xFF}, 32)
	ikm = append(ikm, dh(ik.PrivateKey(), b.SignedPreKey)...)
	ikm = append(ikm, dh(ek, b.IdentityKey)...)
	ikm = append(ikm, dh(ek, b.SignedPreKey)...)
	ikm = append(ikm, dh(ek, b.OneTimePreKey)...)
	ikm = append(ikm, ss...)
	want, err := hkdf.Key(sha256.New, ikm, nil, "WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024", 96)
	if err != nil {
		t.Fatal(err)
	}
	got := append(append(in.RootKey[:], in.ChainKey[:]...), in.PQRKey[:]...)
	if !bytes.Equal(got, want) {
		t.Fatalf("initiator output\n%x\nwant\n%x", got, want)
	}
	if !in.Header.BaseKey.Equal(ek.PublicKey()) || !in.Header.IdentityKey.Equal(ik.PublicKey()) {
		t.Error("header keys are not EK_A and IK_A")
	}
	if in.Header.SignedPreKeyID != b.SignedPreKeyID || in.Header.KyberPreKeyID != b.KyberPreKeyID || in.Header.OneTimePreKeyID != b.OneTimePreKeyID {
		t.Error("header ids are not the bundle's")
	}
}

// smallOrderKeys are the canonical u-coordinates of small order.
func smallOrderKeys() [][]byte {
	p1 := bytes.Repeat([]byte{0xff}, 32)
	p1[0], p1[31] = 0xec, 0x7f // p − 1
	return [][]byte{
		make([]byte, 32),
		append([]byte{1}, make([]byte, 31)...),
		p1,
		libsignaltestHex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
		libsignaltestHex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
	}
}

func libsignaltestHex(h string) []byte {
	b := make([]byte, len(h)/2)
	for i := range b {
		fmt.Sscanf(h[2*i:2*i+2], "%02x", &b[i])
	}
	return b
}

// mixedOrderKey returns an honest public key plus a point of order 8, as a
// Montgomery u: X25519 with a clamped scalar kills the torsion part, so DH
// succeeds, but libsignal's is_canonical refuses it.
func mixedOrderKey(t *testing.T) []byte {
	t.Helper()
	priv, _ := keys.GeneratePrivateKey()
	u := libsignaltest.AddTorsion(priv.PublicKey().Bytes())
	mixed, err := keys.NewPublicKey(u)
	if err != nil {
		t.Fatal(err)
	}
	// DH alone does not catch this key, only the torsion check does.
	if _, err := priv.ECDH(mixed); err != nil {
		t.Fatalf("DH with the mixed-order key: %v", err)
	}
	return u
}

// TestBaseKeyCheck: Respond refuses small-order base keys, a mixed-order
// key, u = −1 and a twist point with ErrInvalidBaseKey, and accepts every
// base key libsignal made.
func TestBaseKeyCheck(t *testing.T) {
	s := session0(t)
	bob := responder(t, s)
	h := headerOf(t, s)
	bad := map[string][]byte{"mixed order": mixedOrderKey(t), "twist point u=2": twistPoint(t)}
	for i, u := range smallOrderKeys() {
		bad[fmt.Sprintf("small order %d", i)] = u
	}
	for name, u := range bad {
		k, err := keys.NewPublicKey(u)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if canonicalBaseKey(k) {
			t.Errorf("%s: canonicalBaseKey accepts it", name)
		}
		hb := *h
		hb.BaseKey = k
		if _, err := Respond(bob.ik, bob.spk, bob.opk, bob.kpk, &hb); !errors.Is(err, ErrInvalidBaseKey) {
			t.Errorf("%s: Respond = %v, want ErrInvalidBaseKey", name, err)
		}
	}
	for _, s := range libsignaltest.Load(t).Sessions {
		if !canonicalBaseKey(headerOf(t, &s).BaseKey) {
			t.Errorf("%s: libsignal's base key is refused", s.Name)
		}
	}
	for range 20 {
		k, _ := keys.GeneratePrivateKey()
		if !canonicalBaseKey(k.PublicKey()) {
			t.Fatal("a fresh key is refused")
		}
	}
}

// twistPoint returns u = 2, which is on the quadratic twist (the Edwards
// decoding has no square root), checked here rather than assumed.
func twistPoint(t *testing.T) []byte {
	u := append([]byte{2}, make([]byte, 31)...)
	if _, err := new(edwards25519.Point).SetBytes(libsignaltest.EdwardsY(u)); err == nil {
		t.Fatal("u = 2 is on the curve; pick another twist point")
	}
	return u
}

func TestRespondErrors(t *testing.T) {
	s := session0(t)
	bob := responder(t, s)
	h := headerOf(t, s)
	if _, err := Respond(bob.ik, bob.spk, bob.opk, bob.kpk, h); err != nil {
		t.Fatal(err)
	}
	mod := func(f func(*Header)) *Header { c := *h; f(&c); return &c }
	other, _ := keys.GenerateOneTimePreKeys(999, 1)
	cases := []struct {
		name string
		opk  *keys.OneTimePreKey
		h    *Header
		want error
	}{
		{"signed id", bob.opk, mod(func(c *Header) { c.SignedPreKeyID++ }), ErrPreKeyMismatch},
		{"kyber id", bob.opk, mod(func(c *Header) { c.KyberPreKeyID++ }), ErrPreKeyMismatch},
		{"opk id", bob.opk, mod(func(c *Header) { c.OneTimePreKeyID++ }), ErrPreKeyMismatch},
		{"opk missing", nil, h, ErrPreKeyMismatch},
		{"opk extra", bob.opk, mod(func(c *Header) { c.HasOneTimePreKey = false }), ErrPreKeyMismatch},
		{"opk other", other[0], h, ErrPreKeyMismatch},
		{"no identity", bob.opk, mod(func(c *Header) { c.IdentityKey = nil }), ErrMalformed},
		{"no base key", bob.opk, mod(func(c *Header) { c.BaseKey = nil }), ErrMalformed},
		{"short ct", bob.opk, mod(func(c *Header) { c.KyberCiphertext = c.KyberCiphertext[1:] }), ErrMalformed},
		{"ct type", bob.opk, mod(func(c *Header) { c.KyberCiphertext = append([]byte{0x07}, c.KyberCiphertext[1:]...) }), ErrMalformed},
		{"small-order identity", bob.opk, mod(func(c *Header) { c.IdentityKey, _ = keys.NewPublicKey(make([]byte, 32)) }), ErrSmallOrder},
	}
	for _, c := range cases {
		if _, err := Respond(bob.ik, bob.spk, c.opk, bob.kpk, c.h); !errors.Is(err, c.want) {
			t.Errorf("%s: Respond = %v, want %v", c.name, err, c.want)
		}
	}
	// A forged ciphertext of the right shape gives other keys, not an error.
	good, _ := Respond(bob.ik, bob.spk, bob.opk, bob.kpk, h)
	forged := mod(func(c *Header) { c.KyberCiphertext = bytes.Clone(c.KyberCiphertext); c.KyberCiphertext[500] ^= 1 })
	k, err := Respond(bob.ik, bob.spk, bob.opk, bob.kpk, forged)
	if err != nil || k.RootKey == good.RootKey || k.ChainKey == good.ChainKey {
		t.Errorf("forged ciphertext: %v, same keys %t", err, err == nil && k.RootKey == good.RootKey)
	}
	if _, err := Respond(nil, bob.spk, bob.opk, bob.kpk, h); err == nil {
		t.Error("nil identity accepted")
	}
}

func TestInitiateErrors(t *testing.T) {
	s := session0(t)
	ik, _ := keys.GenerateIdentityKeyPair()
	bobIK, err := keys.NewIdentityKeyPair(libsignaltest.Hex(t, s.Bob.Identity.Private))
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(*Bundle)) *Bundle { b := bundleOf(t, &s.Bundle); f(b); return b }
	zero, _ := keys.NewPublicKey(make([]byte, 32))
	cases := []struct {
		name string
		b    *Bundle
		want error
	}{
		{"nil", nil, ErrMalformed},
		{"no identity", mod(func(b *Bundle) { b.IdentityKey = nil }), ErrMalformed},
		{"no signed prekey", mod(func(b *Bundle) { b.SignedPreKey = nil }), ErrMalformed},
		{"no kyber prekey", mod(func(b *Bundle) { b.KyberPreKey = nil }), ErrMalformed},
		{"spk signature short", mod(func(b *Bundle) { b.SignedPreKeySignature = b.SignedPreKeySignature[:63] }), ErrInvalidSignature},
		{"kyber signature missing", mod(func(b *Bundle) { b.KyberPreKeySignature = nil }), ErrInvalidSignature},
		{"signatures swapped", mod(func(b *Bundle) {
			b.SignedPreKeySignature, b.KyberPreKeySignature = b.KyberPreKeySignature, b.SignedPreKeySignature
		}), ErrInvalidSignature},
		{"kyber signature over raw key", mod(func(b *Bundle) { b.KyberPreKeySignature = bobIK.Sign(b.KyberPreKey.Encode()[1:]) }), ErrInvalidSignature},
		{"other identity", mod(func(b *Bundle) { b.IdentityKey = ik.PublicKey() }), ErrInvalidSignature},
		// A small-order signed prekey, validly signed: the signature passes,
		// the DH output is all zeros.
		{"small-order signed prekey", mod(func(b *Bundle) {
			b.SignedPreKey = zero
			b.SignedPreKeySignature = bobIK.Sign(zero.Encode())
		}), ErrSmallOrder},
		{"small-order one-time prekey", mod(func(b *Bundle) { b.OneTimePreKey = zero }), ErrSmallOrder},
	}
	for _, c := range cases {
		if _, err := Initiate(ik, c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: Initiate = %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := Initiate(nil, bundleOf(t, &s.Bundle)); err == nil {
		t.Error("nil identity accepted")
	}
}

func TestRedacted(t *testing.T) {
	s := session0(t)
	ik, _ := keys.GenerateIdentityKeyPair()
	in, err := Initiate(ik, bundleOf(t, &s.Bundle))
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{fmt.Sprintf("%x", in.RootKey[:8]), fmt.Sprintf("%x", in.ChainKey[:8]), fmt.Sprintf("%x", in.PQRKey[:8])}
	for _, verb := range []string{"%v", "%+v", "%#v", "%x", "%s"} {
		for _, arg := range []any{in, *in, in.Keys, &in.Keys, struct{ K Keys }{in.Keys}} {
			out := fmt.Sprintf(verb, arg)
			for _, sec := range secrets {
				if strings.Contains(out, sec) {
					t.Fatalf("Sprintf(%q) shows a key: %s", verb, out)
				}
			}
		}
	}
	in.Clear()
	if in.RootKey != ([32]byte{}) || in.ChainKey != ([32]byte{}) || in.PQRKey != ([32]byte{}) {
		t.Fatal("Clear left key bytes")
	}
}
