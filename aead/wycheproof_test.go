package aead

import (
	"bytes"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/wycheproof"
)

type aeadGroup struct {
	Type    string `json:"type"`
	KeySize int    `json:"keySize"` // bits
	IVSize  int    `json:"ivSize"`  // bits
	TagSize int    `json:"tagSize"` // bits
	Tests   []struct {
		wycheproof.Test
		Key wycheproof.Hex `json:"key"`
		IV  wycheproof.Hex `json:"iv"`
		AAD wycheproof.Hex `json:"aad"`
		Msg wycheproof.Hex `json:"msg"`
		CT  wycheproof.Hex `json:"ct"`
		Tag wycheproof.Hex `json:"tag"`
	} `json:"tests"`
}

// runWycheproofAEAD runs a Wycheproof AEAD file through a suite's cipher
// stage (sealRaw and openRaw, the code Seal and Open use after deriving the
// key and nonce). Only 256-bit keys, 96-bit nonces and 128-bit tags can
// reach that stage: the derivation makes exactly those. Groups with other
// sizes are skipped and counted; skip, if not nil, checks each skipped case.
func runWycheproofAEAD(t *testing.T, s Suite, file string, skip func(tc *wycheproof.Test)) map[string]int {
	f := wycheproof.Load[aeadGroup](t, file)
	counts := map[string]int{}
	for _, g := range f.TestGroups {
		if g.Type != "AeadTest" {
			t.Fatalf("unexpected group type %s", g.Type)
		}
		if g.KeySize != 256 || g.IVSize != 96 || g.TagSize != 128 {
			for _, tc := range g.Tests {
				if skip != nil {
					skip(&tc.Test)
				}
				counts["skipped"]++
			}
			continue
		}
		for _, tc := range g.Tests {
			key, nonce := (*[32]byte)(tc.Key), (*[12]byte)(tc.IV)
			sealed := append(bytes.Clone(tc.CT), tc.Tag...)
			pt, err := suiteOf(s).openRaw(nil, key, nonce, sealed, tc.AAD)
			switch tc.Result {
			case "valid":
				if err != nil || !bytes.Equal(pt, tc.Msg) {
					t.Errorf("tc%d (%s): openRaw = %x, %v; want %x", tc.ID, tc.Comment, pt, err, tc.Msg)
				}
				if got := suiteOf(s).sealRaw(nil, key, nonce, tc.Msg, tc.AAD); !bytes.Equal(got, sealed) {
					t.Errorf("tc%d (%s): sealRaw = %x, want %x", tc.ID, tc.Comment, got, sealed)
				}
			case "invalid":
				if err != ErrOpen || pt != nil {
					t.Errorf("tc%d (%s, %v): openRaw = %x, %v; want ErrOpen", tc.ID, tc.Comment, tc.Flags, pt, err)
				}
			default:
				// Neither file has "acceptable" AEAD cases; one appearing
				// would need a decision, not a default.
				t.Errorf("tc%d: unexpected result %q", tc.ID, tc.Result)
			}
			counts[tc.Result]++
		}
	}
	t.Logf("%s: %v", file, counts)
	return counts
}

func checkCounts(t *testing.T, got, want map[string]int) {
	t.Helper()
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d vectors, want %d", k, got[k], n)
		}
	}
}

// TestWycheproofAESGCM runs the AES-256, 96-bit IV, 128-bit tag cases of
// Wycheproof's AES-GCM file. The 128- and 192-bit keys and the other IV
// lengths (0 to 2056 bits) are skipped: the suite is AES-256 with a derived
// 12-byte nonce, and the cipher stage's types admit nothing else.
func TestWycheproofAESGCM(t *testing.T) {
	counts := runWycheproofAEAD(t, AES256GCM(), "aes_gcm_test", nil)
	checkCounts(t, counts, map[string]int{"valid": 39, "invalid": 27, "skipped": 250})
}

// TestWycheproofChaCha20Poly1305 runs Wycheproof's ChaCha20-Poly1305 file.
// The only cases skipped are those with nonces other than 96 bits, all of
// them invalid by RFC 8439, which the cipher stage's [12]byte nonce cannot
// express.
func TestWycheproofChaCha20Poly1305(t *testing.T) {
	counts := runWycheproofAEAD(t, ChaCha20Poly1305(), "chacha20_poly1305_test", func(tc *wycheproof.Test) {
		if tc.Result != "invalid" || !tc.HasFlag("InvalidNonceSize") {
			t.Errorf("tc%d: skipped a case that is not an invalid nonce size", tc.ID)
		}
	})
	checkCounts(t, counts, map[string]int{"valid": 256, "invalid": 60, "skipped": 9})
}
