package signalwire

import (
	"bytes"
	"testing"
)

// FuzzParseSignalMessage: whatever parses re-encodes to the same bytes (one
// encoding per message), and nothing panics.
func FuzzParseSignalMessage(f *testing.F) {
	f.Add([]byte{VersionByte, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, body, mac, err := ParseSignalMessage(b)
		if err != nil {
			return
		}
		again, err := m.AppendBody(nil)
		if err != nil || !bytes.Equal(again, body) || !bytes.Equal(append(again, mac...), b) {
			t.Fatalf("re-encoding differs: %v", err)
		}
	})
}

// FuzzParsePreKeySignalMessage: the same for the outer message.
func FuzzParsePreKeySignalMessage(f *testing.F) {
	f.Add([]byte{VersionByte})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, inner, err := ParsePreKeySignalMessage(b)
		if err != nil {
			return
		}
		again, err := m.Append(nil)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %v", err)
		}
		body, err := inner.AppendBody(nil)
		if err != nil || !bytes.Equal(body, m.Message[:len(m.Message)-MACSize]) {
			t.Fatal("inner message re-encodes differently")
		}
	})
}
