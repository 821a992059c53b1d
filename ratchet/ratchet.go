package ratchet

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/ratchetkit/ratchetkit/aead"
	"github.com/ratchetkit/ratchetkit/internal/curve"
	"github.com/ratchetkit/ratchetkit/internal/hazmat"
	"github.com/ratchetkit/ratchetkit/internal/kdf"
	"github.com/ratchetkit/ratchetkit/keys"
)

const (
	// DefaultMaxSkip is the default [Config.MaxSkip].
	DefaultMaxSkip = 1000
	// DefaultMaxSkippedKeys is the default [Config.MaxSkippedKeys].
	DefaultMaxSkippedKeys = 2000
	// MaxLimit is the largest value accepted for MaxSkip and MaxSkippedKeys.
	// Skipping costs one HMAC chain step (about half a microsecond) per
	// message key, and a forged header can make a session take MaxSkip of
	// them before its authentication tag fails; 65536 keeps that near 30
	// milliseconds, and a full skipped-key store below 5.3 MiB.
	MaxLimit = 1 << 16
	// MaxADSize is the longest associated data a session accepts.
	MaxADSize = 1<<16 - 1
	// SecretSize is the length of the shared secret SK.
	SecretSize = 32

	// headerSize is 0x01 || Encode(DHs.pub) || u32be(PN) || u32be(N).
	headerSize = 1 + keys.EncodedPublicKeySize + 4 + 4
	// minMessageSize is a header and an empty plaintext's tag.
	minMessageSize = headerSize + aead.Overhead
	typeRatchet    = 0x01

	// maxCounter is the largest value of Ns, PN and of N in a header.
	// 2^32−1 never appears on the wire: receiving it would make Nr wrap,
	// and a sender whose Ns reached it would later announce it as PN.
	maxCounter = 1<<32 - 2
)

var (
	// ErrAuthentication is the one error for a message that does not
	// authenticate: wrong keys, tampered bytes, a message from a chain the
	// session has moved past, or the wrong associated data.
	ErrAuthentication = errors.New("ratchet: message authentication failed")
	// ErrDuplicate reports a message on the current receiving chain that
	// was already decrypted (or whose key was evicted). Applications can
	// drop it quietly: nothing about the session changed.
	ErrDuplicate = errors.New("ratchet: duplicate message")
	// ErrTooManySkipped reports a message that would need more than
	// MaxSkip message keys of one chain skipped: either a forgery or a gap
	// too large to bridge.
	ErrTooManySkipped = errors.New("ratchet: too many skipped messages")
	// ErrCounterOverflow reports a header counter of 2^32−1, or an Encrypt
	// on a sending chain that has used all of its 2^32−2 message numbers.
	ErrCounterOverflow = errors.New("ratchet: message counter overflow")
	// ErrMalformed reports a message shorter than 58 bytes, the shortest
	// valid ratchet message, or, to a Signal session, anything but a strict
	// SignalMessage with an SPQR payload the session's SPQR state accepts
	// (well formed, of an epoch it holds, its braid pieces checked).
	ErrMalformed = errors.New("ratchet: malformed message")
	// ErrUnknownType reports a message whose first byte is not 0x01, the
	// ratchet message type (0x02, a prekey message, belongs to the session
	// layer, which unwraps it).
	ErrUnknownType = errors.New("ratchet: unknown message type")
	// ErrNoSendingChain is returned by Encrypt on a responder session that
	// has not decrypted a message yet: its first sending chain comes from
	// the initiator's first ratchet key.
	ErrNoSendingChain = errors.New("ratchet: no sending chain until the first message is received")
)

// Errors that wrap the keys package's sentinels, so that callers can test
// for a bad key with errors.Is(err, keys.ErrInvalidPublicKey) or
// errors.Is(err, keys.ErrSmallOrder). They are built once: rejecting a
// hostile message allocates nothing.
var (
	errHeaderKey  = fmt.Errorf("ratchet: message ratchet key: %w", keys.ErrInvalidPublicKey)
	errSmallOrder = fmt.Errorf("ratchet: ratchet key agreement: %w", keys.ErrSmallOrder)
)

