package signalsuite

import (
	"bytes"
	"testing"
)

// FuzzOpen: no input panics, and only the genuine message opens.
func FuzzOpen(f *testing.F) {
	mk, a, b := testKeys(f)
	genuine := seal(f, mk, a, b, []byte("attack at dawn"))
	f.Add(genuine)
	f.Add(genuine[:len(genuine)-1])
	f.Fuzz(func(t *testing.T, wire []byte) {
		pt, err := openWire(mk, a, b, wire)
		if err == nil && !bytes.Equal(wire, genuine) {
			t.Fatalf("a forged message opens: %x", pt)
		}
		if err != nil && pt != nil {
			t.Fatal("plaintext returned with an error")
		}
	})
}
