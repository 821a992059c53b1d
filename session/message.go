package session

import (
	"encoding/binary"

	"github.com/ratchetkit/ratchetkit/internal/curve"
	"github.com/ratchetkit/ratchetkit/keys"
)

// Wire constants of profile v1 (PROTOCOL.md section 6).
const (
	typeRatchet = 0x01
	typePreKey  = 0x02

	// flagOneTimePreKey is bit 0 of a prekey message's flags.
	flagOneTimePreKey = 0x01

	encodedKeySize = keys.EncodedPublicKeySize // 0x05 || u
	// ratchetHeaderSize is 0x01 || Encode(DHs) || u32be(PN) || u32be(N).
	ratchetHeaderSize = 1 + encodedKeySize + 4 + 4
	// minMessageSize is the shortest ratchet message: a header and an
	// empty plaintext's 16-byte tag.
	minMessageSize = ratchetHeaderSize + 16

	// x3dhHeaderSize is the x3dh.Header encoding, flags || Encode(IK_A) ||
	// Encode(EK_A) || u32be(spk_id), without and with u32be(opk_id).
	x3dhHeaderSize    = 1 + 2*encodedKeySize + 4
	x3dhHeaderSizeOPK = x3dhHeaderSize + 4

	// Offsets inside an x3dh header encoding.
	hdrIK  = 1
	hdrEK  = hdrIK + encodedKeySize
	hdrSPK = hdrEK + encodedKeySize
	hdrOPK = hdrSPK + 4

	maxCounter = 1<<32 - 2
)

// message is a parsed incoming message. Its slices point into the
// caller's bytes.
type message struct {
	kind byte
	// x3dh is the prekey message's x3dh header (bytes 1 to 72 or 76);
	// nil for a ratchet message.
	x3dh []byte
	// inner is the ratchet message.
	inner []byte
	// counter is the ratchet message's N.
	counter uint32
}

// parseMessage checks everything about msg that does not depend on any
// state, in the order of PROTOCOL.md section 6.3: length (ErrMalformed),
// type byte (ErrUnknownType), the prekey layout (ErrMalformed), key
// encodings (keys.ErrInvalidPublicKey), the inner header's counters
// (ratchet.ErrCounterOverflow). It allocates nothing.
func parseMessage(msg []byte) (message, error) {
	var m message
	if len(msg) < minMessageSize {
		return m, errShort
	}
	m.kind = msg[0]
	switch m.kind {
	case typeRatchet:
		m.inner = msg
	case typePreKey:
		flags := msg[1]
		if flags&^flagOneTimePreKey != 0 {
			return m, errFlags
		}
		l := 1 + x3dhHeaderSize
		if flags&flagOneTimePreKey != 0 {
			l = 1 + x3dhHeaderSizeOPK
		}
		if len(msg) < l+minMessageSize {
			return m, errPreKeyShort
		}
		if msg[l] != typeRatchet {
			return m, errInnerType
		}
		m.x3dh, m.inner = msg[1:l], msg[l:]
		if !canonicalKey(m.x3dh[hdrIK:]) {
			return m, errIdentityKey
		}
		if !canonicalKey(m.x3dh[hdrEK:]) {
			return m, errBaseKey
		}
	default:
		return m, ErrUnknownType
	}
	if !canonicalKey(m.inner[1:]) {
		return m, errRatchetKey
	}
	pn := binary.BigEndian.Uint32(m.inner[34:])
	n := binary.BigEndian.Uint32(m.inner[38:])
	if pn > maxCounter || n > maxCounter {
		return m, errCounter
	}
	m.counter = n
	return m, nil
}

// canonicalKey reports whether b starts with a public key encoding that
// decodes: 0x05 and a u-coordinate below 2^255 − 19.
func canonicalKey(b []byte) bool {
	if len(b) < encodedKeySize || b[0] != keys.KeyTypeDJB {
		return false
	}
	return curve.IsCanonical((*[32]byte)(b[1:encodedKeySize]))
}

// decodeKey decodes an encoding that canonicalKey accepted.
func decodeKey(b []byte) *keys.PublicKey {
	k, err := keys.DecodePublicKey(b[:encodedKeySize])
	if err != nil {
		// Every caller has checked the encoding.
		panic("session: internal error: invalid key encoding")
	}
	return k
}
