// Package testutil holds what several of ratchetkit's tests share: the hex
// byte strings of the JSON vector and golden files, and the thread CPU clock
// and interleaving loop of the ratio benchmarks. Only tests import it
// (depcheck refuses it to library code).
package testutil

import (
	"encoding/hex"
	"encoding/json"
)

// Hex is a byte string that JSON carries as a lowercase hex string; nil is
// written as "" and read from null. It reads upper-case hex too.
type Hex []byte

// MarshalJSON encodes h as a hex string.
func (h Hex) MarshalJSON() ([]byte, error) {
	return json.Marshal(hex.EncodeToString(h))
}

// UnmarshalJSON decodes a hex string; null sets h to nil.
func (h *Hex) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*h = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// HexOrNull is Hex for files that write an absent value as null: a nil
// HexOrNull is written as null.
type HexOrNull []byte

// MarshalJSON encodes h as a hex string, or null if h is nil.
func (h HexOrNull) MarshalJSON() ([]byte, error) {
	if h == nil {
		return []byte("null"), nil
	}
	return Hex(h).MarshalJSON()
}

// UnmarshalJSON decodes a hex string; null sets h to nil.
func (h *HexOrNull) UnmarshalJSON(b []byte) error {
	return (*Hex)(h).UnmarshalJSON(b)
}
