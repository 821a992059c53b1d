package curve

import (
	"bytes"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/wycheproof"
)

type xdhGroup struct {
	Type  string `json:"type"`
	Curve string `json:"curve"`
	Tests []struct {
		wycheproof.Test
		Public  wycheproof.Hex `json:"public"`
		Private wycheproof.Hex `json:"private"`
		Shared  wycheproof.Hex `json:"shared"`
	} `json:"tests"`
}

// TestWycheproofX25519 runs Wycheproof's X25519 vectors through ScalarMult
// and DH. "acceptable" cases come in two kinds: a zero shared secret (a
// small-order public key), which DH must refuse with ErrZeroSecret, and
// inputs some libraries reject but RFC 7748 defines (twist points,
// non-canonical u), for which the RFC's answer is expected.
func TestWycheproofX25519(t *testing.T) {
	f := wycheproof.Load[xdhGroup](t, "x25519_test")
	counts := map[string]int{}
	for _, g := range f.TestGroups {
		if g.Type != "XdhComp" || g.Curve != "curve25519" {
			t.Fatalf("unexpected group %s/%s", g.Type, g.Curve)
		}
		for _, tc := range g.Tests {
			if len(tc.Public) != Size || len(tc.Private) != Size || len(tc.Shared) != Size {
				// This file has none; a length error is not ours to test
				// here, the types rule it out.
				t.Fatalf("tc%d: unexpected lengths", tc.ID)
			}
			var out, dh [Size]byte
			ScalarMult(&out, (*[Size]byte)(tc.Private), (*[Size]byte)(tc.Public))
			err := DH(&dh, (*[Size]byte)(tc.Private), (*[Size]byte)(tc.Public))
			zero := bytes.Equal(tc.Shared, make([]byte, Size))

			switch {
			case tc.Result == "valid":
				counts["valid"]++
				if !bytes.Equal(out[:], tc.Shared) || err != nil || dh != out {
					t.Errorf("tc%d (%s): got %x, %v; want %x", tc.ID, tc.Comment, dh, err, tc.Shared)
				}
			case tc.Result == "acceptable" && zero:
				counts["acceptable, zero secret"]++
				if !tc.HasFlag("ZeroSharedSecret") {
					t.Errorf("tc%d: zero secret without the ZeroSharedSecret flag", tc.ID)
				}
				if out != ([Size]byte{}) || err != ErrZeroSecret {
					t.Errorf("tc%d (%s): DH = %x, %v; want ErrZeroSecret", tc.ID, tc.Comment, dh, err)
				}
			case tc.Result == "acceptable":
				counts["acceptable, computed"]++
				if !bytes.Equal(out[:], tc.Shared) || err != nil || dh != out {
					t.Errorf("tc%d (%s, %v): got %x, %v; want %x", tc.ID, tc.Comment, tc.Flags, dh, err, tc.Shared)
				}
			default:
				t.Errorf("tc%d: unexpected result %q", tc.ID, tc.Result)
			}
		}
	}
	// The file is pinned by hash, so these are exact; a silently empty or
	// truncated file fails here.
	want := map[string]int{"valid": 264, "acceptable, zero secret": 31, "acceptable, computed": 223}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s: ran %d vectors, want %d", k, counts[k], n)
		}
	}
	if f.NumberOfTests != 518 {
		t.Errorf("numberOfTests = %d, want 518", f.NumberOfTests)
	}
	t.Logf("ran %v", counts)
}
