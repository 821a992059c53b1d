package signalwire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ratchetkit/ratchetkit/keys"
)

// TestSenderKeyStrict builds both Sender Key messages field by field and
// refuses every non-canonical variant that prost would read.
func TestSenderKeyStrict(t *testing.T) {
	k, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	id := bytes.Repeat([]byte{7}, DistributionIDSize)
	ck := bytes.Repeat([]byte{9}, SenderChainKeySize)
	f1 := appendBytesField(nil, 1, id)
	f2 := appendUint32Field(nil, 2, 300)
	f3 := appendUint32Field(nil, 3, 5)
	ct := appendBytesField(nil, 4, bytes.Repeat([]byte{1}, 32))
	f4 := appendBytesField(nil, 4, ck)
	f5 := appendBytesField(nil, 5, k.PublicKey().Encode())
	join := func(p ...[]byte) []byte { return append([]byte{SenderKeyVersionByte}, bytes.Join(p, nil)...) }
	sig := make([]byte, SenderKeySignatureSize)

	dm := join(f1, f2, f3, f4, f5)
	m, err := ParseSenderKeyDistributionMessage(dm)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := m.Append(nil); err != nil || !bytes.Equal(again, dm) || m.ChainID != 300 || m.Iteration != 5 {
		t.Fatalf("distribution message does not round-trip: %v", err)
	}
	sm := append(join(f1, f2, f3, ct), sig...)
	s, body, gotSig, err := ParseSenderKeyMessage(sm)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := s.AppendBody(nil); err != nil || !bytes.Equal(again, body) || len(gotSig) != SenderKeySignatureSize {
		t.Fatalf("sender key message does not round-trip: %v", err)
	}

	bad := map[string][]byte{
		"out of order":        join(f2, f1, f3, f4, f5),
		"repeated":            join(f1, f2, f2, f3, f4, f5),
		"missing iteration":   join(f1, f2, f4, f5),
		"unknown field 6":     join(f1, f2, f3, f4, f5, appendUint32Field(nil, 6, 1)),
		"non-minimal varint":  join(f1, []byte{0x10, 0xac, 0x82, 0x00}, f3, f4, f5),
		"chain id of 33 bits": join(f1, appendVarint([]byte{0x10}, 1<<32), f3, f4, f5),
		"wire type of 2":      join(f1, appendBytesField(nil, 2, []byte{1}), f3, f4, f5),
		"wire type of 3":      join(f1, f2, f3, appendUint32Field(nil, 4, 1), f5),
		"id of 17":            join(appendBytesField(nil, 1, append(id, 0)), f2, f3, f4, f5),
		"length past the end": join(f1, f2, f3, f4, f5[:len(f5)-1]),
		"version 0x34":        append([]byte{0x34}, dm[1:]...),
		"empty":               {},
	}
	for name, b := range bad {
		if _, err := ParseSenderKeyDistributionMessage(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("distribution message, %s: %v", name, err)
		}
	}
	for name, b := range map[string][]byte{
		"out of order":       join(f2, f1, f3, ct),
		"missing ciphertext": join(f1, f2, f3),
		"field 5":            join(f1, f2, f3, ct, f5),
		"version 0x43":       append([]byte{0x43}, sm[1:]...),
		"64 bytes":           sm[:64],
	} {
		if name != "64 bytes" {
			b = append(b, sig...)
		}
		if name == "version 0x43" {
			b = b[:len(sm)]
		}
		if _, _, _, err := ParseSenderKeyMessage(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("sender key message, %s: %v", name, err)
		}
	}
}
