package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
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

// BenchmarkDecodeFrame puts the strict decoding of a frame carrying a
// largest envelope beside its floor, encoding/json's Unmarshal of the same
// bytes: the difference is the duplicate-key walk and json.Decoder's
// buffer. token-walk adds the token-based walk to it, to show what the
// byte walk saves (subtract strict from it).
func BenchmarkDecodeFrame(b *testing.B) {
	data, err := json.Marshal(api.Frame{Type: api.FrameSend, ID: "m-1", To: "bob", Body: make([]byte, api.MaxEnvelopeSize)})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("strict", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var f api.Frame
			if err := decodeStrict(data, &f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("token-walk", func(b *testing.B) { // the walk checkDuplicateKeys replaced
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if err := duplicateKeysByToken(data); err != nil {
				b.Fatal(err)
			}
			var f api.Frame
			if err := decodeStrict(data, &f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("floor=json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var f api.Frame
			if err := json.Unmarshal(data, &f); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// duplicateKeysByToken is the obvious duplicate-key check, on
// json.Decoder.Token: slow, but plainly right, so the byte walk of
// checkDuplicateKeys is checked against it.
func duplicateKeysByToken(data []byte) error {
	type level struct {
		object  bool
		wantKey bool
		keys    map[string]struct{}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers out of float64 range are valid JSON
	var stack []*level
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return classifyJSONError(err)
		}
		var top *level
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			k, _ := tok.(string)
			fk := foldKey(k)
			if _, dup := top.keys[fk]; dup {
				return errDuplicateKey
			}
			top.keys[fk] = struct{}{}
			top.wantKey = false
			continue
		}
		// tok is a value, or the end of an array.
		if top != nil && top.object {
			top.wantKey = true
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &level{object: true, wantKey: true, keys: map[string]struct{}{}})
		case json.Delim('['):
			stack = append(stack, &level{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

// On valid JSON, checkDuplicateKeys and the token-based check agree.
func FuzzDuplicateKeys(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":{"a":2,"A":3}}`,
		`[{"k":1},{"k":2}]`,
		`{"\u0061":1,"a":2}`,
		`{"x\"y":1,"x\"Y":2}`,
		`{"ſ":1,"s":2}`,
		`{"a":[{"b":1,"c":{"d":"\\"}}],"e":"}"}`,
		`"just a string"`,
		`{"a":{},"b":[],"c":{"":1,"":2}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		got, want := checkDuplicateKeys(data), duplicateKeysByToken(data)
		if (got == nil) != (want == nil) {
			t.Fatalf("%q: byte walk says %v, tokens say %v", data, got, want)
		}
	})
}
