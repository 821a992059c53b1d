package aead

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/ratchetkit/ratchetkit/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite testdata/aead/message_keys.json from the standard-library composition")

type hexBytes = testutil.Hex

func suiteOf(s Suite) *suite { return s.(*suite) }

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestMcGrewViega runs GCM test cases 13–16 of McGrew and Viega's GCM paper
// (the AES-256 ones with 96-bit IVs) through the AES-256-GCM suite's cipher
// stage, the code Seal and Open run after the key derivation.
func TestMcGrewViega(t *testing.T) {
	var v struct {
		Tests []struct {
			Case                      int
			Key, IV, AAD, PT, CT, Tag hexBytes
		}
	}
	readJSON(t, filepath.Join("..", "testdata", "rfc", "gcm_mcgrew_viega.json"), &v)
	if len(v.Tests) != 4 {
		t.Fatalf("%d test cases, want 4 (13–16)", len(v.Tests))
	}
	s := suiteOf(AES256GCM())
	for _, tc := range v.Tests {
		key, nonce := (*[32]byte)(tc.Key), (*[12]byte)(tc.IV)
		want := append(append([]byte{}, tc.CT...), tc.Tag...)
		prefix := []byte("prefix")
		got := s.sealRaw(bytes.Clone(prefix), key, nonce, tc.PT, tc.AAD)
		if !bytes.Equal(got, append(prefix, want...)) {
			t.Errorf("case %d: sealRaw = %x, want prefix||%x", tc.Case, got, want)
		}
		pt, err := s.openRaw(nil, key, nonce, want, tc.AAD)
		if err != nil || !bytes.Equal(pt, tc.PT) {
			t.Errorf("case %d: openRaw = %x, %v; want %x", tc.Case, pt, err, tc.PT)
		}
		want[len(want)-1] ^= 1
		if pt, err := s.openRaw(nil, key, nonce, want, tc.AAD); err != ErrOpen || pt != nil {
			t.Errorf("case %d: openRaw with a flipped tag bit = %x, %v", tc.Case, pt, err)
		}
	}
}

// messageKeyVectors is the layout of testdata/aead/message_keys.json.
type messageKeyVectors struct {
	Description string            `json:"description"`
	Suites      []messageKeySuite `json:"suites"`
}

type messageKeySuite struct {
	Suite   string             `json:"suite"`
	Info    string             `json:"info"`
	Vectors []messageKeyVector `json:"vectors"`
}

type messageKeyVector struct {
	MK         hexBytes `json:"mk"`
	Plaintext  hexBytes `json:"plaintext"`
	AD         hexBytes `json:"ad"`
	Key        hexBytes `json:"key"`
	Nonce      hexBytes `json:"nonce"`
	Ciphertext hexBytes `json:"ciphertext"`
}

var messageKeysPath = filepath.Join("..", "testdata", "aead", "message_keys.json")

