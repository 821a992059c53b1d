package session

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/ratchetkit/ratchetkit/internal/hazmat"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// TrustPolicy decides which identity keys a Manager accepts for a peer.
type TrustPolicy int

const (
	// TrustOnFirstUse accepts the first identity key seen for an address
	// and records it; a different key afterwards is refused with an
	// *IdentityError until the application approves it. This is what
	// messengers do by default: it stops a later impostor, not one who is
	// there from the start, which comparing safety numbers catches.
	TrustOnFirstUse TrustPolicy = iota
	// TrustExplicit accepts only keys the application approved with
	// ApproveIdentity, the first one included: for applications that learn
	// keys through a channel they trust (a scanned QR code, a directory
	// with key transparency) before any message is exchanged.
	TrustExplicit
)

// Defaults of the Config fields.
const (
	// DefaultOneTimePreKeys and DefaultMinOneTimePreKeys are Signal's
	// figures: a batch of 100, refilled when fewer than 10 are left, so
	// that a server rarely runs out (a session started without one-time
	// prekey has weaker forward secrecy for its first messages, and its
	// first message can be replayed).
	DefaultOneTimePreKeys    = 100
	DefaultMinOneTimePreKeys = 10
	// DefaultSignedPreKeyRotation bounds how long a stolen signed prekey
	// helps an attacker with first messages that carry no one-time
	// prekey.
	DefaultSignedPreKeyRotation = 7 * 24 * time.Hour
	// DefaultSignedPreKeyGrace outlasts a bundle cached by a server or a
	// client and a first message that waits undelivered, so that the
	// first messages of late starters still decrypt.
	DefaultSignedPreKeyGrace = 30 * 24 * time.Hour
	// DefaultMaxMessageSize bounds the plaintext of one message: 64 KiB,
	// ample for text and small structured payloads. Larger content
	// (attachments) is better encrypted under a fresh key sent in a
	// message.
	DefaultMaxMessageSize = 64 << 10
	// DefaultCachedRecords is how many addresses' parsed session records
	// a Manager keeps between operations unless Config.CachedRecords
	// says otherwise.
	DefaultCachedRecords = 128
)

// maxAttempts bounds the retries of an operation whose record another
// writer changed between its read and its write.
const maxAttempts = 8

// Config holds a Manager's settings. The zero Config (or nil) gives the
// defaults; both peers must agree on Info and on Ratchet.Suite.
type Config struct {
	// Protocol selects the protocol of the Manager's sessions:
	// ratchet.ProfileV1 (the zero value, PROTOCOL.md) or ratchet.Signal
	// (libsignal 0.103's protocol, SIGNAL.md). Every Manager method works
	// the same way under both; what differs is the bundle a session
	// starts from (StartSession takes an x3dh.Bundle, StartSignalSession
	// a pqxdh.Bundle), the messages, and, for Signal, the Kyber prekeys
	// that Upkeep keeps and that the store must hold (store.KyberTx:
	// Init refuses a store without them). A store's records are of one
	// protocol: a Manager refuses the other protocol's records with
	// ErrInvalidRecord.
	Protocol ratchet.Protocol
	// RegistrationID is the installation's registration id that Signal
	// PreKeySignalMessages carry (libsignal's local registration id,
	// which must stay the same for the installation); profile v1 has
	// none. Zero is allowed.
	RegistrationID uint32
	// Info is the X3DH info string (see x3dh.Config); empty means
	// x3dh.DefaultInfo.
	Info []byte
	// Ratchet sets the limits and cipher suite of new sessions. A session
	// keeps the settings it was made with. Under ratchet.Signal the limits
	// and suite must be zero: libsignal's are fixed.
	Ratchet ratchet.Config
	// MaxArchived is how many sessions per address are kept besides the
	// current one; under profile v1 the oldest-created go first, under
	// ratchet.Signal the one that stopped being current longest ago, as
	// in libsignal. Zero means
	// DefaultMaxArchived (40, the most), negative means none.
	MaxArchived int
	// Trust is the identity trust policy; the zero value is
	// TrustOnFirstUse.
	Trust TrustPolicy
	// MaxMessageSize is the longest plaintext, in bytes, that Encrypt
	// accepts and that a received message may carry: a longer message is
	// refused with ErrTooLarge before any cryptography or store access.
	// Both peers should agree on it. Zero means DefaultMaxMessageSize.
	MaxMessageSize int
	// CachedRecords is how many addresses' session records the Manager
	// keeps parsed in memory between operations, so that a message
	// costs one store transaction instead of two and no parsing. The
	// cache is write-through and checked against the store on every
	// write, so several Managers may still share a store; it holds
	// session secrets in memory longer (they are wiped on eviction).
	// Zero means DefaultCachedRecords, negative means none.
	CachedRecords int

	// OneTimePreKeys is how many one-time prekeys Upkeep keeps in stock
	// when it refills; zero means DefaultOneTimePreKeys. Under
	// ratchet.Signal it also sets the stock of one-time Kyber prekeys,
	// and MinOneTimePreKeys their refill point.
	OneTimePreKeys int
	// MinOneTimePreKeys is the stock below which Upkeep refills and
	// PreKeyStatus reports Low; zero means DefaultMinOneTimePreKeys.
	MinOneTimePreKeys int
	// SignedPreKeyRotation is the age at which Upkeep replaces the signed
	// prekey (and, under ratchet.Signal, the last-resort Kyber prekey);
	// zero means DefaultSignedPreKeyRotation.
	SignedPreKeyRotation time.Duration
	// SignedPreKeyGrace is how long a replaced signed prekey (or
	// last-resort Kyber prekey) is kept, so that peers holding a bundle
	// with it can still start sessions; zero means
	// DefaultSignedPreKeyGrace.
	SignedPreKeyGrace time.Duration
	// Now is the clock for signed and Kyber prekeys and for the age of
	// unacknowledged Signal sessions; nil means time.Now.
	Now func() time.Time

	// keySource, set only through internal/hazmat by ratchetkit's
	// conformance driver and known-answer tests, replaces crypto/rand for
	// the keys the Manager generates for sessions, drawn in this order:
	// StartSession draws the X3DH ephemeral key EK_A, then the
	// initiator's first ratchet key pair; a Decrypt draws one key for the
	// DH ratchet step it commits, if any, from the session that decrypted
	// the message (every session tried is given the source, and sessions
	// draw only once a message authenticated); an operation redone after
	// a conflict draws again. Identity keys and prekeys are not drawn
	// from it.
	keySource hazmat.KeySource
}

