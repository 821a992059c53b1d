package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
)

// kind is an error kind of PROTOCOL.md section 8.1, the only thing a failed
// request answers. Operations return one directly for request-level
// problems; library errors are mapped to one by kindOf.
type kind string

func (k kind) Error() string { return string(k) }

const (
	kindInvalidSignature  kind = "invalid_signature"
	kindBadKey            kind = "bad_key"
	kindMalformed         kind = "malformed"
	kindUnknownType       kind = "unknown_type"
	kindAuthFailed        kind = "auth_failed"
	kindDuplicate         kind = "duplicate"
	kindTooManySkipped    kind = "too_many_skipped"
	kindUnknownPrekey     kind = "unknown_prekey"
	kindNoSession         kind = "no_session"
	kindCounterOverflow   kind = "counter_overflow"
	kindUntrustedIdentity kind = "untrusted_identity"
	kindUnknownSession    kind = "unknown_session"

	// kindInternal is not a protocol kind: it reports a bug in the driver
	// or the library (an error nothing maps, or a panic). No harness
	// accepts it, so a bug shows up as a failed check, and the driver keeps
	// answering.
	kindInternal kind = "internal"
)

// request is a JSON object: one request line, or an object nested in one
// (a bundle, a prekey). Values stay raw until an operation asks for them
// with the type it needs, so that a field of the wrong JSON type is
// malformed exactly when that operation reads it, and unknown fields are
// ignored.
type request map[string]json.RawMessage

// parseObject decodes raw as a JSON object; anything else, null included,
// is malformed.
func parseObject(raw []byte) (request, error) {
	var r request
	if err := json.Unmarshal(raw, &r); err != nil || r == nil {
		return nil, kindMalformed
	}
	return r, nil
}

// field returns the raw value of name, or false when it is absent or null:
// the protocol treats the two alike (PROTOCOL.md 9.1).
func (r request) field(name string) (json.RawMessage, bool) {
	v, ok := r[name]
	if !ok {
		return nil, false
	}
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return nil, false
	}
	return v, true
}

// str returns the required JSON string name.
func (r request) str(name string) (string, error) {
	v, ok := r.field(name)
	if !ok || v[0] != '"' {
		return "", kindMalformed
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", kindMalformed
	}
	return s, nil
}

// bytes returns the required byte string name, given as lowercase hex of
// even length (the empty string is zero bytes).
func (r request) bytes(name string) ([]byte, error) {
	b, ok, err := r.optBytes(name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, kindMalformed
	}
	return b, nil
}

// optBytes returns the optional byte string name and whether it was given;
// "" is given, as zero bytes.
func (r request) optBytes(name string) ([]byte, bool, error) {
	if _, ok := r.field(name); !ok {
		return nil, false, nil
	}
	s, err := r.str(name)
	if err != nil {
		return nil, false, err
	}
	b, err := decodeHex(s)
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// decodeHex accepts only what PROTOCOL.md 9.1 allows: an even number of
// the characters 0-9a-f. encoding/hex alone would also take uppercase.
func decodeHex(s string) ([]byte, error) {
	if len(s)%2 != 0 {
		return nil, kindMalformed
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, kindMalformed
		}
	}
	b := make([]byte, len(s)/2)
	if _, err := hex.Decode(b, []byte(s)); err != nil {
		return nil, kindMalformed
	}
	return b, nil
}

// u32 returns the required integer name, 0 to 2^32−1.
func (r request) u32(name string) (uint32, error) {
	v, ok, err := r.optU32(name)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, kindMalformed
	}
	return v, nil
}

// optU32 returns the optional integer name. JSON numbers are read as the
// IEEE doubles a JavaScript peer sees, so 7.0 and 7e0 are the integer 7
// and 7.5 is not an integer, the same in both drivers.
func (r request) optU32(name string) (uint32, bool, error) {
	v, ok := r.field(name)
	if !ok {
		return 0, false, nil
	}
	if v[0] != '-' && (v[0] < '0' || v[0] > '9') {
		return 0, false, kindMalformed
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil {
		return 0, false, kindMalformed
	}
	if f != math.Trunc(f) || f < 0 || f > math.MaxUint32 {
		return 0, false, kindMalformed
	}
	return uint32(f), true, nil
}

// object returns the required JSON object name.
func (r request) object(name string) (request, error) {
	v, ok := r.field(name)
	if !ok || v[0] != '{' {
		return nil, kindMalformed
	}
	return parseObject(v)
}

// objects returns the optional array of JSON objects name; absent is empty.
func (r request) objects(name string) ([]request, error) {
	v, ok := r.field(name)
	if !ok {
		return nil, nil
	}
	if v[0] != '[' {
		return nil, kindMalformed
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(v, &elems); err != nil {
		return nil, kindMalformed
	}
	out := make([]request, len(elems))
	for i, e := range elems {
		e = bytes.TrimSpace(e)
		if len(e) == 0 || e[0] != '{' {
			return nil, kindMalformed
		}
		o, err := parseObject(e)
		if err != nil {
			return nil, err
		}
		out[i] = o
	}
	return out, nil
}

// fields reads the fields of one request and keeps the first error, so
// that an operation reads all of its fields, checks once, and so judges a
// request's shape (malformed) before anything in it.
type fields struct {
	r   request
	err error
}

func (f *fields) keep(err error) {
	if f.err == nil {
		f.err = err
	}
}

func (f *fields) str(name string) string {
	if f.err != nil {
		return ""
	}
	s, err := f.r.str(name)
	f.keep(err)
	return s
}

func (f *fields) bytes(name string) []byte {
	if f.err != nil {
		return nil
	}
	b, err := f.r.bytes(name)
	f.keep(err)
	return b
}

func (f *fields) optBytes(name string) ([]byte, bool) {
	if f.err != nil {
		return nil, false
	}
	b, ok, err := f.r.optBytes(name)
	f.keep(err)
	return b, ok
}

func (f *fields) u32(name string) uint32 {
	if f.err != nil {
		return 0
	}
	v, err := f.r.u32(name)
	f.keep(err)
	return v
}

func (f *fields) optU32(name string) (uint32, bool) {
	if f.err != nil {
		return 0, false
	}
	v, ok, err := f.r.optU32(name)
	f.keep(err)
	return v, ok
}

func (f *fields) object(name string) *fields {
	if f.err != nil {
		return &fields{err: f.err}
	}
	o, err := f.r.object(name)
	f.keep(err)
	return &fields{r: o, err: err}
}

func (f *fields) objects(name string) []*fields {
	if f.err != nil {
		return nil
	}
	os, err := f.r.objects(name)
	f.keep(err)
	out := make([]*fields, len(os))
	for i, o := range os {
		out[i] = &fields{r: o}
	}
	return out
}
