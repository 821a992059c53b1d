package x3dh

import (
	"encoding/binary"
	"fmt"

	"github.com/ratchetkit/ratchetkit/keys"
)

// Bundle is the set of public keys a party publishes so that others can
// start sessions with it while it is offline: its identity key, a signed
// prekey with its id and signature, and optionally one one-time prekey.
// A server hands out each one-time prekey in at most one bundle.
//
// ParseBundle checks encodings only. Initiate (or Verify) checks the keys'
// order and the signature.
type Bundle struct {
	// IdentityKey is IK_B, the owner's long-term identity key.
	IdentityKey *keys.PublicKey
	// SignedPreKeyID names SignedPreKey in the owner's store; it travels in
	// the first message so the owner can find the private half.
	SignedPreKeyID uint32
	// SignedPreKey is SPK_B.
	SignedPreKey *keys.PublicKey
	// SignedPreKeySignature is the XEdDSA signature of Encode(SignedPreKey)
	// under IdentityKey, 64 bytes.
	SignedPreKeySignature []byte
	// OneTimePreKeyID names OneTimePreKey. It must be 0 when there is none.
	OneTimePreKeyID uint32
	// OneTimePreKey is OPK_B, or nil when the server has run out.
	OneTimePreKey *keys.PublicKey
}

// bundleVersion starts every encoded bundle. A future layout gets a new
// value; ParseBundle rejects any value it does not know.
const bundleVersion = 0x01

// flagOneTimePreKey is bit 0 of the flags byte of bundles and headers.
const flagOneTimePreKey = 0x01

const (
	bundleSizeNoOPK = 1 + 1 + keys.EncodedPublicKeySize + 4 + keys.EncodedPublicKeySize + keys.SignatureSize
	bundleSizeOPK   = bundleSizeNoOPK + 4 + keys.EncodedPublicKeySize
)

// AppendBinary appends the bundle's encoding to dst. The layout, version 1,
// in TLS presentation language (integers big-endian, keys as Encode(PK) =
// 0x05 || u):
//
//	struct {
//	    uint8  version = 0x01;
//	    uint8  flags;                  // bit 0: one-time prekey present; bits 1-7 zero
//	    opaque identity_key[33];
//	    uint32 signed_prekey_id;
//	    opaque signed_prekey[33];
//	    opaque signed_prekey_signature[64];
//	    select (flags bit 0) {
//	        case 1: uint32 one_time_prekey_id; opaque one_time_prekey[33];
//	        case 0: struct {};
//	    };
//	} Bundle;                          // 136 or 173 bytes
//
// Every bundle has exactly one encoding. A change to the layout gets a new
// version byte; decoders keep accepting old versions they know.
//
// It fails if a required key is missing, the signature is not 64 bytes, or
// OneTimePreKeyID is set without a OneTimePreKey. It does not check the
// signature.
func (b *Bundle) AppendBinary(dst []byte) ([]byte, error) {
	if err := b.checkKeys(); err != nil {
		return dst, err
	}
	if len(b.SignedPreKeySignature) != keys.SignatureSize {
		return dst, fmt.Errorf("%w: signed prekey signature is %d bytes, want %d",
			ErrMalformed, len(b.SignedPreKeySignature), keys.SignatureSize)
	}
	var flags byte
	if b.OneTimePreKey != nil {
		flags |= flagOneTimePreKey
	}
	dst = append(dst, bundleVersion, flags)
	dst = b.IdentityKey.AppendEncode(dst)
	dst = binary.BigEndian.AppendUint32(dst, b.SignedPreKeyID)
	dst = b.SignedPreKey.AppendEncode(dst)
	dst = append(dst, b.SignedPreKeySignature...)
	if b.OneTimePreKey != nil {
		dst = binary.BigEndian.AppendUint32(dst, b.OneTimePreKeyID)
		dst = b.OneTimePreKey.AppendEncode(dst)
	}
	return dst, nil
}

// MarshalBinary returns the bundle's encoding; see AppendBinary.
func (b *Bundle) MarshalBinary() ([]byte, error) {
	return b.AppendBinary(make([]byte, 0, bundleSizeOPK))
}

