package spqr

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
	"github.com/ratchetkit/ratchetkit/internal/signalwire"
)

// TestLibsignalPayloads parses the SPQR payload of every libsignal message:
// all are V1, epoch 1, and the indexes of each direction run 1, 2, 3, ...
// (in sending order).
func TestLibsignalPayloads(t *testing.T) {
	v := libsignaltest.Load(t)
	types := map[MessageType]int{}
	for _, s := range v.Sessions {
		idx := map[string][]uint32{}
		for _, m := range s.Messages {
			payload := pqPayload(t, &m)
			pq, err := Parse(payload)
			if err != nil {
				t.Fatalf("%s/%d: %x: %v", s.Name, m.Seq, payload, err)
			}
			if pq.Epoch != 1 {
				t.Errorf("%s/%d: epoch %d", s.Name, m.Seq, pq.Epoch)
			}
			types[pq.Type]++
			idx[m.From] = append(idx[m.From], pq.Index)
			if pq.Type == None {
				if got := AppendNone(nil, pq.Epoch, pq.Index); !bytes.Equal(got, payload) {
					t.Errorf("%s/%d: None message %x re-encodes as %x", s.Name, m.Seq, payload, got)
				}
			}
		}
		for from, ix := range idx {
			seen := map[uint32]bool{}
			for _, i := range ix {
				seen[i] = true
			}
			for i := uint32(1); i <= uint32(len(ix)); i++ {
				if !seen[i] {
					t.Errorf("%s: %s's indexes %v skip %d", s.Name, from, ix, i)
				}
			}
		}
	}
	if types[None] == 0 || types[Hdr] == 0 {
		t.Errorf("message types seen: %v", types)
	}
	t.Logf("SPQR message types in libsignal's transcripts: %v", types)
}

// pqPayload returns the SPQR payload of a libsignal transcript message.
func pqPayload(t *testing.T, m *libsignaltest.Message) []byte {
	t.Helper()
	wire := libsignaltest.Hex(t, m.Wire)
	if m.Type == signalwire.TypePreKey {
		pk, _, err := signalwire.ParsePreKeySignalMessage(wire)
		if err != nil {
			t.Fatal(err)
		}
		wire = pk.Message
	}
	sm, _, _, err := signalwire.ParseSignalMessage(wire)
	if err != nil {
		t.Fatal(err)
	}
	return sm.PQRatchet
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in []byte
		ok bool
	}{
		{[]byte{1, 1, 1, 0}, true},
		{[]byte{1, 0x81, 0x01, 0x80, 0x01, 0}, true},
		{[]byte{1, 1, 1, 1, 7, 7}, true}, // Hdr with a chunk
		{[]byte{1, 1, 1, 0, 0}, false},   // None with trailing bytes
		{[]byte{1, 1, 1, 7}, false},      // unknown type
		{[]byte{0, 1, 1, 0}, false},
		{[]byte{2, 1, 1, 0}, false},
		{[]byte{1, 0x81, 0x00, 1, 0}, false}, // non-minimal epoch
		{[]byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0x1f, 0}, false},
		{[]byte{1, 1}, false},
		{[]byte("\x01\xfa\xfa\xfa\xfa\xfa\x9b\x9b\x9b\x9b00\x00"), false}, // a 10-byte epoch past 64 bits (found by FuzzParse)
		{[]byte{1, 1, 1}, false},
		{nil, false},
	} {
		_, err := Parse(c.in)
		if (err == nil) != c.ok {
			t.Errorf("Parse(%x) = %v", c.in, err)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%x) = %v, want ErrMalformed", c.in, err)
		}
	}
}

func TestChain(t *testing.T) {
	pqr := [KeySize]byte{1}
	e := Start(&pqr)
	a, b := e.Chain(AToB), e.Chain(BToA)
	k1 := a.Next()
	k2 := a.Next()
	if k1 == k2 || a.Index() != 2 {
		t.Fatal("Next repeats or miscounts")
	}
	c := e.Chain(AToB)
	if got, err := c.KeyAt(2); err != nil || got != k2 {
		t.Fatalf("KeyAt(2) = %v", err)
	}
	if _, err := c.KeyAt(2); !errors.Is(err, ErrPastIndex) {
		t.Fatalf("KeyAt of a passed index: %v", err)
	}
	if kb := b.Next(); kb == k1 {
		t.Fatal("the two directions share keys")
	}
	// A hostile index buys at most MaxJump steps, and leaves the chain as
	// it was.
	far := e.Chain(AToB)
	if _, err := far.KeyAt(MaxJump + 1); !errors.Is(err, ErrTooFar) || far.Index() != 0 {
		t.Fatalf("KeyAt(MaxJump+1) = %v, index %d", err, far.Index())
	}
	if _, err := far.KeyAt(MaxJump); err != nil || far.Index() != MaxJump {
		t.Fatalf("KeyAt(MaxJump) = %v", err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%x"} {
		for _, arg := range []any{a, &a, *e, e} {
			out := fmt.Sprintf(verb, arg)
			if !strings.Contains(out, "REDACTED") || strings.Contains(out, fmt.Sprintf("%x", a.key[:4])) {
				t.Fatalf("Sprintf(%q) = %s", verb, out)
			}
		}
	}
	e.Clear()
	if e.NextRoot != ([KeySize]byte{}) || e.chains[0].key != ([KeySize]byte{}) {
		t.Fatal("Epoch.Clear left key bytes")
	}
	c.Clear()
	if c.key != ([KeySize]byte{}) {
		t.Fatal("Clear left the chain key")
	}
}

// FuzzParse: whatever parses as None re-encodes identically.
func FuzzParse(f *testing.F) {
	f.Add([]byte{1, 1, 1, 0})
	f.Add([]byte{1, 1, 1, 1, 0xaa})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil || m.Type != None {
			return
		}
		if !bytes.Equal(AppendNone(nil, m.Epoch, m.Index), b) {
			t.Fatal("None re-encodes differently")
		}
	})
}
