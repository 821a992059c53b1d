package pqxdh

import (
	"errors"
	"fmt"

	"github.com/ratchetkit/ratchetkit/internal/kdf"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
)

// Info is the HKDF info string of PQXDH with X25519, SHA-256 and
// Kyber1024, as libsignal spells it.
const Info = "WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024"

var info = []byte(Info)

// KeySize is the length of each of the three derived keys.
const KeySize = 32

var (
	// ErrInvalidSignature is returned when a bundle's signed-prekey or
	// Kyber-prekey signature does not verify. It is keys.ErrInvalidSignature.
	ErrInvalidSignature = keys.ErrInvalidSignature
	// ErrSmallOrder is returned for an all-zero X25519 output, which only a
	// small-order peer key gives. It is keys.ErrSmallOrder.
	ErrSmallOrder = keys.ErrSmallOrder
	// ErrInvalidBaseKey is returned by Respond for a base key that is not
	// canonical (see Respond); libsignal refuses the same keys with
	// "incoming base key is invalid".
	ErrInvalidBaseKey = errors.New("pqxdh: invalid base key")
	// ErrMalformed is returned for a bundle or header that lacks a key or
	// whose Kyber ciphertext has the wrong shape.
	ErrMalformed = errors.New("pqxdh: malformed bundle or header")
	// ErrPreKeyMismatch is returned by Respond when the prekeys it is given
	// are not the ones the header names.
	ErrPreKeyMismatch = errors.New("pqxdh: prekey does not match the header")
)

// Keys is the output of PQXDH. It is secret; Clear wipes it.
type Keys struct {
	// RootKey is the first root key of the Double Ratchet.
	RootKey [KeySize]byte
	// ChainKey is the first chain key: the responder's sending chain and the
	// initiator's first receiving chain, both on SPK_B.
	ChainKey [KeySize]byte
	// PQRKey is the initial key of SPQR, the post-quantum ratchet.
	PQRKey [KeySize]byte
}

// Clear wipes the keys (best effort).
func (k *Keys) Clear() {
	clear(k.RootKey[:])
	clear(k.ChainKey[:])
	clear(k.PQRKey[:])
}

// String redacts the keys, under every fmt verb.
func (Keys) String() string { return "pqxdh.Keys{REDACTED}" }

// GoString is String.
func (k Keys) GoString() string { return k.String() }

// Format prints String whatever the verb.
func (k Keys) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// Header is what the initiator's first messages carry so that the responder
// can run Respond: the fields of libsignal's PreKeySignalMessage that PQXDH
// needs.
type Header struct {
	// IdentityKey is IK_A.
	IdentityKey *keys.PublicKey
	// BaseKey is EK_A.
	BaseKey *keys.PublicKey
	// SignedPreKeyID names SPK_B.
	SignedPreKeyID uint32
	// HasOneTimePreKey says whether OPK_B was used; OneTimePreKeyID names it.
	HasOneTimePreKey bool
	OneTimePreKeyID  uint32
	// KyberPreKeyID names PQPK_B.
	KyberPreKeyID uint32
	// KyberCiphertext is CT, 0x08 || 1568 bytes.
	KyberCiphertext []byte
}

// Initiation is the initiator's result.
type Initiation struct {
	Keys
	Header Header
}

// String redacts the keys.
func (in Initiation) String() string {
	return fmt.Sprintf("pqxdh.Initiation{Keys: REDACTED, spk_id: %d, opk: %t, opk_id: %d, kyber_id: %d}",
		in.Header.SignedPreKeyID, in.Header.HasOneTimePreKey, in.Header.OneTimePreKeyID, in.Header.KyberPreKeyID)
}

// GoString is String.
func (in Initiation) GoString() string { return in.String() }

// Format prints String whatever the verb.
func (in Initiation) Format(f fmt.State, _ rune) { fmt.Fprint(f, in.String()) }

// Initiate runs PQXDH as the initiator with identity key ik and the
// responder's bundle b. It verifies the bundle first (see Bundle.Verify);
// then it draws the base key EK_A from crypto/rand, encapsulates to the
// Kyber prekey and derives the keys as the package documentation shows.
// The base key's private half and the DH outputs are wiped before it
// returns (best effort).
func Initiate(ik *keys.IdentityKeyPair, b *Bundle) (*Initiation, error) {
	if ik == nil {
		return nil, errors.New("pqxdh: nil identity key pair")
	}
	if err := b.Verify(); err != nil {
		return nil, err
	}
	ek, err := keys.GeneratePrivateKey()
	if err != nil {
		return nil, err
	}
	defer ek.Clear()
	return initiate(ik, b, ek, (*kyber.PublicKey).Encapsulate)
}

