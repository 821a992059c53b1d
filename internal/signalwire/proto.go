package signalwire

import (
	"errors"
	"fmt"
)

// ErrMalformed is returned for every input that is not a canonical message;
// the wrapped text says what is wrong, never what the bytes were.
var ErrMalformed = errors.New("signalwire: malformed message")

// Protobuf wire types used by the two messages.
const (
	wireVarint = 0
	wireBytes  = 2
)

// reader walks the fields of one protobuf message in order.
type reader struct {
	b    []byte
	last int // the last field number read, for the ascending-order rule
}

// uvarint reads a minimal varint of at most max bytes.
func uvarint(b []byte, max int) (uint64, int, bool) {
	var x uint64
	for i := 0; i < len(b) && i < max; i++ {
		c := b[i]
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			// Minimal: a multi-byte varint must not end in a zero group.
			if i > 0 && c == 0 {
				return 0, 0, false
			}
			return x, i + 1, true
		}
	}
	return 0, 0, false
}

// next returns the next field's number and wire type, or ok = false at the
// end. It enforces strictly ascending field numbers.
func (r *reader) next() (num, typ int, ok bool, err error) {
	if len(r.b) == 0 {
		return 0, 0, false, nil
	}
	key, n, good := uvarint(r.b, 5)
	if !good || key>>3 == 0 || key>>3 > 1<<29-1 {
		return 0, 0, false, malformed("bad field key")
	}
	r.b = r.b[n:]
	num, typ = int(key>>3), int(key&7)
	if num <= r.last {
		return 0, 0, false, malformed("field out of order or repeated")
	}
	r.last = num
	return num, typ, true, nil
}

// uint32 reads a varint field's value, which must fit in 32 bits.
func (r *reader) uint32() (uint32, error) {
	x, n, ok := uvarint(r.b, 5)
	if !ok || x > 1<<32-1 {
		return 0, malformed("bad uint32")
	}
	r.b = r.b[n:]
	return uint32(x), nil
}

// bytes reads a length-delimited field's value, aliasing the input.
func (r *reader) bytes() ([]byte, error) {
	l, n, ok := uvarint(r.b, 5)
	if !ok || l > uint64(len(r.b)-n) {
		return nil, malformed("bad length")
	}
	v := r.b[n : n+int(l)]
	r.b = r.b[n+int(l):]
	return v, nil
}

func appendVarint(b []byte, x uint64) []byte {
	for x >= 0x80 {
		b = append(b, byte(x)|0x80)
		x >>= 7
	}
	return append(b, byte(x))
}

func appendUint32Field(b []byte, num int, v uint32) []byte {
	b = appendVarint(b, uint64(num)<<3|wireVarint)
	return appendVarint(b, uint64(v))
}

func appendBytesField(b []byte, num int, v []byte) []byte {
	b = appendVarint(b, uint64(num)<<3|wireBytes)
	b = appendVarint(b, uint64(len(v)))
	return append(b, v...)
}

func malformed(what string) error { return fmt.Errorf("%w: %s", ErrMalformed, what) }
