package x3dh

import (
	"encoding/binary"
	"fmt"

	"github.com/ratchetkit/ratchetkit/keys"
)

// Header is what the initiator's first messages must carry so that the
// responder can run Respond: the initiator's identity and ephemeral keys and
// the ids of the prekeys used.
type Header struct {
	// IdentityKey is IK_A, the initiator's identity key.
	IdentityKey *keys.PublicKey
	// EphemeralKey is EK_A, the initiator's fresh ephemeral key.
	EphemeralKey *keys.PublicKey
	// SignedPreKeyID is the id of the responder's signed prekey used.
	SignedPreKeyID uint32
	// HasOneTimePreKey says whether a one-time prekey was used.
	HasOneTimePreKey bool
	// OneTimePreKeyID is its id; 0 when HasOneTimePreKey is false.
	OneTimePreKeyID uint32
}

const (
	headerSizeNoOPK = 1 + 2*keys.EncodedPublicKeySize + 4
	headerSizeOPK   = headerSizeNoOPK + 4
)

// AppendBinary appends the header's encoding, the part of profile v1's
// prekey message between its type byte 0x02 and the ratchet message:
//
//	flags || Encode(IK_A) || Encode(EK_A) || u32be(spk_id) || [u32be(opk_id)]
//
// where flags bit 0 says an opk_id is present and bits 1 to 7 are zero; 71
// or 75 bytes. It fails if a key is missing or OneTimePreKeyID is set while
// HasOneTimePreKey is false.
func (h *Header) AppendBinary(dst []byte) ([]byte, error) {
	switch {
	case h == nil || h.IdentityKey == nil || h.EphemeralKey == nil:
		return dst, fmt.Errorf("%w: header lacks a key", ErrMalformed)
	case !h.HasOneTimePreKey && h.OneTimePreKeyID != 0:
		return dst, fmt.Errorf("%w: header has a one-time prekey id but no one-time prekey", ErrMalformed)
	}
	var flags byte
	if h.HasOneTimePreKey {
		flags |= flagOneTimePreKey
	}
	dst = append(dst, flags)
	dst = h.IdentityKey.AppendEncode(dst)
	dst = h.EphemeralKey.AppendEncode(dst)
	dst = binary.BigEndian.AppendUint32(dst, h.SignedPreKeyID)
	if h.HasOneTimePreKey {
		dst = binary.BigEndian.AppendUint32(dst, h.OneTimePreKeyID)
	}
	return dst, nil
}

// MarshalBinary returns the header's encoding; see AppendBinary.
func (h *Header) MarshalBinary() ([]byte, error) {
	return h.AppendBinary(make([]byte, 0, headerSizeOPK))
}

// ParseHeader decodes the header at the start of b and returns it with the
// bytes that follow it (the ratchet message, in a prekey message), a
// subslice of b. Flag bits
// 1 to 7 must be zero and both keys must decode. Every error wraps
// ErrMalformed; one caused by a key that does not decode also wraps
// keys.ErrInvalidPublicKey. Small-order keys are left to Respond.
func ParseHeader(b []byte) (h *Header, rest []byte, err error) {
	if len(b) < 1 {
		return nil, nil, fmt.Errorf("%w: empty header", ErrMalformed)
	}
	flags := b[0]
	if flags&^flagOneTimePreKey != 0 {
		return nil, nil, fmt.Errorf("%w: unknown header flags 0x%02x", ErrMalformed, flags)
	}
	want := headerSizeNoOPK
	if flags&flagOneTimePreKey != 0 {
		want = headerSizeOPK
	}
	if len(b) < want {
		return nil, nil, fmt.Errorf("%w: header of %d bytes, want %d", ErrMalformed, len(b), want)
	}
	h = new(Header)
	r := b[1:want]
	if h.IdentityKey, err = decodeKey(&r, "identity key"); err != nil {
		return nil, nil, err
	}
	if h.EphemeralKey, err = decodeKey(&r, "ephemeral key"); err != nil {
		return nil, nil, err
	}
	h.SignedPreKeyID = binary.BigEndian.Uint32(r)
	if flags&flagOneTimePreKey != 0 {
		h.HasOneTimePreKey = true
		h.OneTimePreKeyID = binary.BigEndian.Uint32(r[4:])
	}
	return h, b[want:], nil
}

// Equal reports whether h and x carry the same keys, ids and flags, so that
// they encode identically. A responder uses it on a repeated prekey message
// whose ephemeral key names a session it already has: profile v1 refuses
// such a message unless its header equals the one that began the session.
func (h *Header) Equal(x *Header) bool {
	if h == nil || x == nil {
		return h == x
	}
	return h.IdentityKey.Equal(x.IdentityKey) &&
		h.EphemeralKey.Equal(x.EphemeralKey) &&
		h.SignedPreKeyID == x.SignedPreKeyID &&
		h.HasOneTimePreKey == x.HasOneTimePreKey &&
		h.OneTimePreKeyID == x.OneTimePreKeyID
}