// Config sets a profile v1 session's limits and cipher suite. The zero
// Config (or a nil *Config) gives the profile's defaults; a Signal session
// takes only the zero Config, since libsignal's limits and cipher are
// fixed. A session records its limits and suite in its serialized state,
// so they cannot change afterwards.
type Config struct {
	// MaxSkip bounds how far ahead of the receiving position a message may
	// be: a message that would need more than MaxSkip keys of one chain
	// skipped fails with ErrTooManySkipped, before any key is derived. It
	// bounds the work an unauthenticated message can cause: at most MaxSkip
	// HMAC chain steps (half a millisecond at the default) and one X25519
	// before its tag is checked. Zero means DefaultMaxSkip (1000: far more
	// than routine loss and reordering); a negative value means 0: every
	// message must arrive in order within its chain. At most MaxLimit.
	MaxSkip int
	// MaxSkippedKeys bounds the message keys a session keeps for messages
	// that have not arrived yet. When a new one would exceed it, the oldest
	// is deleted, and its message can no longer be decrypted. It bounds the
	// session's memory and state size (about 36 bytes per key serialized).
	// Zero means DefaultMaxSkippedKeys (2000, as in libsignal: two maximal
	// gaps, one at each end of a DH ratchet step); a negative value means 0.
	// At most MaxLimit.
	MaxSkippedKeys int
	// Suite is the message AEAD, aead.AES256GCM() (the profile's) if nil.
	Suite aead.Suite

	// keySource replaces crypto/rand for new ratchet key pairs; set only
	// through internal/hazmat, by known-answer tests.
	keySource hazmat.KeySource
	// minimalSPQR makes a Signal session run spqr.Minimal instead of full
	// SPQR. Set only by tests (export_spqr_test.go), to measure full SPQR
	// against the minimum libsignal accepts.
	minimalSPQR bool
}

// stateSuites is the one table of the suite identifiers a serialized state
// records (its suite byte). The identifiers are part of the state format:
// never renumber them.
var stateSuites = [...]struct {
	id    byte
	suite aead.Suite
}{
	{1, aead.AES256GCM()},
	{2, aead.ChaCha20Poly1305()},
}

// suiteByID returns the suite recorded as id, or nil.
func suiteByID(id byte) aead.Suite {
	for _, e := range stateSuites {
		if e.id == id {
			return e.suite
		}
	}
	return nil
}

// Validate reports whether c is a configuration NewInitiator and
// NewResponder accept: limits no higher than MaxLimit and a suite the state
// can record. A nil *Config is valid.
func (c *Config) Validate() error {
	return c.apply(new(Session))
}

func (c *Config) apply(s *Session) error {
	var cfg Config
	if c != nil {
		cfg = *c
	}
	var err error
	if s.maxSkip, err = limit(cfg.MaxSkip, DefaultMaxSkip); err != nil {
		return errors.New("ratchet: Config.MaxSkip above MaxLimit")
	}
	if s.maxKeys, err = limit(cfg.MaxSkippedKeys, DefaultMaxSkippedKeys); err != nil {
		return errors.New("ratchet: Config.MaxSkippedKeys above MaxLimit")
	}
	if cfg.Suite == nil {
		cfg.Suite = aead.AES256GCM()
	}
	s.suite = nil
	for _, e := range stateSuites {
		if e.suite == cfg.Suite {
			s.suiteID, s.suite = e.id, e.suite
		}
	}
	if s.suite == nil {
		// Unreachable while stateSuites lists every suite package aead
		// hands out: the interface is sealed.
		return errors.New("ratchet: Config.Suite has no state identifier")
	}
	s.keySource = cfg.keySource
	return nil
}

func limit(v, def int) (uint32, error) {
	switch {
	case v == 0:
		return uint32(def), nil
	case v < 0:
		return 0, nil
	case v > MaxLimit:
		return 0, errors.New("over limit")
	}
	return uint32(v), nil
}

// Session phases, stored as the state blob's phase field.
const (
	// phaseResponder: DHs is the responder's prekey pair, RK = SK, no
	// DHr and no chains.
	phaseResponder = 0
	// phaseInitiator: DHr is the responder's prekey, a sending chain, no
	// receiving chain.
	phaseInitiator = 1
	// phaseEstablished: at least one message decrypted; both chains.
	phaseEstablished = 2
)

