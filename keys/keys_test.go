package keys

import (
	"bytes"
	"crypto/ecdh"
	"encoding/hex"
	"errors"
	"math/big"
	"sync"
	"testing"
)

// Wire constants, declared here rather than taken from the package.
const (
	wireKeyType    = 0x05
	wireEncodedLen = 33
	wireRawLen     = 32
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	fieldP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	two255 = new(big.Int).Lsh(big.NewInt(1), 255)
)

func le32(x *big.Int) []byte {
	b := x.FillBytes(make([]byte, 32))
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return b
}

func fromLE(b []byte) *big.Int {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return new(big.Int).SetBytes(r)
}

func randomPublicKey(t testing.TB) *PublicKey {
	t.Helper()
	k, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey()
}

func TestPublicKeyRoundTrip(t *testing.T) {
	for range 50 {
		pub := randomPublicKey(t)
		enc := pub.Encode()
		if len(enc) != wireEncodedLen || enc[0] != wireKeyType || !bytes.Equal(enc[1:], pub.Bytes()) {
			t.Fatalf("Encode = %x, Bytes = %x", enc, pub.Bytes())
		}
		dec, err := DecodePublicKey(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !dec.Equal(pub) || !bytes.Equal(dec.Encode(), enc) {
			t.Fatalf("decoded %v, want %v", dec, pub)
		}
		raw, err := NewPublicKey(pub.Bytes())
		if err != nil || !raw.Equal(pub) {
			t.Fatalf("NewPublicKey(Bytes()) = %v, %v", raw, err)
		}
		prefix := []byte("prefix")
		if got := pub.AppendEncode(prefix); !bytes.Equal(got, append([]byte("prefix"), enc...)) {
			t.Fatalf("AppendEncode = %x", got)
		}
	}
}

// TestPublicKeyBytesIsACopy checks that callers cannot change a key
// through the slices it hands out.
func TestPublicKeyBytesIsACopy(t *testing.T) {
	pub := randomPublicKey(t)
	want := pub.Encode()
	pub.Bytes()[0] ^= 0xff
	pub.Encode()[1] ^= 0xff
	if !bytes.Equal(pub.Encode(), want) {
		t.Fatal("key changed through a returned slice")
	}
	in := bytes.Clone(want)
	dec, err := DecodePublicKey(in)
	if err != nil {
		t.Fatal(err)
	}
	in[1] ^= 0xff
	if !bytes.Equal(dec.Encode(), want) {
		t.Fatal("key changed through the decoder's input")
	}
}

// TestDecodePublicKeyStrict walks every length 0..40 and every type byte:
// only 33 bytes starting 0x05 with a canonical u decode.
func TestDecodePublicKeyStrict(t *testing.T) {
	valid := randomPublicKey(t).Encode()
	for n := 0; n <= 40; n++ {
		b := make([]byte, n)
		if n > 0 {
			b[0] = wireKeyType
			copy(b[1:], valid[1:])
		}
		_, err := DecodePublicKey(b)
		if n == wireEncodedLen {
			if err != nil {
				t.Errorf("length %d: %v", n, err)
			}
		} else if !errors.Is(err, ErrInvalidPublicKey) {
			t.Errorf("length %d: error %v, want ErrInvalidPublicKey", n, err)
		}
		_, err = NewPublicKey(b)
		if n == wireRawLen {
			if err != nil && fromLE(b).Cmp(fieldP) < 0 {
				t.Errorf("raw length %d: %v", n, err)
			}
		} else if !errors.Is(err, ErrInvalidPublicKey) {
			t.Errorf("raw length %d: error %v, want ErrInvalidPublicKey", n, err)
		}
	}
	for typ := range 256 {
		b := bytes.Clone(valid)
		b[0] = byte(typ)
		_, err := DecodePublicKey(b)
		if (err == nil) != (typ == wireKeyType) {
			t.Errorf("type byte 0x%02x: error %v", typ, err)
		}
	}
}

// TestDecodePublicKeyCanonical checks the u < p rule at its edges.
func TestDecodePublicKeyCanonical(t *testing.T) {
	one := big.NewInt(1)
	sub := func(a, b *big.Int) *big.Int { return new(big.Int).Sub(a, b) }
	add := func(a, b *big.Int) *big.Int { return new(big.Int).Add(a, b) }
	or := func(a, b *big.Int) *big.Int { return new(big.Int).Or(a, b) }
	valid := fromLE(randomPublicKey(t).Bytes())
	accept := map[string]*big.Int{
		"0": big.NewInt(0), "1": one, "9": big.NewInt(9), "p-1": sub(fieldP, one),
		"p-2": sub(fieldP, big.NewInt(2)), "random": valid,
	}
	reject := map[string]*big.Int{
		"p": fieldP, "p+1": add(fieldP, one), "p+9": add(fieldP, big.NewInt(9)), "p+18 = 2^255-1": sub(two255, one),
		"2^255": two255, "2^255+9": or(two255, big.NewInt(9)), "random|2^255": or(valid, two255),
		"(p-1)|2^255": or(sub(fieldP, one), two255), "2^256-1": sub(new(big.Int).Lsh(one, 256), one),
	}
	for name, u := range accept {
		enc := append([]byte{wireKeyType}, le32(u)...)
		pub, err := DecodePublicKey(enc)
		if err != nil || !bytes.Equal(pub.Encode(), enc) {
			t.Errorf("u = %s rejected: %v", name, err)
		}
	}
	for name, u := range reject {
		enc := append([]byte{wireKeyType}, le32(u)...)
		if _, err := DecodePublicKey(enc); !errors.Is(err, ErrInvalidPublicKey) {
			t.Errorf("u = %s: error %v, want ErrInvalidPublicKey", name, err)
		}
		if _, err := NewPublicKey(enc[1:]); !errors.Is(err, ErrInvalidPublicKey) {
			t.Errorf("raw u = %s: error %v, want ErrInvalidPublicKey", name, err)
		}
	}
}

func TestPublicKeyEqual(t *testing.T) {
	a, b := randomPublicKey(t), randomPublicKey(t)
	a2, _ := DecodePublicKey(a.Encode())
	var nilKey *PublicKey
	switch {
	case !a.Equal(a), !a.Equal(a2), !a2.Equal(a):
		t.Error("equal keys compare unequal")
	case a.Equal(b), b.Equal(a):
		t.Error("different keys compare equal")
	case a.Equal(nil), nilKey.Equal(a), !nilKey.Equal(nil):
		t.Error("nil handling")
	}
	// Keys differing in one bit only.
	for i := range 256 {
		raw := a.Bytes()
		raw[i/8] ^= 1 << (i % 8)
		if c, err := NewPublicKey(raw); err == nil && c.Equal(a) {
			t.Fatalf("keys differing in bit %d compare equal", i)
		}
	}
}

// TestPrivateKeyPublicKey checks the Edwards fixed-base derivation against
// crypto/ecdh, for generated and for loaded keys (including unclamped
// bytes, which both clamp).
func TestPrivateKeyPublicKey(t *testing.T) {
	check := func(p *PrivateKey) {
		t.Helper()
		want, err := ecdh.X25519().NewPrivateKey(p.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if got := p.PublicKey().Bytes(); !bytes.Equal(got, want.PublicKey().Bytes()) {
			t.Fatalf("PublicKey %x, crypto/ecdh %x", got, want.PublicKey().Bytes())
		}
	}
	for range 50 {
		p, err := GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		check(p)
		loaded, err := NewPrivateKey(p.Bytes())
		if err != nil || !loaded.Equal(p) {
			t.Fatal("NewPrivateKey(Bytes()) differs")
		}
		check(loaded)
	}
	for _, b := range [][]byte{make([]byte, 32), bytes.Repeat([]byte{0xff}, 32)} {
		p, err := NewPrivateKey(b)
		if err != nil {
			t.Fatal(err)
		}
		check(p)
	}
}

func TestNewPrivateKeyLength(t *testing.T) {
	for n := 0; n <= 40; n++ {
		_, err := NewPrivateKey(make([]byte, n))
		if (err == nil) != (n == 32) {
			t.Errorf("length %d: error %v", n, err)
		}
		if n != 32 && !errors.Is(err, ErrInvalidPrivateKey) {
			t.Errorf("length %d: error %v, want ErrInvalidPrivateKey", n, err)
		}
	}
}

func TestPrivateKeyCopiesAndClear(t *testing.T) {
	in := bytes.Repeat([]byte{7}, 32)
	p, err := NewPrivateKey(in)
	if err != nil {
		t.Fatal(err)
	}
	in[0] = 8
	p.Bytes()[1] = 9
	if !bytes.Equal(p.Bytes(), bytes.Repeat([]byte{7}, 32)) {
		t.Fatal("key changed through its input or a returned copy")
	}
	q, _ := NewPrivateKey(p.Bytes())
	var nilKey *PrivateKey
	if !p.Equal(q) || p.Equal(nil) || nilKey.Equal(p) || !nilKey.Equal(nil) {
		t.Fatal("Equal")
	}
	r, _ := GeneratePrivateKey()
	if p.Equal(r) {
		t.Fatal("different keys compare equal")
	}
	// A copy of the value shares the key, so Clear reaches it.
	v := *p
	p.Clear()
	if !bytes.Equal(p.Bytes(), make([]byte, 32)) || !bytes.Equal(v.Bytes(), make([]byte, 32)) {
		t.Fatal("Clear left key bytes")
	}
}

// TestPrivateKeyConcurrentPublicKey runs the lazy public-key computation
// from several goroutines (meaningful under -race).
func TestPrivateKeyConcurrentPublicKey(t *testing.T) {
	g, _ := GeneratePrivateKey()
	p, _ := NewPrivateKey(g.Bytes())
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if !p.PublicKey().Equal(g.PublicKey()) {
				t.Error("public key differs")
			}
			if p.PublicKey().Verify([]byte("m"), make([]byte, 64)) {
				t.Error("zero signature accepted")
			}
		})
	}
	wg.Wait()
}

