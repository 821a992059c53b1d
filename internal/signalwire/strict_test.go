package signalwire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
	"github.com/ratchetkit/ratchetkit/keys"
)

// sample returns a libsignal SignalMessage (with pq_ratchet) and a
// PreKeySignalMessage from the vectors.
func sample(t *testing.T) (whisper, prekey []byte) {
	v := libsignaltest.Load(t)
	s := v.Sessions[0]
	for _, m := range s.Messages {
		switch {
		case m.Type == TypeWhisper && whisper == nil:
			whisper = libsignaltest.Hex(t, m.Wire)
		case m.Type == TypePreKey && prekey == nil:
			prekey = libsignaltest.Hex(t, m.Wire)
		}
	}
	return whisper, prekey
}

// reframe builds a SignalMessage from raw protobuf bytes, with a dummy MAC.
func reframe(pb []byte) []byte {
	return append(append([]byte{VersionByte}, pb...), make([]byte, MACSize)...)
}

// TestSignalMessageStrict feeds the parser every non-canonical variant of a
// valid message that prost would accept, and the structural errors.
func TestSignalMessageStrict(t *testing.T) {
	whisper, _ := sample(t)
	m, _, _, err := ParseSignalMessage(whisper)
	if err != nil {
		t.Fatal(err)
	}
	pb := whisper[1 : len(whisper)-MACSize]
	key := m.RatchetKey.Encode()
	field := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	rk := appendBytesField(nil, 1, key)
	ctr := appendUint32Field(nil, 2, m.Counter)
	pc := appendUint32Field(nil, 3, m.PreviousCounter)
	ct := appendBytesField(nil, 4, m.Ciphertext)
	pq := appendBytesField(nil, 5, m.PQRatchet)
	if !bytes.Equal(field(rk, ctr, pc, ct, pq), pb) {
		t.Fatal("the sample is not built the way this test assumes")
	}
	cases := map[string][]byte{
		"duplicate counter":      field(rk, ctr, ctr, pc, ct, pq),
		"out of order":           field(rk, pc, ctr, ct, pq),
		"unknown field 7":        field(rk, ctr, pc, ct, pq, appendUint32Field(nil, 7, 1)),
		"unknown field 15 bytes": field(rk, ctr, pc, ct, pq, appendBytesField(nil, 15, []byte{1})),
		"field 0":                field([]byte{0x00, 0x00}, rk, ctr, pc, ct, pq),
		"non-minimal counter":    field(rk, []byte{0x10, byte(0x80 | m.Counter&0x7f), 0x00}, pc, ct, pq),
		"counter over 32 bits":   field(rk, appendVarint([]byte{0x10}, 1<<32), pc, ct, pq),
		"10-byte varint":         field(rk, []byte{0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, pc, ct, pq),
		"counter as bytes":       field(rk, appendBytesField(nil, 2, []byte{1}), pc, ct, pq),
		"ratchet key as varint":  field(appendUint32Field(nil, 1, 5), ctr, pc, ct, pq),
		"group wire type":        field(rk, ctr, pc, ct, pq, []byte{0x33, 0x34}),
		"no ratchet key":         field(ctr, pc, ct, pq),
		"no counter":             field(rk, pc, ct, pq),
		"no previous counter":    field(rk, ctr, ct, pq),
		"no ciphertext":          field(rk, ctr, pc, pq),
		"empty pq_ratchet":       field(rk, ctr, pc, ct, appendBytesField(nil, 5, nil)),
		"huge pq_ratchet":        field(rk, ctr, pc, ct, appendBytesField(nil, 5, make([]byte, MaxPQRatchetSize+1))),
		"raw 32-byte key":        field(appendBytesField(nil, 1, key[1:]), ctr, pc, ct, pq),
		"key with trailing byte": field(appendBytesField(nil, 1, append(bytes.Clone(key), 0)), ctr, pc, ct, pq),
		"key type 0x06":          field(appendBytesField(nil, 1, append([]byte{6}, key[1:]...)), ctr, pc, ct, pq),
		"addresses 35 bytes":     field(rk, ctr, pc, ct, pq, appendBytesField(nil, 6, make([]byte, 35))),
		"length past the end":    field(rk, ctr, pc, []byte{0x22, 0x7f, 0x00}),
		"length varint cut":      field(rk, ctr, pc, []byte{0x22, 0x80}),
		"key varint cut":         field(rk, ctr, pc, ct, []byte{0x80}),
	}
	for name, pb := range cases {
		if _, _, _, err := ParseSignalMessage(reframe(pb)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	// The canonical form passes, as do a 36-byte addresses field and an
	// absent pq_ratchet, which libsignal writes when SPQR gives nothing.
	for name, pb := range map[string][]byte{
		"canonical":     field(rk, ctr, pc, ct, pq),
		"addresses":     field(rk, ctr, pc, ct, pq, appendBytesField(nil, 6, make([]byte, AddressesSize))),
		"no pq_ratchet": field(rk, ctr, pc, ct),
	} {
		b := reframe(pb)
		m, body, mac, err := ParseSignalMessage(b)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		again, _ := m.AppendBody(nil)
		if !bytes.Equal(again, body) || len(mac) != MACSize {
			t.Errorf("%s: re-encodes differently", name)
		}
	}
	for name, b := range map[string][]byte{
		"empty":   nil,
		"8 bytes": whisper[:8],
		"no body": append([]byte{VersionByte}, make([]byte, MACSize)...),
	} {
		if _, _, _, err := ParseSignalMessage(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, vb := range []byte{0x34, 0x43, 0x45, 0x54, 0x24, 0x33, 0x00, 0xff} {
		b := bytes.Clone(whisper)
		b[0] = vb
		if _, _, _, err := ParseSignalMessage(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("version byte %#x: %v", vb, err)
		}
	}
}

func TestPreKeySignalMessageStrict(t *testing.T) {
	_, prekey := sample(t)
	m, _, err := ParsePreKeySignalMessage(prekey)
	if err != nil {
		t.Fatal(err)
	}
	reenc := func(f func(*PreKeySignalMessage)) []byte {
		c := *m
		f(&c)
		b, err := c.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Without a one-time prekey, field 1 is absent, and that parses back.
	noOPK := reenc(func(c *PreKeySignalMessage) { c.HasPreKeyID = false })
	if got, _, err := ParsePreKeySignalMessage(noOPK); err != nil || got.HasPreKeyID {
		t.Fatalf("no one-time prekey: %v", err)
	}
	body := prekey[1:]
	cut := func(num int) []byte {
		// Drop field num from the canonical encoding.
		r := reader{b: body}
		var out []byte
		for {
			start := r.b
			n, _, ok, _ := r.next()
			if !ok {
				break
			}
			if n == 1 || n >= 5 && n <= 7 {
				r.uint32()
			} else {
				r.bytes()
			}
			if n != num {
				out = append(out, start[:len(start)-len(r.b)]...)
			}
		}
		return append([]byte{VersionByte}, out...)
	}
	for _, n := range []int{2, 3, 4, 5, 6, 7, 8} {
		if _, _, err := ParsePreKeySignalMessage(cut(n)); !errors.Is(err, ErrMalformed) {
			t.Errorf("without field %d: %v", n, err)
		}
	}
	if _, _, err := ParsePreKeySignalMessage(cut(1)); err != nil {
		t.Errorf("without field 1 (one-time prekey id): %v", err)
	}
	bad := map[string][]byte{
		"unknown field 9": append(bytes.Clone(prekey), appendUint32Field(nil, 9, 1)...),
		"repeated 8":      append(bytes.Clone(prekey), appendBytesField(nil, 8, m.KyberCiphertext)...),
		"empty":           nil,
		"version 0x34":    append([]byte{0x34}, body...),
		"truncated":       prekey[:len(prekey)-1],
	}
	for name, b := range bad {
		if _, _, err := ParsePreKeySignalMessage(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// An inner message that is not canonical poisons the outer one.
	innerBad := bytes.Clone(m.Message)
	innerBad[0] = 0x34
	c := *m
	c.Message = innerBad
	if _, err := c.Append(nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("Append with a bad inner message: %v", err)
	}
	zero, _ := keys.NewPublicKey(make([]byte, 32))
	for name, f := range map[string]func(*PreKeySignalMessage){
		"no base key":  func(c *PreKeySignalMessage) { c.BaseKey = nil },
		"short kyber":  func(c *PreKeySignalMessage) { c.KyberCiphertext = c.KyberCiphertext[1:] },
		"kyber type 7": func(c *PreKeySignalMessage) { c.KyberCiphertext = append([]byte{7}, c.KyberCiphertext[1:]...) },
	} {
		c := *m
		f(&c)
		if _, err := c.Append(nil); !errors.Is(err, ErrMalformed) {
			t.Errorf("Append %s: %v", name, err)
		}
	}
	// A small-order base key is well-formed here; PQXDH refuses it.
	c = *m
	c.BaseKey = zero
	if _, err := c.Append(nil); err != nil {
		t.Errorf("Append with a small-order base key: %v", err)
	}
}
