package kyber

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ratchetkit/ratchetkit/keys"
)

var (
	// ErrInvalidSignature is returned when a Kyber prekey's signature does
	// not verify under the identity key. It is keys.ErrInvalidSignature, so
	// either name matches with errors.Is.
	ErrInvalidSignature = keys.ErrInvalidSignature
	// ErrInvalidEncoding is returned when a stored prekey blob does not
	// parse.
	ErrInvalidEncoding = errors.New("kyber: invalid prekey encoding")
)

// PreKey is a Kyber1024 prekey: a key pair with a 32-bit id, signed by the
// identity key over the encoded public key (KeyType || key, 1569 bytes), as
// libsignal signs its Kyber prekeys. A one-time prekey is handed out once and
// deleted after use; a last-resort prekey stays until it is replaced.
type PreKey struct {
	id         uint32
	key        *PrivateKey
	sig        [keys.SignatureSize]byte
	created    time.Time
	lastResort bool
}

// GeneratePreKey makes a fresh Kyber prekey with the given id, signed by ik,
// stamped with the current time (to the second).
func GeneratePreKey(ik *keys.IdentityKeyPair, id uint32, lastResort bool) (*PreKey, error) {
	key, err := GeneratePrivateKey()
	if err != nil {
		return nil, err
	}
	p := &PreKey{id: id, key: key, created: time.Now().Truncate(time.Second), lastResort: lastResort}
	copy(p.sig[:], ik.Sign(key.PublicKey().Encode()))
	return p, nil
}

// GeneratePreKeys makes n fresh one-time Kyber prekeys with the consecutive
// ids firstID, …, firstID+n−1, each signed by ik and stamped with the
// current time, as an upload of one-time prekeys needs them; a last-resort
// prekey is GeneratePreKey with lastResort true. Kyber prekeys share one id
// space whatever their kind, so the caller picks firstID above every id it
// used (the store's LastID) and the last-resort id outside the batch. It
// fails rather than wrap past 2^32 − 1.
func GeneratePreKeys(ik *keys.IdentityKeyPair, firstID uint32, n int) ([]*PreKey, error) {
	if n < 0 || (n > 0 && uint64(firstID)+uint64(n-1) > math.MaxUint32) {
		return nil, fmt.Errorf("kyber: %d prekeys from id %d would overflow the 32-bit id space", n, firstID)
	}
	out := make([]*PreKey, n)
	for i := range out {
		p, err := GeneratePreKey(ik, firstID+uint32(i), false)
		if err != nil {
			for _, q := range out[:i] {
				q.key.Clear()
			}
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

// NewPreKey assembles a Kyber prekey from its parts, as loaded from storage.
// It checks the signature's length, not its validity: use Verify.
func NewPreKey(id uint32, key *PrivateKey, sig []byte, created time.Time, lastResort bool) (*PreKey, error) {
	if key == nil {
		return nil, ErrInvalidPrivateKey
	}
	if len(sig) != keys.SignatureSize {
		return nil, fmt.Errorf("%w: signature length %d", ErrInvalidSignature, len(sig))
	}
	p := &PreKey{id: id, key: key, created: created.Truncate(time.Second), lastResort: lastResort}
	copy(p.sig[:], sig)
	return p, nil
}

// ID returns the prekey's id.
func (p *PreKey) ID() uint32 { return p.id }

// PrivateKey returns the prekey's private key.
func (p *PreKey) PrivateKey() *PrivateKey { return p.key }

// PublicKey returns the prekey's public key.
func (p *PreKey) PublicKey() *PublicKey { return p.key.PublicKey() }

// Signature returns a copy of the XEdDSA signature over
// PublicKey().Encode().
func (p *PreKey) Signature() []byte {
	s := p.sig
	return s[:]
}

// Created returns when the prekey was made, to the second.
func (p *PreKey) Created() time.Time { return p.created }

// LastResort reports whether this is a last-resort prekey.
func (p *PreKey) LastResort() bool { return p.lastResort }

// Verify checks the prekey's signature under the identity key ik.
func (p *PreKey) Verify(ik *keys.PublicKey) error {
	return VerifyPreKey(ik, p.PublicKey(), p.sig[:])
}

// VerifyPreKey checks sig, an XEdDSA signature by ik over pk.Encode(), as a
// bundle carries it. It accepts libsignal's signatures (whose last byte
// carries the Edwards sign bit) and spec-exact ones, under the rules of
// keys.PublicKey.Verify.
func VerifyPreKey(ik *keys.PublicKey, pk *PublicKey, sig []byte) error {
	if ik == nil || pk == nil || !ik.Verify(pk.Encode(), sig) {
		return ErrInvalidSignature
	}
	return nil
}

const (
	preKeyFormatV1 = 0x01
	flagLastResort = 0x01
	preKeyBlobSize = 1 + 1 + 4 + 8 + SeedSize + keys.SignatureSize
)

// MarshalBinary encodes the prekey for storage. The layout, version 1, in
// TLS presentation language (integers big-endian):
//
//	struct {
//	    uint8  version = 0x01;
//	    uint8  flags;              // bit 0: last resort; bits 1-7 zero
//	    uint32 id;
//	    int64  created;            // Unix seconds
//	    opaque seed[64];           // FIPS 203 d || z
//	    opaque signature[64];
//	} KyberPreKey;                 // 142 bytes
//
// The blob holds the private key: it is secret, and the caller wipes it.
// libsignal's KyberPreKeyRecord holds the expanded secret key instead, which
// crypto/mlkem can neither make nor load (see the package documentation).
func (p *PreKey) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, preKeyBlobSize)
	var flags byte
	if p.lastResort {
		flags |= flagLastResort
	}
	b = append(b, preKeyFormatV1, flags)
	b = binary.BigEndian.AppendUint32(b, p.id)
	b = binary.BigEndian.AppendUint64(b, uint64(p.created.Unix()))
	seed := p.key.Bytes()
	b = append(b, seed...)
	clear(seed)
	return append(b, p.sig[:]...), nil
}

// ParsePreKey decodes a blob made by MarshalBinary. Every blob has one
// encoding: unknown versions and flags and wrong lengths are
// ErrInvalidEncoding. It does not check the signature.
func ParsePreKey(b []byte) (*PreKey, error) {
	if len(b) != preKeyBlobSize || b[0] != preKeyFormatV1 || b[1]&^flagLastResort != 0 {
		return nil, ErrInvalidEncoding
	}
	key, err := NewPrivateKey(b[14 : 14+SeedSize])
	if err != nil {
		return nil, ErrInvalidEncoding
	}
	created := time.Unix(int64(binary.BigEndian.Uint64(b[6:14])), 0)
	return NewPreKey(binary.BigEndian.Uint32(b[2:6]), key, b[14+SeedSize:], created, b[1]&flagLastResort != 0)
}

// String describes the prekey without its private key.
func (p PreKey) String() string {
	return fmt.Sprintf("kyber.PreKey{id: %d, last_resort: %t, private: REDACTED}", p.id, p.lastResort)
}

// GoString is String.
func (p PreKey) GoString() string { return p.String() }

// Format prints String whatever the verb.
func (p PreKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, p.String()) }