// TestMessageKeyVectors checks the whole message path, message key →
// HKDF-SHA256 → cipher, against known answers, for both suites. The vectors
// were made by the plain standard-library composition (crypto/hkdf, then
// crypto/aes and crypto/cipher, or x/crypto's chacha20poly1305) with the
// info strings declared in this test, never by this package; the test
// recomputes them that way as well, so the file, the composition and the
// package must all agree. testdata/aead/verify_vectors.py checks the same
// file with an unrelated implementation (Python's cryptography).
func TestMessageKeyVectors(t *testing.T) {
	if *update {
		writeMessageKeyVectors(t)
	}
	var v messageKeyVectors
	readJSON(t, messageKeysPath, &v)
	suites := map[string]struct {
		s    Suite
		info string
	}{
		"AES-256-GCM":       {AES256GCM(), infoAES256GCM},
		"ChaCha20-Poly1305": {ChaCha20Poly1305(), infoChaCha20Poly1305},
	}
	if len(v.Suites) != len(suites) {
		t.Fatalf("%d suites in the file, want %d", len(v.Suites), len(suites))
	}
	for _, sv := range v.Suites {
		want, ok := suites[sv.Suite]
		if !ok || sv.Info != want.info || want.s.Name() != sv.Suite {
			t.Fatalf("suite %q with info %q: not the profile's", sv.Suite, sv.Info)
		}
		if len(sv.Vectors) < 10 {
			t.Fatalf("%s: only %d vectors", sv.Suite, len(sv.Vectors))
		}
		for i, tv := range sv.Vectors {
			key, nonce, ct := stdDerive(want.info, tv.MK, tv.Plaintext, tv.AD)
			if !bytes.Equal(key, tv.Key) || !bytes.Equal(nonce, tv.Nonce) || !bytes.Equal(ct, tv.Ciphertext) {
				t.Fatalf("%s #%d: the standard-library composition disagrees with the file", sv.Suite, i)
			}
			if got := want.s.Seal(nil, tv.MK, tv.Plaintext, tv.AD); !bytes.Equal(got, tv.Ciphertext) {
				t.Errorf("%s #%d: Seal = %x, want %x", sv.Suite, i, got, tv.Ciphertext)
			}
			pt, err := want.s.Open(nil, tv.MK, tv.Ciphertext, tv.AD)
			if err != nil || !bytes.Equal(pt, tv.Plaintext) {
				t.Errorf("%s #%d: Open = %x, %v", sv.Suite, i, pt, err)
			}
			// The derivation on its own: the cipher stage under the
			// file's key and nonce gives the same bytes.
			raw := suiteOf(want.s).sealRaw(nil, (*[32]byte)(tv.Key), (*[12]byte)(tv.Nonce), tv.Plaintext, tv.AD)
			if !bytes.Equal(raw, tv.Ciphertext) {
				t.Errorf("%s #%d: sealRaw under the file's key and nonce differs", sv.Suite, i)
			}
		}
	}
}

// stdDerive is the message AEAD written with nothing but the standard
// library and x/crypto: HKDF-SHA256 with 32 zero bytes of salt, 44 bytes
// split 32/12.
func stdDerive(info string, mk, pt, ad []byte) (key, nonce, ct []byte) {
	okm, err := hkdf.Key(sha256.New, mk, make([]byte, 32), info, 44)
	if err != nil {
		panic(err)
	}
	newAEAD := newStdGCM
	if info == infoChaCha20Poly1305 {
		newAEAD = chacha20poly1305.New
	}
	return okm[:32], okm[32:], stdSeal(newAEAD, info, nil, mk, pt, ad)
}

func writeMessageKeyVectors(t *testing.T) {
	rng := rand.NewChaCha8([32]byte{'m', 'e', 's', 's', 'a', 'g', 'e', ' ', 'k', 'e', 'y', 's'})
	random := func(n int) hexBytes {
		b := make([]byte, n)
		rng.Read(b)
		return b
	}
	var v messageKeyVectors
	v.Description = "ratchetkit message AEAD (profile v1): HKDF-SHA256(salt = 32 zero bytes, ikm = mk, info, 44) -> key = bytes 0-31, nonce = bytes 32-43; ciphertext = AEAD-Seal(key, nonce, plaintext, ad), tag appended. Generated by the standard-library composition (aead/vectors_test.go -update)."
	// Plaintext lengths around the cipher block sizes, and associated
	// data from none to a ratchet message's AD || header (66 + 42 bytes).
	ptLens := []int{0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 1024}
	adLens := []int{0, 1, 42, 108}
	for _, s := range []struct{ name, info string }{
		{"AES-256-GCM", infoAES256GCM},
		{"ChaCha20-Poly1305", infoChaCha20Poly1305},
	} {
		sv := messageKeySuite{Suite: s.name, Info: s.info}
		for i, n := range ptLens {
			mk, pt, ad := random(32), random(n), random(adLens[i%len(adLens)])
			if i == 0 {
				mk = make([]byte, 32) // the all-zero message key, for hand checks
			}
			key, nonce, ct := stdDerive(s.info, mk, pt, ad)
			sv.Vectors = append(sv.Vectors, messageKeyVector{mk, pt, ad, key, nonce, ct})
		}
		v.Suites = append(v.Suites, sv)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(messageKeysPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(messageKeysPath, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