func init() {
	hazmat.SetSessionKeySource = func(cfg any, src hazmat.KeySource) {
		cfg.(*Config).keySource = src
	}
}

// settings is a Config checked and with its defaults filled in.
type settings struct {
	proto       ratchet.Protocol
	regID       uint32
	x3dh        x3dh.Config
	ratchet     ratchet.Config
	maxArchived int
	trust       TrustPolicy
	maxMessage  int
	cached      int
	otpTarget   int
	otpMin      int
	rotation    time.Duration
	grace       time.Duration
	now         func() time.Time
	keySource   hazmat.KeySource
}

// orDefault returns v, or def if v is zero.
func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// settings checks c and fills in the defaults.
func (c *Config) settings() (settings, error) {
	s := settings{
		proto:       c.Protocol,
		regID:       c.RegistrationID,
		x3dh:        x3dh.Config{Info: bytes.Clone(c.Info)},
		ratchet:     c.Ratchet,
		maxArchived: c.MaxArchived,
		trust:       c.Trust,
		maxMessage:  orDefault(c.MaxMessageSize, DefaultMaxMessageSize),
		cached:      orDefault(c.CachedRecords, DefaultCachedRecords),
		otpTarget:   orDefault(c.OneTimePreKeys, DefaultOneTimePreKeys),
		otpMin:      orDefault(c.MinOneTimePreKeys, DefaultMinOneTimePreKeys),
		rotation:    orDefault(c.SignedPreKeyRotation, DefaultSignedPreKeyRotation),
		grace:       orDefault(c.SignedPreKeyGrace, DefaultSignedPreKeyGrace),
		now:         c.Now,
		keySource:   c.keySource,
	}
	switch {
	case s.maxArchived == 0:
		s.maxArchived = DefaultMaxArchived
	case s.maxArchived < 0:
		s.maxArchived = 0
	case s.maxArchived > DefaultMaxArchived:
		return s, fmt.Errorf("session: Config.MaxArchived above %d", DefaultMaxArchived)
	}
	switch s.proto {
	case ratchet.ProfileV1:
	case ratchet.Signal:
		if len(c.Info) != 0 {
			return s, errors.New("session: Config.Info is for profile v1; PQXDH's info string is fixed")
		}
		if c.Ratchet.MaxSkip != 0 || c.Ratchet.MaxSkippedKeys != 0 || c.Ratchet.Suite != nil {
			return s, errors.New("session: Config.Ratchet must be zero under ratchet.Signal: libsignal's limits are fixed")
		}
	default:
		return s, errors.New("session: unknown Config.Protocol")
	}
	if s.trust != TrustOnFirstUse && s.trust != TrustExplicit {
		return s, errors.New("session: unknown Config.Trust")
	}
	if s.maxMessage < 0 {
		return s, errors.New("session: negative Config.MaxMessageSize")
	}
	if s.cached < 0 {
		s.cached = 0
	}
	if s.otpTarget < 0 || s.otpMin < 0 || s.otpMin > s.otpTarget {
		return s, errors.New("session: Config.MinOneTimePreKeys must be between 0 and OneTimePreKeys")
	}
	if s.rotation < 0 || s.grace < 0 {
		return s, errors.New("session: negative signed prekey period")
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.keySource != nil {
		hazmat.SetX3DHKeySource(&s.x3dh, s.keySource)
		hazmat.SetRatchetKeySource(&s.ratchet, s.keySource)
	}
	// Catch a bad ratchet.Config now rather than at the first session.
	if err := s.ratchet.Validate(); err != nil {
		return s, fmt.Errorf("session: Config.Ratchet: %w", err)
	}
	return s, nil
}
