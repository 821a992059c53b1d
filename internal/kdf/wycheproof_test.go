package kdf

import (
	"bytes"
	"crypto/subtle"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/wycheproof"
)

type macGroup struct {
	Type    string `json:"type"`
	KeySize int    `json:"keySize"`
	TagSize int    `json:"tagSize"` // bits
	Tests   []struct {
		wycheproof.Test
		Key wycheproof.Hex `json:"key"`
		Msg wycheproof.Hex `json:"msg"`
		Tag wycheproof.Hex `json:"tag"`
	} `json:"tests"`
}

// TestWycheproofHMACSHA256 runs Wycheproof's HMAC-SHA256 vectors, full and
// truncated tags, through SetKey and MAC: a valid tag must be a prefix of
// the MAC, an invalid one must not be.
func TestWycheproofHMACSHA256(t *testing.T) {
	f := wycheproof.Load[macGroup](t, "hmac_sha256_test")
	bothPaths(t, func(t *testing.T) {
		h := NewHasher()
		counts := map[string]int{}
		for _, g := range f.TestGroups {
			if g.Type != "MacTest" || g.TagSize%8 != 0 || g.TagSize > 8*Size || g.TagSize < 8 {
				t.Fatalf("unexpected group %s with %d-bit tags", g.Type, g.TagSize)
			}
			for _, tc := range g.Tests {
				var k Key
				h.SetKey(&k, tc.Key)
				var out [Size]byte
				h.MAC(&out, &k, tc.Msg, nil, nil)
				match := len(tc.Tag) == g.TagSize/8 && subtle.ConstantTimeCompare(out[:len(tc.Tag)], tc.Tag) == 1
				switch tc.Result {
				case "valid":
					if !match {
						t.Errorf("tc%d (%s): MAC = %x, want prefix %x", tc.ID, tc.Comment, out, tc.Tag)
					}
				case "invalid":
					if match {
						t.Errorf("tc%d (%s): invalid tag %x matches", tc.ID, tc.Comment, tc.Tag)
					}
				default:
					t.Errorf("tc%d: unexpected result %q", tc.ID, tc.Result)
				}
				counts[tc.Result]++
			}
		}
		for res, n := range map[string]int{"valid": 66, "invalid": 108} {
			if counts[res] != n {
				t.Errorf("%s: ran %d vectors, want %d", res, counts[res], n)
			}
		}
		t.Logf("ran %v", counts)
	})
}

type hkdfGroup struct {
	Type    string `json:"type"`
	KeySize int    `json:"keySize"`
	Tests   []struct {
		wycheproof.Test
		IKM  wycheproof.Hex `json:"ikm"`
		Salt wycheproof.Hex `json:"salt"`
		Info wycheproof.Hex `json:"info"`
		Size int            `json:"size"`
		OKM  wycheproof.Hex `json:"okm"`
	} `json:"tests"`
}

// TestWycheproofHKDFSHA256 runs Wycheproof's HKDF-SHA256 vectors through
// SetKey (for the salt) and HKDF. The invalid ones ask for more than
// 255·32 bytes, which Expand refuses with a panic: no caller in this module
// can ask for that much, so it is a programming error, not an input error.
func TestWycheproofHKDFSHA256(t *testing.T) {
	f := wycheproof.Load[hkdfGroup](t, "hkdf_sha256_test")
	bothPaths(t, func(t *testing.T) {
		h := NewHasher()
		counts := map[string]int{}
		for _, g := range f.TestGroups {
			if g.Type != "HkdfTest" {
				t.Fatalf("unexpected group %s", g.Type)
			}
			for _, tc := range g.Tests {
				var salt Key
				h.SetKey(&salt, tc.Salt)
				switch tc.Result {
				case "valid":
					out := make([]byte, tc.Size)
					h.HKDF(out, &salt, tc.IKM, tc.Info)
					if !bytes.Equal(out, tc.OKM) {
						t.Errorf("tc%d (%s): HKDF = %x, want %x", tc.ID, tc.Comment, out, tc.OKM)
					}
					if len(tc.Salt) == 0 {
						counts["valid, empty salt"]++
						h.HKDF(out, ZeroSalt(), tc.IKM, tc.Info)
						if !bytes.Equal(out, tc.OKM) {
							t.Errorf("tc%d: HKDF with ZeroSalt = %x, want %x", tc.ID, out, tc.OKM)
						}
					}
				case "invalid":
					if !tc.HasFlag("SizeTooLarge") || tc.Size <= MaxExpand {
						t.Fatalf("tc%d: an invalid case of a kind this test does not know", tc.ID)
					}
					if !panics(func() { h.HKDF(make([]byte, tc.Size), &salt, tc.IKM, tc.Info) }) {
						t.Errorf("tc%d: HKDF of %d bytes did not panic", tc.ID, tc.Size)
					}
				default:
					t.Errorf("tc%d: unexpected result %q", tc.ID, tc.Result)
				}
				counts[tc.Result]++
			}
		}
		for res, n := range map[string]int{"valid": 83, "invalid": 3} {
			if counts[res] != n {
				t.Errorf("%s: ran %d vectors, want %d", res, counts[res], n)
			}
		}
		if counts["valid, empty salt"] == 0 {
			t.Error("no empty-salt vectors ran")
		}
		t.Logf("ran %v", counts)
	})
}

func panics(f func()) (ok bool) {
	defer func() { ok = recover() != nil }()
	f()
	return false
}
