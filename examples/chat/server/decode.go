package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"unicode"
)

// Request bodies and WebSocket frames are decoded strictly: exactly one
// JSON value, no unknown fields, and no key twice in one object.
// encoding/json lets the last of two equal keys win, and matches keys to
// fields without regard to case, so {"to":"bob","TO":"mallory"} would be
// read as a send to mallory by this server while a proxy or a log reader
// that takes the first key sees one to bob. Refusing duplicates (equal
// under the same case folding encoding/json applies) leaves one reading.
//
// The errors are fixed texts. encoding/json's own messages quote the
// request's field names, which are attacker bytes, so they are never
// passed on.
var (
	errDuplicateKey  = errors.New("a JSON object has the same field twice")
	errUnknownField  = errors.New("a JSON object has a field this endpoint does not take")
	errWrongType     = errors.New("a JSON field has the wrong type")
	errTrailingData  = errors.New("data after the JSON value")
	errMalformedJSON = errors.New("malformed JSON")
)

// decodeStrict decodes exactly one JSON value from data into v, with no
// unknown fields and no duplicate keys.
func decodeStrict(data []byte, v any) error {
	if err := checkDuplicateKeys(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return classifyJSONError(err)
	}
	if dec.More() {
		return errTrailingData
	}
	if _, err := dec.Token(); err != io.EOF {
		return errTrailingData
	}
	return nil
}

// classifyJSONError maps a decoding failure to one of the fixed errors. A
// syntax error keeps its byte offset, a number the server computed.
func classifyJSONError(err error) error {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Errorf("%w at byte %d", errMalformedJSON, se.Offset)
	}
	if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return errWrongType
	}
	// encoding/json reports an unknown field with an unexported error
	// type; its text is the only way to tell.
	if strings.HasPrefix(err.Error(), "json: unknown field ") {
		return errUnknownField
	}
	return errMalformedJSON
}

// checkDuplicateKeys fails on an object in data with two keys that
// encoding/json would map to the same field. It leaves invalid JSON to the
// decoder, which reports it, and walks valid JSON byte by byte: a value
// string (an envelope's base64, most of a frame) is skipped, not copied,
// and a key is unescaped only if it has an escape. So the check costs a
// pass over bytes already bounded by api.MaxBodySize or api.MaxFrameSize,
// and a set per object of the keys it holds; json.Decoder.Token, the
// obvious way, copied every value and cost twelve times the frame's size
// in allocations.
func checkDuplicateKeys(data []byte) error {
	if !json.Valid(data) {
		return nil
	}
	// stack holds the key set of each open object, nil for an array.
	var stack []map[string]struct{}
	wantKey := false
	for i := 0; i < len(data); {
		switch data[i] {
		case '{':
			stack = append(stack, map[string]struct{}{})
			wantKey = true
			i++
		case '[':
			stack = append(stack, nil)
			i++
		case '}', ']':
			stack = stack[:len(stack)-1]
			wantKey = false
			i++
		case ',':
			wantKey = stack[len(stack)-1] != nil
			i++
		case ':':
			wantKey = false
			i++
		case '"':
			end := stringEnd(data, i)
			if wantKey {
				raw := data[i:end]
				var k string
				if bytes.IndexByte(raw, '\\') < 0 {
					k = string(raw[1 : len(raw)-1])
				} else if err := json.Unmarshal(raw, &k); err != nil {
					return errMalformedJSON
				}
				keys := stack[len(stack)-1]
				fk := foldKey(k)
				if _, dup := keys[fk]; dup {
					return errDuplicateKey
				}
				keys[fk] = struct{}{}
			}
			i = end
		default: // numbers, literals, white space
			i++
		}
	}
	return nil
}

// stringEnd returns the index just past the JSON string that starts at
// data[i], which must be the opening quote of a string in valid JSON.
func stringEnd(data []byte, i int) int {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(data)
}

// foldKey maps k to one representative of the keys encoding/json treats
// as equal to it: each rune becomes the smallest rune of its case-folding
// orbit, the relation strings.EqualFold uses.
func foldKey(k string) string {
	return strings.Map(func(r rune) rune {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return least
	}, k)
}

// cleanPath is the canonical form of an escaped URL path as http.ServeMux
// computes it: "." and ".." resolved, slashes not doubled, a trailing
// slash kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}
