package keys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// ErrInvalidEncoding is returned when a stored prekey blob does not parse.
var ErrInvalidEncoding = errors.New("keys: invalid prekey encoding")

// prekeyFormatV1 starts every prekey blob made by MarshalBinary.
const prekeyFormatV1 = 0x01

// SignedPreKey is a medium-term X25519 key pair with a 32-bit id, signed by
// the identity key: Signature is XEdDSA-Sign(IK, Encode(public key)).
type SignedPreKey struct {
	id      uint32
	key     *PrivateKey
	sig     [SignatureSize]byte
	created time.Time
}

// GenerateSignedPreKey makes a fresh signed prekey with the given id, signed
// by ik, stamped with the current time (to the second).
func GenerateSignedPreKey(ik *IdentityKeyPair, id uint32) (*SignedPreKey, error) {
	key, err := GeneratePrivateKey()
	if err != nil {
		return nil, err
	}
	spk := &SignedPreKey{id: id, key: key, created: time.Now().Truncate(time.Second)}
	copy(spk.sig[:], ik.Sign(key.PublicKey().Encode()))
	return spk, nil
}

// NewSignedPreKey assembles a signed prekey from its parts, as loaded from
// storage. It checks the signature's length, not its validity: use Verify.
func NewSignedPreKey(id uint32, key *PrivateKey, sig []byte, created time.Time) (*SignedPreKey, error) {
	if len(sig) != SignatureSize {
		return nil, fmt.Errorf("%w: signature length %d", ErrInvalidSignature, len(sig))
	}
	spk := &SignedPreKey{id: id, key: key, created: created.Truncate(time.Second)}
	copy(spk.sig[:], sig)
	return spk, nil
}

// ID returns the prekey's id.
func (s *SignedPreKey) ID() uint32 { return s.id }

// PrivateKey returns the prekey's private key.
func (s *SignedPreKey) PrivateKey() *PrivateKey { return s.key }

// PublicKey returns the prekey's public key.
func (s *SignedPreKey) PublicKey() *PublicKey { return s.key.PublicKey() }

// Signature returns a copy of the XEdDSA signature over Encode(PublicKey()).
func (s *SignedPreKey) Signature() []byte {
	b := s.sig
	return b[:]
}

// Created returns when the prekey was generated, to the second.
func (s *SignedPreKey) Created() time.Time { return s.created }

// Verify checks the prekey's signature under the identity key ik.
func (s *SignedPreKey) Verify(ik *PublicKey) error {
	return VerifySignedPreKey(ik, s.PublicKey(), s.sig[:])
}

// VerifySignedPreKey checks that sig is ik's XEdDSA signature over
// Encode(spk), as a peer's bundle must carry. It returns ErrInvalidSignature
// otherwise.
func VerifySignedPreKey(ik, spk *PublicKey, sig []byte) error {
	var enc [EncodedPublicKeySize]byte
	if !ik.Verify(spk.AppendEncode(enc[:0]), sig) {
		return ErrInvalidSignature
	}
	return nil
}

// signedPreKeySize is the length of a signed prekey blob:
// version (1) || id (u32) || created, Unix seconds (i64) || private key (32) || signature (64).
const signedPreKeySize = 1 + 4 + 8 + PrivateKeySize + SignatureSize

// MarshalBinary encodes the signed prekey, private key included, for
// storage. The result is secret.
func (s *SignedPreKey) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, signedPreKeySize)
	b = append(b, prekeyFormatV1)
	b = binary.BigEndian.AppendUint32(b, s.id)
	b = binary.BigEndian.AppendUint64(b, uint64(s.created.Unix()))
	b = append(b, s.key.st.k[:]...)
	b = append(b, s.sig[:]...)
	return b, nil
}