// initiate is Initiate after verification, with the base key and the
// encapsulation given, so that tests can fix both.
func initiate(ik *keys.IdentityKeyPair, b *Bundle, ek *keys.PrivateKey, encaps func(*kyber.PublicKey) ([]byte, []byte)) (*Initiation, error) {
	var s secrets
	defer s.wipe()
	s.start()
	if err := s.dh(ik.PrivateKey(), b.SignedPreKey); err != nil {
		return nil, err
	}
	if err := s.dh(ek, b.IdentityKey); err != nil {
		return nil, err
	}
	if err := s.dh(ek, b.SignedPreKey); err != nil {
		return nil, err
	}
	out := &Initiation{Header: Header{
		IdentityKey:    ik.PublicKey(),
		BaseKey:        ek.PublicKey(),
		SignedPreKeyID: b.SignedPreKeyID,
		KyberPreKeyID:  b.KyberPreKeyID,
	}}
	if b.OneTimePreKey != nil {
		if err := s.dh(ek, b.OneTimePreKey); err != nil {
			return nil, err
		}
		out.Header.HasOneTimePreKey = true
		out.Header.OneTimePreKeyID = b.OneTimePreKeyID
	}
	ss, ct := encaps(b.KyberPreKey)
	s.ikm = append(s.ikm, ss...)
	clear(ss)
	out.Header.KyberCiphertext = ct
	s.derive(&out.Keys)
	return out, nil
}

// Respond runs PQXDH as the responder: ik is its identity key, spk, opk and
// kpk the prekeys that h names (opk nil when h names none), h the header of
// the initiator's first message. It returns the same Keys as the
// initiator's Initiate.
//
// It checks that the prekeys carry the ids h names and that a one-time
// prekey is given exactly when h has one (else ErrPreKeyMismatch), that h
// has its keys and a Kyber ciphertext of the right shape (else
// ErrMalformed), and that the base key is canonical (else
// ErrInvalidBaseKey) before it computes anything secret. A prekey with the
// right id but the wrong key, or a forged ciphertext, gives other keys, not
// an error: decrypting the first message is the check.
func Respond(ik *keys.IdentityKeyPair, spk *keys.SignedPreKey, opk *keys.OneTimePreKey, kpk *kyber.PreKey, h *Header) (*Keys, error) {
	switch {
	case ik == nil || spk == nil || kpk == nil:
		return nil, errors.New("pqxdh: nil identity key or prekey")
	case h == nil || h.IdentityKey == nil || h.BaseKey == nil:
		return nil, fmt.Errorf("%w: header lacks a key", ErrMalformed)
	case len(h.KyberCiphertext) != kyber.EncodedCiphertextSize || h.KyberCiphertext[0] != kyber.KeyType:
		return nil, fmt.Errorf("%w: Kyber ciphertext of %d bytes", ErrMalformed, len(h.KyberCiphertext))
	case spk.ID() != h.SignedPreKeyID:
		return nil, fmt.Errorf("%w: signed prekey %d given, header names %d", ErrPreKeyMismatch, spk.ID(), h.SignedPreKeyID)
	case kpk.ID() != h.KyberPreKeyID:
		return nil, fmt.Errorf("%w: Kyber prekey %d given, header names %d", ErrPreKeyMismatch, kpk.ID(), h.KyberPreKeyID)
	case opk == nil && h.HasOneTimePreKey:
		return nil, fmt.Errorf("%w: header names one-time prekey %d, none given", ErrPreKeyMismatch, h.OneTimePreKeyID)
	case opk != nil && !h.HasOneTimePreKey:
		return nil, fmt.Errorf("%w: one-time prekey %d given, header names none", ErrPreKeyMismatch, opk.ID())
	case opk != nil && opk.ID() != h.OneTimePreKeyID:
		return nil, fmt.Errorf("%w: one-time prekey %d given, header names %d", ErrPreKeyMismatch, opk.ID(), h.OneTimePreKeyID)
	}
	if !canonicalBaseKey(h.BaseKey) {
		return nil, ErrInvalidBaseKey
	}
	var s secrets
	defer s.wipe()
	s.start()
	if err := s.dh(spk.PrivateKey(), h.IdentityKey); err != nil {
		return nil, err
	}
	if err := s.dh(ik.PrivateKey(), h.BaseKey); err != nil {
		return nil, err
	}
	if err := s.dh(spk.PrivateKey(), h.BaseKey); err != nil {
		return nil, err
	}
	if opk != nil {
		if err := s.dh(opk.PrivateKey(), h.BaseKey); err != nil {
			return nil, err
		}
	}
	ss, err := kpk.PrivateKey().Decapsulate(h.KyberCiphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	s.ikm = append(s.ikm, ss...)
	clear(ss)
	out := new(Keys)
	s.derive(out)
	return out, nil
}

// secrets accumulates the HKDF input 0xFF*32 || DH1 || ... || SS in one
// buffer so that a single wipe clears every intermediate.
type secrets struct {
	buf [32 + 5*32]byte
	ikm []byte
}

func (s *secrets) start() {
	s.ikm = s.buf[:0]
	for range 32 {
		s.ikm = append(s.ikm, 0xFF)
	}
}

// dh appends DH(priv, pub) and refuses an all-zero output, as libsignal's
// calculate_agreement does.
func (s *secrets) dh(priv *keys.PrivateKey, pub *keys.PublicKey) error {
	out, err := priv.ECDH(pub)
	if err != nil {
		return fmt.Errorf("pqxdh: %w", ErrSmallOrder)
	}
	s.ikm = append(s.ikm, out...)
	clear(out)
	return nil
}

func (s *secrets) derive(k *Keys) {
	var out [3 * KeySize]byte
	h := kdf.Get()
	h.HKDF(out[:], kdf.ZeroSalt(), s.ikm, info)
	kdf.Put(h)
	copy(k.RootKey[:], out[0:32])
	copy(k.ChainKey[:], out[32:64])
	copy(k.PQRKey[:], out[64:96])
	clear(out[:])
}

func (s *secrets) wipe() { clear(s.buf[:]) }
