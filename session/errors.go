package session

import (
	"errors"
	"fmt"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/store"
)

// The session layer's own sentinels. Test for them with errors.Is; the
// errors the ratchet, x3dh and keys packages define come through as they
// are (see Manager.Decrypt for the full list).
var (
	// ErrMalformed reports a message whose layout is wrong: shorter than
	// 58 bytes, a prekey message with unknown flag bits, too short for its
	// flags or without a ratchet message inside, or a repeated prekey
	// message whose outer fields differ from those that started its
	// session.
	ErrMalformed = errors.New("session: malformed message")
	// ErrUnknownType reports a message whose first byte is neither 0x01
	// (ratchet message) nor 0x02 (prekey message).
	ErrUnknownType = errors.New("session: unknown message type")
	// ErrNoSession reports that there is no session with the address to
	// encrypt or decrypt a ratchet message with: start one from the
	// peer's bundle, or wait for the peer's prekey message.
	ErrNoSession = errors.New("session: no session with this address")
	// ErrUnknownPreKey reports a prekey message that names a signed
	// prekey this device does not hold (expired, or never made here) or a
	// one-time prekey that is not, or no longer, stored: already used by
	// another session, possibly in a transaction that committed while
	// this message was being decrypted.
	ErrUnknownPreKey = errors.New("session: unknown prekey")
	// ErrUntrustedIdentity is what every *IdentityError matches with
	// errors.Is.
	ErrUntrustedIdentity = errors.New("session: untrusted identity key")
	// ErrConflict reports that another writer (a second Manager or
	// process on the same store) kept changing the address's session
	// record while this operation ran, so that it gave up after
	// retrying. Nothing was saved; the operation may be repeated.
	ErrConflict = errors.New("session: session record changed concurrently")
	// ErrTooLarge reports a plaintext longer than Config.MaxMessageSize,
	// given to Encrypt or carried by a received message. A received one
	// is refused before any cryptography or store access.
	ErrTooLarge = errors.New("session: message too large")
)

// IdentityError reports an identity key that the trust policy does not
// accept for an address: a peer whose key changed since it was first
// seen (a reinstall, a new device under the same address, or an attack),
// or, under TrustExplicit, a key nobody approved. Nothing was saved.
// The application shows the user the change, ideally with the new
// safety number, and calls Manager.ApproveIdentity with Received if the
// user accepts it; the same operation then succeeds.
//
// IdentityError matches ErrUntrustedIdentity with errors.Is.
type IdentityError struct {
	// Address is the peer device.
	Address store.Address
	// Trusted is the key stored as trusted for Address: the old one.
	// It is nil when no key is trusted yet (under TrustExplicit).
	Trusted *keys.PublicKey
	// Received is the key that the bundle, prekey message or session
	// presented: the new one.
	Received *keys.PublicKey
}

func (e *IdentityError) Error() string {
	if e.Trusted == nil {
		return "session: identity key of " + e.Address.String() + " not approved"
	}
	return "session: identity key of " + e.Address.String() + " changed"
}

// Unwrap returns ErrUntrustedIdentity.
func (e *IdentityError) Unwrap() error { return ErrUntrustedIdentity }

// Errors built once, so that rejecting a hostile message allocates
// nothing. They wrap the sentinels of the packages that own them.
var (
	errShort       = fmt.Errorf("%w: shorter than 58 bytes", ErrMalformed)
	errFlags       = fmt.Errorf("%w: unknown prekey message flags", ErrMalformed)
	errPreKeyShort = fmt.Errorf("%w: prekey message too short", ErrMalformed)
	errInnerType   = fmt.Errorf("%w: prekey message does not hold a ratchet message", ErrMalformed)
	errFields      = fmt.Errorf("%w: prekey message fields differ from those that started its session", ErrMalformed)
	errIdentityKey = fmt.Errorf("session: prekey message identity key: %w", keys.ErrInvalidPublicKey)
	errBaseKey     = fmt.Errorf("session: prekey message ephemeral key: %w", keys.ErrInvalidPublicKey)
	errRatchetKey  = fmt.Errorf("session: message ratchet key: %w", keys.ErrInvalidPublicKey)
	errCounter     = fmt.Errorf("session: %w", ratchet.ErrCounterOverflow)
	errNoSPK       = fmt.Errorf("%w: signed prekey", ErrUnknownPreKey)
	errNoOPK       = fmt.Errorf("%w: one-time prekey", ErrUnknownPreKey)
	errNoOPKCommit = fmt.Errorf("%w: one-time prekey consumed concurrently", ErrUnknownPreKey)
	errTooLargeOut = fmt.Errorf("%w: plaintext longer than Config.MaxMessageSize", ErrTooLarge)
	errTooLargeIn  = fmt.Errorf("%w: received message's plaintext longer than Config.MaxMessageSize", ErrTooLarge)

	// errRetry is returned inside an operation whose record changed
	// between its read and its write.
	errRetry = errors.New("session: retry")
)

// storeError wraps an error from the store, whose sentinels
// (store.ErrNotFound) stay testable.
func storeError(what string, err error) error {
	return fmt.Errorf("session: %s: %w", what, err)
}
