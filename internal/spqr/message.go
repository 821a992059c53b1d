package spqr

import "errors"

// Version1 is the only SPQR protocol version.
const Version1 = 0x01

// MessageType is the type byte of a V1 message.
type MessageType byte

// The V1 message types. Only None is produced here.
const (
	None MessageType = iota
	Hdr
	Ek
	EkCt1Ack
	Ct1Ack
	Ct1
	Ct2
)

// ErrMalformed is returned for a payload that is not a V1 message.
var ErrMalformed = errors.New("spqr: malformed message")

// Message is the header every V1 message starts with: its epoch, the
// sender's chain index, and its type. Chunk bytes that follow (for every
// type but None) are Rest.
type Message struct {
	Epoch uint64
	Index uint32
	Type  MessageType
	Rest  []byte
}

// AppendNone appends the V1 None message of the given epoch and index.
func AppendNone(dst []byte, epoch uint64, index uint32) []byte {
	dst = append(dst, Version1)
	dst = appendVarint(dst, epoch)
	dst = appendVarint(dst, uint64(index))
	return append(dst, byte(None))
}

// Parse reads the header of a V1 message. It checks the version, minimal
// varints and the type byte; the chunk after it is not parsed yet.
func Parse(b []byte) (*Message, error) {
	m, err := parse(b)
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// parse is Parse without the allocation, for Minimal's per-message path.
func parse(b []byte) (Message, error) {
	if len(b) < 1 || b[0] != Version1 {
		return Message{}, ErrMalformed
	}
	b = b[1:]
	epoch, n := uvarint(b, 10)
	if n == 0 {
		return Message{}, ErrMalformed
	}
	b = b[n:]
	index, n := uvarint(b, 5)
	if n == 0 || index > 1<<32-1 || len(b) < n+1 {
		return Message{}, ErrMalformed
	}
	t := MessageType(b[n])
	if t > Ct2 || (t == None && len(b) != n+1) {
		return Message{}, ErrMalformed
	}
	return Message{Epoch: epoch, Index: uint32(index), Type: t, Rest: b[n+1:]}, nil
}

func appendVarint(b []byte, x uint64) []byte {
	for x >= 0x80 {
		b = append(b, byte(x)|0x80)
		x >>= 7
	}
	return append(b, byte(x))
}

func uvarint(b []byte, max int) (uint64, int) {
	var x uint64
	for i := 0; i < len(b) && i < max; i++ {
		x |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			// Minimal, and a tenth byte may only carry bit 63.
			if (i > 0 && b[i] == 0) || (i == 9 && b[i] > 1) {
				return 0, 0
			}
			return x, i + 1
		}
	}
	return 0, 0
}