// RFC 7748 section 6.1.
const (
	rfcAlicePriv = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
	rfcAlicePub  = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
	rfcBobPriv   = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
	rfcBobPub    = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
	rfcShared    = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
)

func TestECDHRFC7748(t *testing.T) {
	a, _ := NewPrivateKey(mustHex(t, rfcAlicePriv))
	b, _ := NewPrivateKey(mustHex(t, rfcBobPriv))
	if hex.EncodeToString(a.PublicKey().Bytes()) != rfcAlicePub || hex.EncodeToString(b.PublicKey().Bytes()) != rfcBobPub {
		t.Fatal("public keys differ from RFC 7748")
	}
	// From freshly loaded keys, so ECDH runs before any public key exists.
	for _, c := range []struct{ priv, pub string }{{rfcAlicePriv, rfcBobPub}, {rfcBobPriv, rfcAlicePub}} {
		p, _ := NewPrivateKey(mustHex(t, c.priv))
		pub, _ := NewPublicKey(mustHex(t, c.pub))
		s, err := p.ECDH(pub)
		if err != nil || hex.EncodeToString(s) != rfcShared {
			t.Fatalf("shared secret %x, %v", s, err)
		}
	}
}

func TestECDHAgreement(t *testing.T) {
	for range 30 {
		a, _ := GeneratePrivateKey()
		b, _ := GeneratePrivateKey()
		ab, err1 := a.ECDH(b.PublicKey())
		ba, err2 := b.ECDH(a.PublicKey())
		if err1 != nil || err2 != nil || !bytes.Equal(ab, ba) || len(ab) != 32 {
			t.Fatalf("ab %x, ba %x, %v %v", ab, ba, err1, err2)
		}
		ea, _ := ecdh.X25519().NewPrivateKey(a.Bytes())
		eb, _ := ecdh.X25519().NewPublicKey(b.PublicKey().Bytes())
		want, _ := ea.ECDH(eb)
		if !bytes.Equal(ab, want) {
			t.Fatalf("ECDH %x, crypto/ecdh %x", ab, want)
		}
	}
}

