package ratchet

import (
	"encoding/binary"

	"github.com/ratchetkit/ratchetkit/internal/curve"
	"github.com/ratchetkit/ratchetkit/keys"
)

// header is a parsed message header. Its key is canonical and its counters
// are at most maxCounter.
type header struct {
	dh    [32]byte
	pn, n uint32
}

// parseHeader checks a ratchet message's layout,
//
//	0x01 || 0x05 || u[32] || u32be(PN) || u32be(N) || ciphertext (≥ 16 bytes)
//
// in this order: length (ErrMalformed), type byte (ErrUnknownType), key
// encoding and canonical u (errHeaderKey), counters (ErrCounterOverflow). It
// runs before any key is derived and allocates nothing.
func parseHeader(msg []byte) (header, error) {
	var h header
	if len(msg) < minMessageSize {
		return h, ErrMalformed
	}
	if msg[0] != typeRatchet {
		return h, ErrUnknownType
	}
	if msg[1] != keys.KeyTypeDJB {
		return h, errHeaderKey
	}
	copy(h.dh[:], msg[2:34])
	if !curve.IsCanonical(&h.dh) {
		return h, errHeaderKey
	}
	h.pn = binary.BigEndian.Uint32(msg[34:38])
	h.n = binary.BigEndian.Uint32(msg[38:42])
	if h.pn > maxCounter || h.n > maxCounter {
		return h, ErrCounterOverflow
	}
	return h, nil
}

// appendHeader appends the 42-byte header.
func appendHeader(b []byte, pub *[32]byte, pn, n uint32) []byte {
	b = append(b, typeRatchet, keys.KeyTypeDJB)
	b = append(b, pub[:]...)
	b = binary.BigEndian.AppendUint32(b, pn)
	return binary.BigEndian.AppendUint32(b, n)
}