// ParseSignedPreKey decodes a blob made by MarshalBinary. It does not verify
// the signature.
func ParseSignedPreKey(b []byte) (*SignedPreKey, error) {
	if len(b) != signedPreKeySize || b[0] != prekeyFormatV1 {
		return nil, fmt.Errorf("%w: signed prekey blob of %d bytes", ErrInvalidEncoding, len(b))
	}
	id := binary.BigEndian.Uint32(b[1:])
	created := time.Unix(int64(binary.BigEndian.Uint64(b[5:])), 0)
	key, err := NewPrivateKey(b[13 : 13+PrivateKeySize])
	if err != nil {
		return nil, err
	}
	return NewSignedPreKey(id, key, b[13+PrivateKeySize:], created)
}

// String, GoString and Format print the id, the public key and "private
// REDACTED" for every verb, for the value and the pointer alike.
func (s SignedPreKey) String() string {
	return fmt.Sprintf("keys.SignedPreKey(id %d, public %x, private REDACTED)", s.id, s.PublicKey())
}
func (s SignedPreKey) GoString() string           { return s.String() }
func (s SignedPreKey) Format(f fmt.State, _ rune) { io.WriteString(f, s.String()) }

// OneTimePreKey is an X25519 key pair with a 32-bit id, used in at most one
// X3DH agreement and then deleted.
type OneTimePreKey struct {
	id  uint32
	key *PrivateKey
}

// NewOneTimePreKey assembles a one-time prekey from its parts.
func NewOneTimePreKey(id uint32, key *PrivateKey) *OneTimePreKey {
	return &OneTimePreKey{id: id, key: key}
}

// GenerateOneTimePreKeys makes n fresh one-time prekeys with the consecutive
// ids firstID, firstID+1, …, firstID+n−1. It fails rather than wrap past
// 2^32 − 1, so the ids of a batch are always distinct.
func GenerateOneTimePreKeys(firstID uint32, n int) ([]*OneTimePreKey, error) {
	if n < 0 || (n > 0 && uint64(firstID)+uint64(n-1) > math.MaxUint32) {
		return nil, fmt.Errorf("keys: %d one-time prekeys from id %d would overflow the 32-bit id space", n, firstID)
	}
	out := make([]*OneTimePreKey, n)
	for i := range out {
		key, err := GeneratePrivateKey()
		if err != nil {
			return nil, err
		}
		out[i] = &OneTimePreKey{id: firstID + uint32(i), key: key}
	}
	return out, nil
}

// ID returns the prekey's id.
func (o *OneTimePreKey) ID() uint32 { return o.id }

// PrivateKey returns the prekey's private key.
func (o *OneTimePreKey) PrivateKey() *PrivateKey { return o.key }

// PublicKey returns the prekey's public key.
func (o *OneTimePreKey) PublicKey() *PublicKey { return o.key.PublicKey() }

// oneTimePreKeySize is the length of a one-time prekey blob:
// version (1) || id (u32) || private key (32).
const oneTimePreKeySize = 1 + 4 + PrivateKeySize

// MarshalBinary encodes the one-time prekey, private key included, for
// storage. The result is secret.
func (o *OneTimePreKey) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, oneTimePreKeySize)
	b = append(b, prekeyFormatV1)
	b = binary.BigEndian.AppendUint32(b, o.id)
	return append(b, o.key.st.k[:]...), nil
}

// ParseOneTimePreKey decodes a blob made by MarshalBinary.
func ParseOneTimePreKey(b []byte) (*OneTimePreKey, error) {
	if len(b) != oneTimePreKeySize || b[0] != prekeyFormatV1 {
		return nil, fmt.Errorf("%w: one-time prekey blob of %d bytes", ErrInvalidEncoding, len(b))
	}
	key, err := NewPrivateKey(b[5:])
	if err != nil {
		return nil, err
	}
	return &OneTimePreKey{id: binary.BigEndian.Uint32(b[1:]), key: key}, nil
}

// String, GoString and Format print the id, the public key and "private
// REDACTED" for every verb, for the value and the pointer alike.
func (o OneTimePreKey) String() string {
	return fmt.Sprintf("keys.OneTimePreKey(id %d, public %x, private REDACTED)", o.id, o.PublicKey())
}
func (o OneTimePreKey) GoString() string           { return o.String() }
func (o OneTimePreKey) Format(f fmt.State, _ rune) { io.WriteString(f, o.String()) }