// Session is one party's Double Ratchet state. It is not safe for
// concurrent use, and must not be copied (copies would share the skipped
// keys): to duplicate a session, marshal it and parse the result. Methods
// on the zero Session panic: make one with NewInitiator, NewResponder,
// ParseSession or UnmarshalBinary.
//
// A Session's memory holds the secrets that protect past and future
// messages; see Clear.
type Session struct {
	maxSkip, maxKeys uint32
	suiteID          byte
	suite            aead.Suite
	keySource        hazmat.KeySource

	phase byte

	rk      [32]byte
	dhsPriv [32]byte // raw, clamped where used
	dhsPub  [32]byte
	dhr     [32]byte
	cks     [32]byte
	ckr     [32]byte
	ns      uint32
	nr      uint32
	pn      uint32

	// The associated data is in adInline when it fits, as X3DH's 66 bytes
	// do, else in adHeap. No field points into the Session itself, so a
	// state can be parsed into a stack value and then moved.
	adLen    int
	adInline [80]byte
	adHeap   []byte

	skipped skippedStore

	// proto is the protocol; a Signal session's own part of the state is
	// in sig (nil for profile v1, which uses dhr, ckr and nr instead of
	// its chains), so that a profile v1 Session stays as small as it was.
	proto Protocol
	sig   *signalState
}

// NewInitiator starts the session of the party that sends first (Alice in
// Signal's specification), from the shared secret sk and associated data ad
// that a key agreement such as X3DH produced, and the peer's ratchet public
// key (the responder's signed prekey in X3DH). It generates the session's
// first ratchet key pair, runs the first DH ratchet step, and can encrypt
// right away.
//
// The session copies sk and ad; the caller may wipe them afterwards.
func NewInitiator(sk, ad []byte, peerRatchetKey *keys.PublicKey, cfg *Config) (*Session, error) {
	s, err := newSession(sk, ad, cfg)
	if err != nil {
		return nil, err
	}
	if peerRatchetKey == nil {
		return nil, errors.New("ratchet: nil peer ratchet key")
	}
	copy(s.dhr[:], peerRatchetKey.Bytes())
	if err := s.startInitiator(&s.dhr, infoRK); err != nil {
		return nil, err
	}
	return s, nil
}

// startInitiator generates the session's first ratchet key pair and takes
// the first sending step against the peer's ratchet key, from the root
// key: the initiator's start in both protocols, which differ only in the
// root KDF's info. On error it clears the session.
func (s *Session) startInitiator(peer *[32]byte, info []byte) error {
	w := getWork()
	defer putWork(w)
	if err := s.newRatchetKey(w); err != nil {
		s.Clear()
		return err
	}
	s.dhsPriv, s.dhsPub = w.priv, w.pub
	h := kdf.Get()
	defer kdf.Put(h)
	var dh [32]byte
	if err := curve.DH(&dh, &s.dhsPriv, peer); err != nil {
		s.Clear()
		return errSmallOrder
	}
	rootStep(h, w, info, &s.rk, &dh, &s.rk, &s.cks)
	clear(dh[:])
	s.phase = phaseInitiator
	return nil
}

// NewResponder starts the session of the party that receives first (Bob),
// from the same sk and ad and the ratchet key pair whose public key the
// initiator used (Bob's signed prekey). It can decrypt right away and
// encrypt once it has decrypted a message.
//
// The session copies the private key; the caller keeps ownership of
// ratchetKey, which X3DH reuses across sessions.
func NewResponder(sk, ad []byte, ratchetKey *keys.PrivateKey, cfg *Config) (*Session, error) {
	s, err := newSession(sk, ad, cfg)
	if err != nil {
		return nil, err
	}
	if err := s.startResponder(ratchetKey); err != nil {
		return nil, err
	}
	return s, nil
}

