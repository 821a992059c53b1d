package pqxdh

import (
	"fmt"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
)

// Bundle is what a responder publishes so that others can start sessions
// with it while it is offline, as libsignal's PreKeyBundle carries it.
type Bundle struct {
	// RegistrationID and DeviceID identify the responder's installation;
	// PQXDH does not use them, the session layer does.
	RegistrationID uint32
	DeviceID       uint32
	// IdentityKey is IK_B.
	IdentityKey *keys.PublicKey
	// SignedPreKeyID names SignedPreKey in the responder's store.
	SignedPreKeyID uint32
	// SignedPreKey is SPK_B.
	SignedPreKey *keys.PublicKey
	// SignedPreKeySignature is the XEdDSA signature of
	// SignedPreKey.Encode() under IdentityKey, 64 bytes.
	SignedPreKeySignature []byte
	// OneTimePreKeyID names OneTimePreKey; it is ignored when there is none.
	OneTimePreKeyID uint32
	// OneTimePreKey is OPK_B, or nil.
	OneTimePreKey *keys.PublicKey
	// KyberPreKeyID names KyberPreKey in the responder's store.
	KyberPreKeyID uint32
	// KyberPreKey is PQPK_B, a Kyber1024 public key.
	KyberPreKey *kyber.PublicKey
	// KyberPreKeySignature is the XEdDSA signature of KyberPreKey.Encode()
	// (0x08 || key, 1569 bytes) under IdentityKey, 64 bytes.
	KyberPreKeySignature []byte
}

// Verify checks that the bundle has every required key and that both
// prekey signatures verify under the identity key. It computes nothing
// secret. A missing key is ErrMalformed, a bad signature (of either prekey)
// ErrInvalidSignature.
func (b *Bundle) Verify() error {
	switch {
	case b == nil:
		return fmt.Errorf("%w: nil bundle", ErrMalformed)
	case b.IdentityKey == nil:
		return fmt.Errorf("%w: bundle lacks the identity key", ErrMalformed)
	case b.SignedPreKey == nil:
		return fmt.Errorf("%w: bundle lacks the signed prekey", ErrMalformed)
	case b.KyberPreKey == nil:
		return fmt.Errorf("%w: bundle lacks the Kyber prekey", ErrMalformed)
	}
	if err := keys.VerifySignedPreKey(b.IdentityKey, b.SignedPreKey, b.SignedPreKeySignature); err != nil {
		return fmt.Errorf("pqxdh: signed prekey: %w", ErrInvalidSignature)
	}
	if err := kyber.VerifyPreKey(b.IdentityKey, b.KyberPreKey, b.KyberPreKeySignature); err != nil {
		return fmt.Errorf("pqxdh: Kyber prekey: %w", ErrInvalidSignature)
	}
	return nil
}
