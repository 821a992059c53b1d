package keys

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/testutil"
)

// The XEdDSA vectors of testdata/xeddsa (see its README), run through the
// public API: DecodePublicKey / NewPublicKey, PublicKey.Verify,
// VerifySignedPreKey and IdentityKeyPair.

type hexBytes = testutil.Hex

type vector struct {
	Name     string   `json:"name"`
	Priv     hexBytes `json:"priv"`
	Pub      hexBytes `json:"pub"`
	Msg      hexBytes `json:"msg"`
	Sig      hexBytes `json:"sig"`
	KeyError string   `json:"key_error"`
}

func loadVectors(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "xeddsa", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// verifyRaw is the verdict of the public API on a raw u: a key that does
// not decode verifies nothing.
func verifyRaw(u, msg, sig []byte) bool {
	pub, err := NewPublicKey(u)
	return err == nil && pub.Verify(msg, sig)
}

func TestVectorsLibsignal(t *testing.T) {
	var f struct{ Vectors []vector }
	loadVectors(t, "libsignal.json", &f)
	if len(f.Vectors) < 200 {
		t.Fatalf("%d vectors", len(f.Vectors))
	}
	for i, v := range f.Vectors {
		pub, err := DecodePublicKey(v.Pub)
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		if !pub.Verify(v.Msg, v.Sig) {
			t.Errorf("vector %d: libsignal's signature rejected", i)
		}
		// A second verification runs on the cached Edwards key.
		if !pub.Verify(v.Msg, v.Sig) || pub.Verify(append(bytes.Clone(v.Msg), 0), v.Sig) {
			t.Errorf("vector %d: cached key gives another verdict", i)
		}
		ik, err := NewIdentityKeyPair(v.Priv)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ik.PublicKey().Encode(), v.Pub) {
			t.Fatalf("vector %d: public key %x, libsignal %x", i, ik.PublicKey().Encode(), v.Pub)
		}
		// Our signature under libsignal's key verifies with the decoded key.
		if !pub.Verify(v.Msg, ik.Sign(v.Msg)) {
			t.Errorf("vector %d: our signature under libsignal's key rejected", i)
		}
		if len(v.Msg) == 33 && v.Msg[0] == wireKeyType {
			if spk, err := DecodePublicKey(v.Msg); err == nil {
				if err := VerifySignedPreKey(pub, spk, v.Sig); err != nil {
					t.Errorf("vector %d as a signed prekey: %v", i, err)
				}
			}
		}
	}
}

func TestVectorsLibsignalKAT(t *testing.T) {
	var v vector
	loadVectors(t, "libsignal_kat.json", &v)
	ik, err := NewIdentityKeyPair(v.Priv)
	if err != nil || !bytes.Equal(ik.PublicKey().Bytes(), v.Pub) {
		t.Fatalf("public key %x, want %x (%v)", ik.PublicKey().Bytes(), v.Pub, err)
	}
	// The signed message is itself an encoded public key: this is a signed
	// prekey signature as libsignal makes them.
	spk, err := DecodePublicKey(v.Msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifySignedPreKey(ik.PublicKey(), spk, v.Sig); err != nil {
		t.Fatal(err)
	}
}

func TestVectorsOursAndKAT(t *testing.T) {
	for _, name := range []string{"ours.json", "kat.json"} {
		var f struct {
			Spec           []vector `json:"spec"`
			LibsignalStyle []vector `json:"libsignal_style"`
		}
		loadVectors(t, name, &f)
		if len(f.Spec) < 20 || len(f.LibsignalStyle) < 20 {
			t.Fatalf("%s: %d + %d vectors", name, len(f.Spec), len(f.LibsignalStyle))
		}
		for i, v := range append(f.Spec, f.LibsignalStyle...) {
			pub, err := DecodePublicKey(v.Pub)
			if err != nil || !pub.Verify(v.Msg, v.Sig) {
				t.Errorf("%s %d: rejected (%v)", name, i, err)
			}
		}
	}
}

func TestVectorsNegative(t *testing.T) {
	var f struct {
		Valid []vector `json:"valid"`
		Flips []struct {
			Valid int    `json:"valid"`
			Field string `json:"field"`
			Bits  int    `json:"bits"`
		} `json:"flips"`
		Cases []vector `json:"cases"`
	}
	loadVectors(t, "negative.json", &f)
	for _, v := range f.Valid {
		if !verifyRaw(v.Pub, v.Msg, v.Sig) {
			t.Errorf("valid vector %s rejected", v.Name)
		}
	}
	n := 0
	for _, fs := range f.Flips {
		v := f.Valid[fs.Valid]
		fields := map[string][]byte{"pub": v.Pub, "msg": v.Msg, "sig": v.Sig}
		for bit := range fs.Bits {
			flipped := bytes.Clone(fields[fs.Field])
			flipped[bit/8] ^= 1 << (bit % 8)
			got := map[string][]byte{"pub": v.Pub, "msg": v.Msg, "sig": v.Sig}
			got[fs.Field] = flipped
			if verifyRaw(got["pub"], got["msg"], got["sig"]) {
				t.Fatalf("%s: accepted with bit %d of %s flipped", v.Name, bit, fs.Field)
			}
			n++
		}
	}
	for _, c := range f.Cases {
		_, err := NewPublicKey(c.Pub)
		// keys checks length and canonical form when decoding; the curve
		// checks (u = p − 1, twist, small order) happen in Verify.
		switch c.KeyError {
		case "length", "non_canonical":
			if !errors.Is(err, ErrInvalidPublicKey) {
				t.Errorf("%s: NewPublicKey error %v, want ErrInvalidPublicKey", c.Name, err)
			}
		default:
			if err != nil {
				t.Errorf("%s: NewPublicKey: %v", c.Name, err)
			}
		}
		if len(c.Pub) == 32 {
			if _, err := DecodePublicKey(append([]byte{wireKeyType}, c.Pub...)); (err == nil) != (c.KeyError != "length" && c.KeyError != "non_canonical") {
				t.Errorf("%s: DecodePublicKey: %v", c.Name, err)
			}
		}
		if verifyRaw(c.Pub, c.Msg, c.Sig) {
			t.Errorf("%s accepted", c.Name)
		}
		n++
	}
	t.Logf("%d negative vectors rejected", n)
}
