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

// checkDuplicateKeys walks data token by token and fails on an object
// with two keys that encoding/json would map to the same field. The walk
// costs one more pass over a body already bounded by api.MaxBodySize or
// api.MaxFrameSize, and a set per object of the keys it holds.
func checkDuplicateKeys(data []byte) error {
	type level struct {
		object  bool
		wantKey bool
		keys    map[string]struct{}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
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
