package session

import (
	"context"
	"crypto/sha512"
	"encoding/binary"
	"strings"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/store"
)

// Safety number construction, version 1.
const (
	safetyNumberVersion    = 1
	safetyNumberIterations = 5200
	safetyNumberPrefix     = "ratchetkit_SafetyNumber"
	// safetyHalfDigits is the digits each party contributes: six groups
	// of five, each from 40 bits of the hash, about 100 bits in all.
	safetyHalfDigits = 30
)

// SafetyNumber returns the safety number of two parties: 60 decimal
// digits in twelve groups of five, separated by spaces. Each party is its
// stable identifier (a user name, an account id: what the users know each
// other by) and its identity key. Both sides compute the same number
// whichever is local, so two users who read their numbers to each other
// (in person, or over a channel they trust) and find them equal know that
// each holds the other's real identity key: no server handed them a key
// of its own. That is the one thing X3DH cannot tell them.
//
// Construction (version 1), for each party P with identifier id and key
// IK:
//
//	d₀   = SHA-512("ratchetkit_SafetyNumber" || u16be(1) || Encode(IK) || u32be(len(id)) || id)
//	dᵢ₊₁ = SHA-512(dᵢ || Encode(IK))          until d₅₁₉₉ (5200 hashes)
//	half = for j = 0..5: (d₅₁₉₉[5j:5j+5] as a 40-bit big-endian integer) mod 100000,
//	       as five digits with leading zeros
//
// The number is the two 30-digit halves, the smaller string first. The
// iterations make a search for a key whose half matches a victim's
// (about 2^100 tries even without them) 5200 times dearer. This is
// Signal's displayable fingerprint in shape, with its own domain prefix:
// the digits differ from Signal's for the same keys.
func SafetyNumber(localID string, localKey *keys.PublicKey, remoteID string, remoteKey *keys.PublicKey) string {
	a := safetyHalf(localID, localKey)
	b := safetyHalf(remoteID, remoteKey)
	if b < a {
		a, b = b, a
	}
	digits := a + b
	var sb strings.Builder
	sb.Grow(len(digits) + len(digits)/5)
	for i := 0; i < len(digits); i += 5 {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(digits[i : i+5])
	}
	return sb.String()
}

func safetyHalf(id string, ik *keys.PublicKey) string {
	var enc [encodedKeySize]byte
	ik.AppendEncode(enc[:0])
	h := sha512.New()
	h.Write([]byte(safetyNumberPrefix))
	h.Write(binary.BigEndian.AppendUint16(nil, safetyNumberVersion))
	h.Write(enc[:])
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(id))))
	h.Write([]byte(id))
	var d [sha512.Size]byte
	h.Sum(d[:0])
	for range safetyNumberIterations - 1 {
		h.Reset()
		h.Write(d[:])
		h.Write(enc[:])
		h.Sum(d[:0])
	}
	out := make([]byte, 0, safetyHalfDigits)
	for j := range safetyHalfDigits / 5 {
		c := d[5*j:]
		v := uint64(c[0])<<32 | uint64(c[1])<<24 | uint64(c[2])<<16 | uint64(c[3])<<8 | uint64(c[4])
		v %= 100000
		for k := uint64(10000); k > 0; k /= 10 {
			out = append(out, byte('0'+v/k%10))
		}
	}
	return string(out)
}

// SafetyNumber returns the safety number of this device's identity,
// under the stable identifier localID, and the identity key trusted for
// peer, under peer.Name. The error wraps store.ErrNotFound if no key is
// trusted for peer yet. To show the number of a key that an
// *IdentityError reports, call the package function SafetyNumber with
// its Received key.
func (m *Manager) SafetyNumber(ctx context.Context, localID string, peer store.Address) (string, error) {
	local, _, err := m.LocalIdentity(ctx)
	if err != nil {
		return "", err
	}
	remote, err := m.Identity(ctx, peer)
	if err != nil {
		return "", err
	}
	return SafetyNumber(localID, local, peer.Name, remote), nil
}