// startResponder makes key (a copy of it) the session's ratchet key pair,
// the responder's start in both protocols: no chains until the first
// message.
func (s *Session) startResponder(key *keys.PrivateKey) error {
	if key == nil {
		return errors.New("ratchet: nil ratchet key")
	}
	copy(s.dhsPriv[:], key.Bytes())
	copy(s.dhsPub[:], key.PublicKey().Bytes())
	s.phase = phaseResponder
	return nil
}

func newSession(sk, ad []byte, cfg *Config) (*Session, error) {
	if len(sk) != SecretSize {
		return nil, fmt.Errorf("ratchet: shared secret is %d bytes, want %d", len(sk), SecretSize)
	}
	if len(ad) > MaxADSize {
		return nil, errors.New("ratchet: associated data longer than MaxADSize")
	}
	s := new(Session)
	if err := cfg.apply(s); err != nil {
		return nil, err
	}
	s.setAD(ad)
	copy(s.rk[:], sk)
	return s, nil
}

func (s *Session) setAD(ad []byte) {
	s.adLen = len(ad)
	if len(ad) <= len(s.adInline) {
		copy(s.adInline[:], ad)
	} else {
		s.adHeap = bytes.Clone(ad)
	}
}

// ad returns the associated data.
func (s *Session) ad() []byte {
	if s.adHeap != nil {
		return s.adHeap
	}
	return s.adInline[:s.adLen]
}

func (s *Session) check() {
	if s.suite == nil && s.sig == nil {
		panic("ratchet: use of an uninitialized or cleared Session")
	}
}

// RatchetKey returns the session's current ratchet public key, the one its
// next message will carry.
func (s *Session) RatchetKey() *keys.PublicKey {
	s.check()
	return storedKey(&s.dhsPub)
}

// storedKey returns the *keys.PublicKey of a key the session stores (its
// ratchet key, a Signal session's identity keys), which come from a
// *keys.PublicKey, the key generator or a validated state blob.
func storedKey(u *[32]byte) *keys.PublicKey {
	k, err := keys.NewPublicKey(u[:])
	if err != nil {
		panic("ratchet: internal error: invalid stored key")
	}
	return k
}

// HasReceived reports whether the session has decrypted a message. Until it
// has, the initiator cannot know that the responder holds the session, so
// the session layer keeps sending the key-agreement data along.
func (s *Session) HasReceived() bool {
	s.check()
	return s.phase == phaseEstablished
}

// KnowsRatchetKey reports whether the ratchet key in msg's header is the
// current receiving chain's or one under which skipped keys are stored (for
// a Signal session: one of its receiving chains'):
// whether Decrypt would take the message without a DH ratchet step.
// It derives no key. A message too short for a header gives false.
func (s *Session) KnowsRatchetKey(msg []byte) bool {
	s.check()
	if s.proto == Signal {
		return s.signalKnowsRatchetKey(msg)
	}
	if len(msg) < headerSize || msg[0] != typeRatchet || msg[1] != keys.KeyTypeDJB {
		return false
	}
	dh := (*[32]byte)(msg[2:34])
	return (s.phase != phaseResponder && *dh == s.dhr) || s.skipped.has(dh)
}

// AwaitsNewRatchetKey reports whether a message under a new ratchet key
// can come from a peer that follows the protocol: the session has sent
// a message under its current ratchet key, which the peer may have
// answered with a new one, or it is a responder that has not received
// its first message. A peer takes a new ratchet key only after
// receiving the current one, so when it returns false, a message whose
// ratchet key the session does not know (KnowsRatchetKey) is forged or
// replayed from an older state; a session layer that keeps several
// sessions per peer uses this to spare such a message the X25519 and the
// chain steps of a DH ratchet step in each of them.
func (s *Session) AwaitsNewRatchetKey() bool {
	s.check()
	return s.phase == phaseResponder || s.ns > 0
}

// Encrypt encrypts plaintext as the next message of the sending chain and
// returns header || ciphertext (for a Signal session, 0x44 || SignalMessage
// || tag; the session layer wraps it in a PreKeySignalMessage until
// HasReceived). It advances the sending chain; the message key is wiped
// after use.
func (s *Session) Encrypt(plaintext []byte) ([]byte, error) {
	return s.AppendEncrypt(make([]byte, 0, headerSize+len(plaintext)+aead.Overhead), plaintext)
}