// smallOrderU lists the canonical u-coordinates of every point of order
// dividing 8 on Curve25519 and its twist: X25519 of any clamped scalar
// with them is all zeros.
var smallOrderU = map[string]string{
	"0":       "0000000000000000000000000000000000000000000000000000000000000000",
	"1":       "0100000000000000000000000000000000000000000000000000000000000000",
	"order8a": "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"order8b": "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
	"p-1":     "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
}

func TestECDHSmallOrder(t *testing.T) {
	p, _ := GeneratePrivateKey()
	ep, _ := ecdh.X25519().NewPrivateKey(p.Bytes())
	for name, u := range smallOrderU {
		pub, err := NewPublicKey(mustHex(t, u))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// crypto/ecdh, an independent implementation, agrees these are
		// small-order keys.
		if e, _ := ecdh.X25519().NewPublicKey(pub.Bytes()); e == nil {
			t.Fatal(name)
		} else if _, err := ep.ECDH(e); err == nil {
			t.Fatalf("%s: crypto/ecdh accepted it", name)
		}
		s, err := p.ECDH(pub)
		if !errors.Is(err, ErrSmallOrder) || s != nil {
			t.Errorf("u = %s: secret %x, error %v; want nil, ErrSmallOrder", name, s, err)
		}
		if pub.Verify([]byte("m"), make([]byte, 64)) {
			t.Errorf("u = %s verified a zero signature", name)
		}
	}
}
