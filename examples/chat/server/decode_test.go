package server

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
)

// foldKey(a) == foldKey(b) exactly when strings.EqualFold(a, b), the
// relation encoding/json matches field names by, over every pair of runes
// in the ranges where case folding happens (Latin, Greek, Cyrillic, and
// the odd ones out: the Kelvin sign, the long s, the Angstrom sign).
func TestFoldKeyIsEqualFold(t *testing.T) {
	var runes []rune
	for r := rune(0); r < 0x530; r++ {
		runes = append(runes, r)
	}
	runes = append(runes, 0x1e9e, 0x2126, 0x212a, 0x212b, 0xff21, 0xff41)
	for _, a := range runes {
		for _, b := range runes {
			sa, sb := string(a), string(b)
			if got, want := foldKey(sa) == foldKey(sb), strings.EqualFold(sa, sb); got != want {
				t.Fatalf("%U %U: foldKey equal %v, EqualFold %v", a, b, got, want)
			}
		}
	}
}

// decodeStrict never panics; what it accepts is valid JSON with no object
// holding two keys that fold alike; and its errors never carry input bytes
// (they are one of the fixed errors, a syntax error's offset aside).
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{
		`{"type":"send","id":"1","to":"bob","body":"eA=="}`,
		`{"type":"send","to":"bob","TO":"eve","body":"eA=="}`,
		`{"type":"ack","seq":1}{}`,
		`{"name":"carol","signed_prekey":{"id":1,"id":2}}`,
		`{"one_time_prekeys":[{"id":1},{"id":1,"ſd":2}]}`,
		`[[[{"a":{"b":[{"c":1,"C":2}]}}]]]`,
		`{"type":"send","x":"\u001b[2J"}`,
		`{"a":`,
		``,
	} {
		f.Add([]byte(s))
	}
	fixed := []error{errDuplicateKey, errUnknownField, errWrongType, errTrailingData, errMalformedJSON}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fr api.Frame
		err := decodeStrict(data, &fr)
		if err == nil {
			if !json.Valid(data) {
				t.Fatalf("accepted invalid JSON %q", data)
			}
			var m map[string]any
			if json.Unmarshal(data, &m) == nil {
				seen := map[string]bool{}
				for k := range m {
					if seen[foldKey(k)] {
						t.Fatalf("accepted two keys folding to %q", foldKey(k))
					}
					seen[foldKey(k)] = true
				}
			}
			return
		}
		known := false
		for _, e := range fixed {
			known = known || errors.Is(err, e)
		}
		if !known {
			t.Fatalf("error %q is not one of the fixed errors", err)
		}
		if msg := err.Error(); !utf8.ValidString(msg) || strings.ContainsAny(msg, "\"\\\x1b") {
			t.Fatalf("error %q quotes input", msg)
		}
	})
}