// AppendEncrypt is Encrypt appending the message to dst. With enough spare
// capacity in dst it allocates nothing beyond what the cipher needs. dst's
// spare capacity must not overlap plaintext.
func (s *Session) AppendEncrypt(dst, plaintext []byte) ([]byte, error) {
	s.check()
	// Both protocols: no sending chain before the first message, and a
	// chain ends before its counter would reach 2^32−1.
	if s.phase == phaseResponder {
		return nil, ErrNoSendingChain
	}
	if s.ns >= maxCounter {
		return nil, ErrCounterOverflow
	}
	if s.proto == Signal {
		return s.signalEncrypt(dst, plaintext)
	}
	w := getWork()
	defer putWork(w)
	h := kdf.Get()
	defer kdf.Put(h)
	kdfCK(h, w, &s.cks, &w.mk)
	hdr := w.setHeader(s.ad(), &s.dhsPub, s.pn, s.ns)
	dst = slices.Grow(dst, headerSize+len(plaintext)+aead.Overhead)
	dst = append(dst, hdr...)
	dst = s.suite.Seal(dst, w.mk[:], plaintext, w.adh)
	s.ns++
	return dst, nil
}

// Decrypt authenticates and decrypts a message made by the peer's Encrypt.
// It advances the session only if the message authenticates: on any error
// the session is exactly as before the call (its MarshalBinary output is
// unchanged), so a forged or replayed message cannot disturb it.
//
// Errors: ErrMalformed (shorter than 58 bytes), ErrUnknownType (first byte
// not 0x01), an error wrapping keys.ErrInvalidPublicKey (the header's
// ratchet key does not decode) or keys.ErrSmallOrder (it has small order),
// ErrCounterOverflow (a counter of 2^32−1), ErrDuplicate, ErrTooManySkipped,
// ErrAuthentication, and, at a DH ratchet step, an error from crypto/rand.
// A Signal session takes a SignalMessage (unwrapped from a
// PreKeySignalMessage by the session layer) and reports ErrMalformed for
// anything that is not a strict one with an SPQR payload; its other errors
// are the same kinds.
func (s *Session) Decrypt(msg []byte) ([]byte, error) {
	return s.AppendDecrypt(nil, msg)
}

// AppendDecrypt is Decrypt appending the plaintext to dst. dst's spare
// capacity must not overlap msg. On error dst's spare capacity may have been
// overwritten (with zeros where plaintext was).
func (s *Session) AppendDecrypt(dst, msg []byte) ([]byte, error) {
	s.check()
	if s.proto == Signal {
		return s.signalDecrypt(dst, msg)
	}
	hdr, err := parseHeader(msg)
	if err != nil {
		return nil, err
	}
	ct := msg[headerSize:]
	w := getWork()
	defer putWork(w)
	w.setAD(s.ad(), msg[:headerSize])

	// TrySkippedMessageKeys.
	if i, c := s.skipped.find(&hdr.dh, hdr.n); i >= 0 {
		out, err := s.suite.Open(dst, s.skipped.key(i), ct, w.adh)
		if err != nil {
			return nil, ErrAuthentication
		}
		s.skipped.remove(i, c)
		return out, nil
	}

	h := kdf.Get()
	defer kdf.Put(h)
	if s.phase != phaseResponder && hdr.dh == s.dhr {
		return s.decryptCurrent(h, w, &hdr, dst, ct)
	}
	return s.decryptNewChain(h, w, &hdr, dst, ct)
}

// decryptCurrent handles a message on the current receiving chain.
func (s *Session) decryptCurrent(h *kdf.Hasher, w *work, hdr *header, dst, ct []byte) ([]byte, error) {
	if s.phase != phaseEstablished {
		// The initiator's DHr is the responder's prekey, which the
		// responder never sends from: no chain exists for this key.
		return nil, ErrAuthentication
	}
	if hdr.n < s.nr {
		return nil, ErrDuplicate
	}
	if uint64(s.nr)+uint64(s.maxSkip) < uint64(hdr.n) {
		return nil, ErrTooManySkipped
	}
	ck := s.ckr
	for range hdr.n - s.nr {
		chainStep(h, w, &ck)
	}
	kdfCK(h, w, &ck, &w.mk)
	out, err := s.suite.Open(dst, w.mk[:], ct, w.adh)
	if err != nil {
		clear(ck[:])
		return nil, ErrAuthentication
	}
	s.skipMessageKeys(h, w, hdr.n)
	s.ckr = ck
	s.nr = hdr.n + 1
	clear(ck[:])
	return out, nil
}