// checkKeys reports missing keys and a one-time prekey id without a key:
// defects of hand-built bundles, never of ParseBundle's results.
func (b *Bundle) checkKeys() error {
	switch {
	case b == nil:
		return fmt.Errorf("%w: nil bundle", ErrMalformed)
	case b.IdentityKey == nil:
		return fmt.Errorf("%w: bundle has no identity key", ErrMalformed)
	case b.SignedPreKey == nil:
		return fmt.Errorf("%w: bundle has no signed prekey", ErrMalformed)
	case b.OneTimePreKey == nil && b.OneTimePreKeyID != 0:
		return fmt.Errorf("%w: bundle has a one-time prekey id but no one-time prekey", ErrMalformed)
	}
	return nil
}

// ParseBundle decodes a bundle made by AppendBinary. It is strict: the
// version must be 1, the length exactly 136 or 173 bytes as the flags say,
// flag bits 1 to 7 zero, and every key must decode (type byte 0x05, u < p).
// Every error wraps ErrMalformed; an error caused by a key that does not
// decode also wraps keys.ErrInvalidPublicKey. Decoding the result again with
// MarshalBinary gives back b exactly.
//
// ParseBundle does not verify the signature or reject small-order keys;
// Initiate does both, and Verify does them without starting a session.
func ParseBundle(b []byte) (*Bundle, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: bundle of %d bytes", ErrMalformed, len(b))
	}
	if b[0] != bundleVersion {
		return nil, fmt.Errorf("%w: unknown bundle version 0x%02x", ErrMalformed, b[0])
	}
	flags := b[1]
	if flags&^flagOneTimePreKey != 0 {
		return nil, fmt.Errorf("%w: unknown bundle flags 0x%02x", ErrMalformed, flags)
	}
	want := bundleSizeNoOPK
	if flags&flagOneTimePreKey != 0 {
		want = bundleSizeOPK
	}
	if len(b) != want {
		return nil, fmt.Errorf("%w: bundle of %d bytes, want %d", ErrMalformed, len(b), want)
	}

	var err error
	out := new(Bundle)
	r := b[2:]
	if out.IdentityKey, err = decodeKey(&r, "identity key"); err != nil {
		return nil, err
	}
	out.SignedPreKeyID = binary.BigEndian.Uint32(r)
	r = r[4:]
	if out.SignedPreKey, err = decodeKey(&r, "signed prekey"); err != nil {
		return nil, err
	}
	out.SignedPreKeySignature = append([]byte(nil), r[:keys.SignatureSize]...)
	r = r[keys.SignatureSize:]
	if flags&flagOneTimePreKey != 0 {
		out.OneTimePreKeyID = binary.BigEndian.Uint32(r)
		r = r[4:]
		if out.OneTimePreKey, err = decodeKey(&r, "one-time prekey"); err != nil {
			return nil, err
		}
	}
	if len(r) != 0 {
		// Unreachable given the length check above; kept so that a future
		// layout change cannot silently accept trailing bytes.
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(r))
	}
	return out, nil
}

// decodeKey decodes the 33-byte key at the start of *r and advances *r. The
// caller has checked that enough bytes remain.
func decodeKey(r *[]byte, what string) (*keys.PublicKey, error) {
	k, err := keys.DecodePublicKey((*r)[:keys.EncodedPublicKeySize])
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, what, err)
	}
	*r = (*r)[keys.EncodedPublicKeySize:]
	return k, nil
}

// Verify runs the checks Initiate makes before computing anything, in this
// order: every key present (else ErrMalformed), no key of small order
// (ErrSmallOrder), then the signed-prekey signature, where a signature of
// the wrong length is invalid too (ErrInvalidSignature). A server can call
// it when a bundle is uploaded; Initiate repeats it, so clients need not.
//
// Keys are judged before the signature because a key problem is the more
// specific diagnosis: XEdDSA verification rejects every small-order identity
// key, so checking the signature first would report a small-order IK_B as a
// bad signature.
func (b *Bundle) Verify() error {
	if err := b.checkKeys(); err != nil {
		return err
	}
	if err := checkOrder(b.IdentityKey, "bundle identity key"); err != nil {
		return err
	}
	if err := checkOrder(b.SignedPreKey, "bundle signed prekey"); err != nil {
		return err
	}
	if b.OneTimePreKey != nil {
		if err := checkOrder(b.OneTimePreKey, "bundle one-time prekey"); err != nil {
			return err
		}
	}
	if err := keys.VerifySignedPreKey(b.IdentityKey, b.SignedPreKey, b.SignedPreKeySignature); err != nil {
		return fmt.Errorf("x3dh: bundle: %w", ErrInvalidSignature)
	}
	return nil
}