// decryptNewChain handles a message under a ratchet key other than DHr: the
// DH ratchet step of the specification. The receiving half of the step is
// computed first and the message authenticated with it; only then are the
// new ratchet key pair and sending chain made and everything committed, so
// a forgery costs one X25519 and no key generation.
func (s *Session) decryptNewChain(h *kdf.Hasher, w *work, hdr *header, dst, ct []byte) ([]byte, error) {
	if uint64(s.nr)+uint64(s.maxSkip) < uint64(hdr.pn) {
		return nil, ErrTooManySkipped
	}
	if uint64(s.maxSkip) < uint64(hdr.n) {
		return nil, ErrTooManySkipped
	}
	var dh, rk, ck0, ck [32]byte
	defer func() {
		clear(dh[:])
		clear(rk[:])
		clear(ck0[:])
		clear(ck[:])
	}()
	if err := curve.DH(&dh, &s.dhsPriv, &hdr.dh); err != nil {
		return nil, errSmallOrder
	}
	kdfRK(h, w, &s.rk, &dh, &rk, &ck0)
	ck = ck0
	for range hdr.n {
		chainStep(h, w, &ck)
	}
	kdfCK(h, w, &ck, &w.mk)
	out, err := s.suite.Open(dst, w.mk[:], ct, w.adh)
	if err != nil {
		return nil, ErrAuthentication
	}
	// The message is authentic. Make the sending half before changing
	// anything: generating a key pair can fail.
	fail := func(err error) ([]byte, error) {
		clear(out[len(dst):])
		return nil, err
	}
	if err := s.newRatchetKey(w); err != nil {
		return fail(err)
	}
	if err := curve.DH(&dh, &w.priv, &hdr.dh); err != nil {
		// Unreachable: a clamped scalar gives zero only for a small-order
		// point, which the first agreement already ruled out.
		return fail(errSmallOrder)
	}
	if s.phase == phaseEstablished {
		s.skipMessageKeys(h, w, hdr.pn)
	}
	s.pn = s.ns
	s.ns = 0
	s.dhr = hdr.dh
	s.storeSkipped(h, w, &s.dhr, &ck0, 0, hdr.n)
	s.ckr = ck
	s.nr = hdr.n + 1
	kdfRK(h, w, &rk, &dh, &s.rk, &s.cks)
	s.dhsPriv, s.dhsPub = w.priv, w.pub
	s.phase = phaseEstablished
	return out, nil
}

// skipMessageKeys stores the keys of the current receiving chain from Nr up
// to until and advances the chain there. The caller has checked MaxSkip.
func (s *Session) skipMessageKeys(h *kdf.Hasher, w *work, until uint32) {
	if s.nr >= until {
		return
	}
	s.storeSkipped(h, w, &s.dhr, &s.ckr, s.nr, until)
	s.nr = until
}

// storeSkipped derives the message keys from..until-1 of the chain whose
// key at position from is *ck, stores them under pub, and leaves *ck at
// position until.
func (s *Session) storeSkipped(h *kdf.Hasher, w *work, pub, ck *[32]byte, from, until uint32) {
	if from >= until {
		return
	}
	dedup := s.skipped.has(pub)
	for n := from; n < until; n++ {
		kdfCK(h, w, ck, &w.mk)
		s.skipped.add(pub, n, &w.mk, int(s.maxKeys), dedup)
	}
	clear(w.mk[:])
}

// newRatchetKey sets w.priv and w.pub to a fresh ratchet key pair.
func (s *Session) newRatchetKey(w *work) error {
	if s.keySource != nil {
		k, err := s.keySource()
		if err != nil {
			return fmt.Errorf("ratchet: key source: %w", err)
		}
		copy(w.priv[:], k.Bytes())
		copy(w.pub[:], k.PublicKey().Bytes())
		return nil
	}
	if _, err := rand.Read(w.priv[:]); err != nil {
		return fmt.Errorf("ratchet: generating a ratchet key: %w", err)
	}
	curve.PublicKey(&w.pub, &w.priv)
	return nil
}

// Clear wipes the session's secrets and makes it unusable. It is best
// effort: Go gives no control over copies the runtime made earlier (stack
// growth, the garbage collector), and MarshalBinary output is the caller's
// to wipe.
func (s *Session) Clear() {
	clear(s.rk[:])
	clear(s.dhsPriv[:])
	clear(s.cks[:])
	clear(s.ckr[:])
	s.skipped.clear()
	s.suite = nil
	if s.sig != nil {
		s.sig.clear()
		s.sig = nil
	}
}

// String returns a fixed text: a session's fields are secret.
func (s Session) String() string { return "ratchet.Session(REDACTED)" }

// GoString is String, for %#v.
func (s Session) GoString() string { return s.String() }

// Format writes String for every verb, so no fmt verb prints key material,
// whether given a Session or a *Session.
func (s Session) Format(f fmt.State, _ rune) { fmt.Fprint(f, "ratchet.Session(REDACTED)") }

// work is the per-call scratch space. Everything handed to an interface
// method (the AEAD's key and associated data, the SHA-256 state snapshots
// inside a kdf.Key) must live on the heap or it escapes, costing an
// allocation per call; pooling keeps it allocation-free.
type work struct {
	k    kdf.Key
	mk   [32]byte
	priv [32]byte
	pub  [32]byte
	adh  []byte // ad || header
	pq   []byte // a Signal message's SPQR payload
}

var workPool = sync.Pool{New: func() any { return new(work) }}

func getWork() *work { return workPool.Get().(*work) }

func putWork(w *work) {
	w.k.Clear()
	clear(w.mk[:])
	clear(w.priv[:])
	workPool.Put(w)
}

// setAD sets w.adh to ad || header.
func (w *work) setAD(ad, header []byte) {
	w.adh = append(append(w.adh[:0], ad...), header...)
}

// setHeader sets w.adh to ad || header for an outgoing message and returns
// the header.
func (w *work) setHeader(ad []byte, pub *[32]byte, pn, n uint32) []byte {
	w.adh = append(w.adh[:0], ad...)
	w.adh = appendHeader(w.adh, pub, pn, n)
	return w.adh[len(ad):]
}

var infoRK = []byte("ratchetkit_Ratchet_v1")

// kdfRK sets newRK, ck = HKDF(rk, dh, "ratchetkit_Ratchet_v1", 64). newRK
// may alias rk.
func kdfRK(h *kdf.Hasher, w *work, rk, dh, newRK, ck *[32]byte) {
	rootStep(h, w, infoRK, rk, dh, newRK, ck)
}

// rootStep is the root KDF of both protocols, which differ only in the
// info string: newRK, ck = HKDF-SHA256(salt rk, dh, info, 64). newRK may
// alias rk.
func rootStep(h *kdf.Hasher, w *work, info []byte, rk, dh, newRK, ck *[32]byte) {
	var out [64]byte
	h.SetKey(&w.k, rk[:])
	h.HKDF(out[:], &w.k, dh[:], info)
	copy(newRK[:], out[:32])
	copy(ck[:], out[32:])
	clear(out[:])
}

// kdfCK sets mk = HMAC(ck, 0x01) and advances ck to HMAC(ck, 0x02).
func kdfCK(h *kdf.Hasher, w *work, ck, mk *[32]byte) {
	h.SetKey(&w.k, ck[:])
	h.MACByte(mk, &w.k, 0x01)
	h.MACByte(ck, &w.k, 0x02)
}

// chainStep advances ck without deriving its message key.
func chainStep(h *kdf.Hasher, w *work, ck *[32]byte) {
	h.SetKey(&w.k, ck[:])
	h.MACByte(ck, &w.k, 0x02)
}
