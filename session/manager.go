package session

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"sync"
	"time"

	"github.com/ratchetkit/ratchetkit/internal/hazmat"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/store"
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
)

// maxAttempts bounds the retries of an operation whose record another
// writer changed between its read and its write.
const maxAttempts = 8

// Config holds a Manager's settings. The zero Config (or nil) gives the
// defaults; both peers must agree on Info and on Ratchet.Suite.
type Config struct {
	// Info is the X3DH info string (see x3dh.Config); empty means
	// x3dh.DefaultInfo.
	Info []byte
	// Ratchet sets the limits and cipher suite of new sessions. A session
	// keeps the settings it was made with.
	Ratchet ratchet.Config
	// MaxArchived is how many sessions per address are kept besides the
	// current one; the oldest-created go first. Zero means
	// DefaultMaxArchived (40, the most), negative means none.
	MaxArchived int
	// Trust is the identity trust policy; the zero value is
	// TrustOnFirstUse.
	Trust TrustPolicy

	// OneTimePreKeys is how many one-time prekeys Upkeep keeps in stock
	// when it refills; zero means DefaultOneTimePreKeys.
	OneTimePreKeys int
	// MinOneTimePreKeys is the stock below which Upkeep refills and
	// PreKeyStatus reports Low; zero means DefaultMinOneTimePreKeys.
	MinOneTimePreKeys int
	// SignedPreKeyRotation is the age at which Upkeep replaces the signed
	// prekey; zero means DefaultSignedPreKeyRotation.
	SignedPreKeyRotation time.Duration
	// SignedPreKeyGrace is how long a replaced signed prekey is kept, so
	// that peers holding a bundle with it can still start sessions;
	// zero means DefaultSignedPreKeyGrace.
	SignedPreKeyGrace time.Duration
	// Now is the clock for signed prekeys; nil means time.Now.
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

// Manager is what an application talks to its peers through. It keeps
// every session, identity and prekey in a store.Store and saves each
// change in one transaction, so that a crash loses nothing that was
// acknowledged: a message Encrypt returned, or a plaintext Decrypt
// returned, has its state saved.
//
// A Manager is safe for concurrent use. Calls for one address run one at
// a time, in the order they get the address's lock; calls for different
// addresses run in parallel, each doing its cryptography outside the
// store's write transaction and then writing in one short transaction.
// Several Managers (or processes) may share a store: a write that finds
// the record changed since it was read is redone from the new state.
type Manager struct {
	st          store.Store
	x3dhCfg     x3dh.Config
	ratchetCfg  ratchet.Config
	maxArchived int
	trust       TrustPolicy
	otpTarget   int
	otpMin      int
	rotation    time.Duration
	grace       time.Duration
	now         func() time.Time
	keySource   hazmat.KeySource

	locks addrLocks
	// upkeep serializes the prekey operations of this Manager.
	upkeep sync.Mutex
}

// New returns a Manager over st. It does no I/O: call Init before
// anything else on a new store.
func New(st store.Store, cfg *Config) (*Manager, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if st == nil {
		return nil, errors.New("session: nil store")
	}
	m := &Manager{
		st:          st,
		x3dhCfg:     x3dh.Config{Info: bytes.Clone(c.Info)},
		ratchetCfg:  c.Ratchet,
		maxArchived: c.MaxArchived,
		trust:       c.Trust,
		otpTarget:   c.OneTimePreKeys,
		otpMin:      c.MinOneTimePreKeys,
		rotation:    c.SignedPreKeyRotation,
		grace:       c.SignedPreKeyGrace,
		now:         c.Now,
		keySource:   c.keySource,
	}
	switch {
	case m.maxArchived == 0:
		m.maxArchived = DefaultMaxArchived
	case m.maxArchived < 0:
		m.maxArchived = 0
	case m.maxArchived > DefaultMaxArchived:
		return nil, fmt.Errorf("session: Config.MaxArchived above %d", DefaultMaxArchived)
	}
	if m.trust != TrustOnFirstUse && m.trust != TrustExplicit {
		return nil, errors.New("session: unknown Config.Trust")
	}
	if m.otpTarget == 0 {
		m.otpTarget = DefaultOneTimePreKeys
	}
	if m.otpMin == 0 {
		m.otpMin = DefaultMinOneTimePreKeys
	}
	if m.otpTarget < 0 || m.otpMin < 0 || m.otpMin > m.otpTarget {
		return nil, errors.New("session: Config.MinOneTimePreKeys must be between 0 and OneTimePreKeys")
	}
	if m.rotation == 0 {
		m.rotation = DefaultSignedPreKeyRotation
	}
	if m.grace == 0 {
		m.grace = DefaultSignedPreKeyGrace
	}
	if m.rotation < 0 || m.grace < 0 {
		return nil, errors.New("session: negative signed prekey period")
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.keySource != nil {
		hazmat.SetX3DHKeySource(&m.x3dhCfg, m.keySource)
		hazmat.SetRatchetKeySource(&m.ratchetCfg, m.keySource)
	}
	// Catch a bad ratchet.Config now rather than at the first session.
	if err := m.ratchetCfg.Validate(); err != nil {
		return nil, fmt.Errorf("session: Config.Ratchet: %w", err)
	}
	return m, nil
}

// Init makes sure the store holds this device's identity: on first use it
// generates an identity key pair and saves it with deviceID; afterwards
// it checks that the stored device id is deviceID.
func (m *Manager) Init(ctx context.Context, deviceID uint32) error {
	return m.st.Update(ctx, func(tx store.Tx) error {
		id, err := tx.Local().Load(ctx)
		switch {
		case err == nil:
			id.KeyPair.Clear()
			if id.DeviceID != deviceID {
				return fmt.Errorf("session: the store belongs to device %d, not %d", id.DeviceID, deviceID)
			}
			return nil
		case !errors.Is(err, store.ErrNotFound):
			return storeError("loading the local identity", err)
		}
		ik, err := keys.GenerateIdentityKeyPair()
		if err != nil {
			return err
		}
		defer ik.Clear()
		if err := tx.Local().Save(ctx, &store.LocalIdentity{KeyPair: ik, DeviceID: deviceID}); err != nil {
			return storeError("saving the local identity", err)
		}
		return nil
	})
}

// LocalIdentity returns this device's identity key and device id. Before
// Init, the error wraps store.ErrNotFound.
func (m *Manager) LocalIdentity(ctx context.Context) (*keys.PublicKey, uint32, error) {
	var pub *keys.PublicKey
	var dev uint32
	err := m.st.View(ctx, func(tx store.Tx) error {
		id, err := loadLocal(ctx, tx)
		if err != nil {
			return err
		}
		pub, dev = id.KeyPair.PublicKey(), id.DeviceID
		id.KeyPair.Clear()
		return nil
	})
	return pub, dev, err
}

func loadLocal(ctx context.Context, tx store.Tx) (*store.LocalIdentity, error) {
	id, err := tx.Local().Load(ctx)
	if err != nil {
		return nil, storeError("loading the local identity (call Init first)", err)
	}
	return id, nil
}

// op is one operation on an address: its inputs, the state it read, and
// the record it will write. Ops are pooled, and the functions handed to
// the store are bound once per op, so that a steady-state message
// allocates no closures.
type op struct {
	m    *Manager
	ctx  context.Context
	addr store.Address
	kind byte // opEncrypt, opDecrypt, opStart

	// Inputs.
	pm     message      // the parsed message (decrypt)
	text   []byte       // the plaintext (encrypt)
	dst    []byte       // where the output is appended
	bundle *x3dh.Bundle // the peer's bundle (start)

	// What one attempt read and made.
	rec   record
	orig  []byte // the stored record as read; owned, wiped after use
	found bool   // whether a record was stored
	out   []byte // the record to write

	trusted    [encodedKeySize]byte // Encode(trusted identity key)
	hasTrusted bool
	// peer is the identity key of the session the operation used or made;
	// recorded in the commit when no key was trusted (first use).
	peer [encodedKeySize]byte

	use   int     // decrypt: the session a prekey message belongs to, or -1
	pre   preKeys // decrypt: the keys a new responder session needs
	local *store.LocalIdentity

	consume bool // remove one-time prekey opkID in the commit
	opkID   uint32

	viewFn, commitFn func(store.Tx) error
}

const (
	opEncrypt = iota + 1
	opDecrypt
	opStart
)

var opPool = sync.Pool{New: func() any {
	o := new(op)
	o.viewFn, o.commitFn = o.view, o.commitTx
	return o
}}

func (m *Manager) getOp(ctx context.Context, addr store.Address, kind byte) *op {
	o := opPool.Get().(*op)
	o.m, o.ctx, o.addr, o.kind = m, ctx, addr, kind
	o.use = -1
	return o
}

// reset forgets what an attempt read, wiping its secrets.
func (o *op) reset() {
	o.rec.wipe()
	clear(o.orig)
	o.orig = nil
	clear(o.out)
	o.out = o.out[:0]
	o.found, o.hasTrusted, o.consume = false, false, false
	o.use = -1
	o.pre.wipe()
	o.pre = preKeys{}
	if o.local != nil {
		o.local.KeyPair.Clear()
		o.local = nil
	}
}

func (o *op) put() {
	o.reset()
	o.m, o.ctx, o.pm, o.text, o.dst, o.bundle = nil, nil, message{}, nil, nil, nil
	opPool.Put(o)
}

// run runs step under o.addr's lock, again while it returns errRetry.
func (m *Manager) run(o *op, step func(*op) ([]byte, error)) ([]byte, error) {
	l, err := m.locks.lock(o.ctx, o.addr)
	if err != nil {
		return nil, err
	}
	defer m.locks.unlock(o.addr, l)
	for attempt := range maxAttempts {
		out, err := step(o)
		if err != errRetry {
			return out, err
		}
		o.reset()
		if err := backoff(o.ctx, attempt); err != nil {
			return nil, err
		}
	}
	return nil, ErrConflict
}

// backoff waits a random time that grows with the attempt, so that
// writers competing for one record (several processes on one store) stop
// colliding: up to 50 µs after the first conflict, doubling, at most
// 6.4 ms.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(mathrand.Int64N(int64(50*time.Microsecond) << min(attempt, 7)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// view reads what the operation needs in one read-only transaction.
func (o *op) view(tx store.Tx) error {
	if err := o.load(tx); err != nil {
		return err
	}
	switch o.kind {
	case opStart:
		var err error
		o.local, err = loadLocal(o.ctx, tx)
		return err
	case opDecrypt:
		return o.viewDecrypt(tx)
	}
	return nil
}

// load reads the address's record and trusted identity key.
func (o *op) load(tx store.Tx) error {
	rec, err := tx.Sessions().Load(o.ctx, o.addr)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return storeError("loading the session record", err)
	default:
		o.orig, o.found = rec, true
		if err := o.rec.parse(rec); err != nil {
			return err
		}
		if src := o.m.keySource; src != nil {
			for i := range o.rec.n {
				hazmat.SetRatchetKeySource(o.rec.entries[i].sess, src)
			}
		}
	}
	k, err := tx.Identities().Load(o.ctx, o.addr)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return storeError("loading the identity key", err)
	default:
		k.AppendEncode(o.trusted[:0])
		o.hasTrusted = true
	}
	return nil
}

// checkIdentity applies the trust policy to the identity key whose
// encoding is key.
func (o *op) checkIdentity(key []byte) error {
	if o.hasTrusted {
		if string(o.trusted[:]) == string(key) {
			return nil
		}
		return &IdentityError{Address: o.addr, Trusted: decodeKey(o.trusted[:]), Received: decodeKey(key)}
	}
	if o.m.trust == TrustExplicit {
		return &IdentityError{Address: o.addr, Received: decodeKey(key)}
	}
	return nil
}

// commit writes the record in one transaction, with the prekey
// consumption and first-use identity the operation needs. It returns
// errRetry if the stored record is no longer the one the operation read.
func (o *op) commit() error {
	var err error
	if o.out, err = o.rec.appendBinary(o.out[:0]); err != nil {
		return err
	}
	return o.m.st.Update(o.ctx, o.commitFn)
}

func (o *op) commitTx(tx store.Tx) error {
	ctx := o.ctx
	cur, err := tx.Sessions().Load(ctx, o.addr)
	switch {
	case err == nil:
		same := o.found && bytes.Equal(cur, o.orig)
		clear(cur)
		if !same {
			return errRetry
		}
	case errors.Is(err, store.ErrNotFound):
		if o.found {
			return errRetry
		}
	default:
		return storeError("loading the session record", err)
	}
	if o.consume {
		if err := tx.PreKeys().Remove(ctx, o.opkID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return errNoOPKCommit
			}
			return storeError("removing the one-time prekey", err)
		}
	}
	if !o.hasTrusted {
		changed, err := tx.Identities().Save(ctx, o.addr, decodeKey(o.peer[:]))
		if err != nil {
			return storeError("saving the identity key", err)
		}
		if changed {
			// Another writer trusted a different key meanwhile; the
			// retry sees it and refuses.
			return errRetry
		}
	}
	if err := tx.Sessions().Save(ctx, o.addr, o.out); err != nil {
		return storeError("saving the session record", err)
	}
	return nil
}

// StartSession runs X3DH with the peer's bundle and makes the resulting
// session the current one for addr; older sessions are archived. Until
// the peer answers, Encrypt sends prekey messages, from which the peer
// can start its side of the session.
//
// The bundle's identity key is checked first, against the key trusted
// for addr: a different one is an *IdentityError (reported only for a
// bundle that passes x3dh.Bundle.Verify, so that nobody is asked to
// approve a forged key). Then x3dh.Initiate checks the bundle:
// x3dh.ErrMalformed, x3dh.ErrSmallOrder, x3dh.ErrInvalidSignature. On
// success the session and, on first use, the peer's identity key are
// saved in one transaction; on any error nothing is.
func (m *Manager) StartSession(ctx context.Context, addr store.Address, b *x3dh.Bundle) error {
	if b == nil || b.IdentityKey == nil {
		return fmt.Errorf("%w: bundle without an identity key", x3dh.ErrMalformed)
	}
	o := m.getOp(ctx, addr, opStart)
	defer o.put()
	o.bundle = b
	_, err := m.run(o, (*op).start)
	return err
}

func (o *op) start() ([]byte, error) {
	if err := o.m.st.View(o.ctx, o.viewFn); err != nil {
		return nil, err
	}
	b := o.bundle
	var e entry
	b.IdentityKey.AppendEncode(e.peer[:0])
	if err := o.checkIdentity(e.peer[:]); err != nil {
		if verr := b.Verify(); verr != nil {
			return nil, verr
		}
		return nil, err
	}
	in, err := x3dh.Initiate(o.local.KeyPair, b, &o.m.x3dhCfg)
	if err != nil {
		return nil, err
	}
	defer in.Clear()
	e.role = roleInitiator
	h, err := in.Header.AppendBinary(e.hdr[:0])
	if err != nil {
		return nil, err
	}
	e.hdrLen = len(h)
	if e.sess, err = ratchet.NewInitiator(in.SK[:], in.AD[:], b.SignedPreKey, &o.m.ratchetCfg); err != nil {
		return nil, err
	}
	o.rec.add(&e, o.m.maxArchived)
	o.peer = e.peer
	return nil, o.commit()
}

// Encrypt encrypts plaintext for addr with the current session: a prekey
// message while the session is one this device started and the peer has
// not answered yet, a ratchet message otherwise (PROTOCOL.md section 7).
// The advanced session is saved before Encrypt returns, so a message key
// is never used twice, even across a crash.
//
// Errors: ErrNoSession, an *IdentityError (the session's peer key is no
// longer the trusted one), ratchet.ErrCounterOverflow, ErrConflict, a
// context or store error. On error nothing is saved.
func (m *Manager) Encrypt(ctx context.Context, addr store.Address, plaintext []byte) ([]byte, error) {
	return m.AppendEncrypt(ctx, nil, addr, plaintext)
}

// AppendEncrypt is Encrypt appending the message to dst. dst's spare
// capacity must not overlap plaintext.
func (m *Manager) AppendEncrypt(ctx context.Context, dst []byte, addr store.Address, plaintext []byte) ([]byte, error) {
	o := m.getOp(ctx, addr, opEncrypt)
	defer o.put()
	o.dst, o.text = dst, plaintext
	return m.run(o, (*op).encrypt)
}

func (o *op) encrypt() ([]byte, error) {
	if err := o.m.st.View(o.ctx, o.viewFn); err != nil {
		return nil, err
	}
	if !o.found {
		return nil, ErrNoSession
	}
	e := &o.rec.entries[o.rec.current]
	if err := o.checkIdentity(e.peer[:]); err != nil {
		return nil, err
	}
	out := o.dst
	if e.role == roleInitiator && !e.sess.HasReceived() {
		out = append(out, typePreKey)
		out = append(out, e.header()...)
	}
	out, err := e.sess.AppendEncrypt(out, o.text)
	if err != nil {
		return nil, err
	}
	o.peer = e.peer
	if err := o.commit(); err != nil {
		return nil, err
	}
	return out, nil
}

// Decrypt decrypts a message from addr, following PROTOCOL.md section 7.
//
// A prekey message whose EK_A belongs to a session this device already
// has is decrypted by that session (its other outer fields must match:
// else ErrMalformed). Otherwise it starts a new session: the sender's
// identity key is checked (an *IdentityError), the prekeys it names are
// looked up (ErrUnknownPreKey), X3DH and the ratchet run, and only if the
// message decrypts are the session saved as the current one, the
// one-time prekey removed and, on first use, the identity key recorded,
// all in one transaction. A ratchet message is tried on the current
// session, then on the archived ones, newest first; the one that
// decrypts it becomes current. If none does, the error is the current
// session's.
//
// Errors, in the order they are checked: ErrMalformed, ErrUnknownType,
// keys.ErrInvalidPublicKey (a key in the message does not decode),
// ratchet.ErrCounterOverflow; then ErrNoSession, ErrUntrustedIdentity
// (an *IdentityError), ErrUnknownPreKey, keys.ErrSmallOrder (X3DH or a
// ratchet step); then the ratchet's ratchet.ErrDuplicate (drop the
// message quietly), ratchet.ErrTooManySkipped, ratchet.ErrAuthentication;
// and ErrConflict or a context or store error. Decrypt saves nothing
// unless it succeeds, and nothing is returned that was not saved.
func (m *Manager) Decrypt(ctx context.Context, addr store.Address, msg []byte) ([]byte, error) {
	return m.AppendDecrypt(ctx, nil, addr, msg)
}

// AppendDecrypt is Decrypt appending the plaintext to dst. dst's spare
// capacity must not overlap msg. On error dst's spare capacity may have
// been overwritten.
func (m *Manager) AppendDecrypt(ctx context.Context, dst []byte, addr store.Address, msg []byte) ([]byte, error) {
	pm, err := parseMessage(msg)
	if err != nil {
		return nil, err
	}
	o := m.getOp(ctx, addr, opDecrypt)
	defer o.put()
	o.dst, o.pm = dst, pm
	return m.run(o, (*op).decrypt)
}

// preKeys are the keys a new responder session needs.
type preKeys struct {
	local *store.LocalIdentity
	spk   *keys.SignedPreKey
	opk   *keys.OneTimePreKey
}

func (p *preKeys) wipe() {
	if p.local != nil {
		p.local.KeyPair.Clear()
	}
	if p.spk != nil {
		p.spk.PrivateKey().Clear()
	}
	if p.opk != nil {
		p.opk.PrivateKey().Clear()
	}
}

// viewDecrypt decides, after the record is loaded, which session a
// message goes to, and loads the prekeys for a new one.
func (o *op) viewDecrypt(tx store.Tx) error {
	pm := &o.pm
	if pm.kind == typeRatchet {
		if !o.found {
			return ErrNoSession
		}
		return nil
	}
	if o.use = o.rec.findBaseKey(pm.x3dh[hdrEK : hdrEK+encodedKeySize]); o.use >= 0 {
		if string(o.rec.entries[o.use].header()) != string(pm.x3dh) {
			return errFields
		}
		return nil
	}
	if err := o.checkIdentity(pm.x3dh[hdrIK : hdrIK+encodedKeySize]); err != nil {
		return err
	}
	return loadPreKeys(o.ctx, tx, pm.x3dh, &o.pre)
}

func (o *op) decrypt() ([]byte, error) {
	if err := o.m.st.View(o.ctx, o.viewFn); err != nil {
		return nil, err
	}
	var out []byte
	var err error
	switch {
	case o.pm.kind == typeRatchet:
		out, err = o.tryAll(o.pm.inner)
	case o.use >= 0:
		e := &o.rec.entries[o.use]
		if err = o.checkIdentity(e.peer[:]); err == nil {
			if out, err = e.sess.AppendDecrypt(o.dst, o.pm.inner); err == nil {
				o.rec.current = o.use
			}
		}
	default:
		out, err = o.respond()
	}
	if err != nil {
		return nil, err
	}
	o.peer = o.rec.entries[o.rec.current].peer
	if err := o.commit(); err != nil {
		clear(out[len(o.dst):])
		return nil, err
	}
	return out, nil
}

func loadPreKeys(ctx context.Context, tx store.Tx, hdr []byte, pre *preKeys) error {
	var err error
	pre.spk, err = tx.SignedPreKeys().Load(ctx, binary.BigEndian.Uint32(hdr[hdrSPK:]))
	if errors.Is(err, store.ErrNotFound) {
		return errNoSPK
	} else if err != nil {
		return storeError("loading the signed prekey", err)
	}
	if hdr[0]&flagOneTimePreKey != 0 {
		pre.opk, err = tx.PreKeys().Load(ctx, binary.BigEndian.Uint32(hdr[hdrOPK:]))
		if errors.Is(err, store.ErrNotFound) {
			return errNoOPK
		} else if err != nil {
			return storeError("loading the one-time prekey", err)
		}
	}
	pre.local, err = loadLocal(ctx, tx)
	return err
}

// tryAll decrypts a ratchet message with the current session, then with
// the others, newest first, and makes the one that succeeds current.
// Sessions whose peer key is not trusted are not tried.
func (o *op) tryAll(msg []byte) ([]byte, error) {
	r := &o.rec
	var first error
	for k := -1; k < r.n; k++ {
		i := k
		if k < 0 {
			i = r.current
		} else if k == r.current {
			continue
		}
		e := &r.entries[i]
		err := o.checkIdentity(e.peer[:])
		if err == nil {
			var out []byte
			if out, err = e.sess.AppendDecrypt(o.dst, msg); err == nil {
				r.current = i
				return out, nil
			}
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// respond starts a responder session from a prekey message and decrypts
// its ratchet message.
func (o *op) respond() ([]byte, error) {
	pm, pre := &o.pm, &o.pre
	h, _, err := x3dh.ParseHeader(pm.x3dh)
	if err != nil {
		return nil, err // unreachable: parseMessage checked the header
	}
	resp, err := x3dh.Respond(pre.local.KeyPair, pre.spk, pre.opk, h, &o.m.x3dhCfg)
	if err != nil {
		return nil, err
	}
	defer resp.Clear()
	sess, err := ratchet.NewResponder(resp.SK[:], resp.AD[:], pre.spk.PrivateKey(), &o.m.ratchetCfg)
	if err != nil {
		return nil, err
	}
	out, err := sess.AppendDecrypt(o.dst, pm.inner)
	if err != nil {
		sess.Clear()
		return nil, err
	}
	e := entry{role: roleResponder, sess: sess, hdrLen: len(pm.x3dh)}
	copy(e.peer[:], pm.x3dh[hdrIK:])
	copy(e.hdr[:], pm.x3dh)
	o.rec.add(&e, o.m.maxArchived)
	if pre.opk != nil {
		o.consume, o.opkID = true, pre.opk.ID()
	}
	return out, nil
}

// withLock runs f under addr's lock.
func (m *Manager) withLock(ctx context.Context, addr store.Address, f func() error) error {
	l, err := m.locks.lock(ctx, addr)
	if err != nil {
		return err
	}
	defer m.locks.unlock(addr, l)
	return f()
}

// HasSession reports whether a session with addr is stored.
func (m *Manager) HasSession(ctx context.Context, addr store.Address) (bool, error) {
	var ok bool
	err := m.st.View(ctx, func(tx store.Tx) error {
		rec, err := tx.Sessions().Load(ctx, addr)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil
		case err != nil:
			return storeError("loading the session record", err)
		}
		clear(rec)
		ok = true
		return nil
	})
	return ok, err
}

// DeleteSession deletes every session with addr, current and archived.
// The address's trusted identity key stays. Deleting what does not exist
// is not an error.
func (m *Manager) DeleteSession(ctx context.Context, addr store.Address) error {
	return m.withLock(ctx, addr, func() error {
		return m.st.Update(ctx, func(tx store.Tx) error {
			err := tx.Sessions().Delete(ctx, addr)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return storeError("deleting the session record", err)
			}
			return nil
		})
	})
}

// Devices returns the device ids of name that this device has sessions
// with, in increasing order: the addresses a message to that user goes to.
func (m *Manager) Devices(ctx context.Context, name string) ([]uint32, error) {
	var devs []uint32
	err := m.st.View(ctx, func(tx store.Tx) error {
		var err error
		if devs, err = tx.Sessions().Devices(ctx, name); err != nil {
			return storeError("listing devices", err)
		}
		return nil
	})
	return devs, err
}

// Identity returns the identity key trusted for addr; the error wraps
// store.ErrNotFound if there is none.
func (m *Manager) Identity(ctx context.Context, addr store.Address) (*keys.PublicKey, error) {
	var k *keys.PublicKey
	err := m.st.View(ctx, func(tx store.Tx) error {
		var err error
		if k, err = tx.Identities().Load(ctx, addr); err != nil {
			return storeError("loading the identity key", err)
		}
		return nil
	})
	return k, err
}

// ApproveIdentity records key as the trusted identity key of addr,
// replacing any other: the application's answer to an *IdentityError,
// once the user has accepted the new key (ideally after comparing safety
// numbers). Sessions made with another key stay stored but are not used
// while that key is not the trusted one.
func (m *Manager) ApproveIdentity(ctx context.Context, addr store.Address, key *keys.PublicKey) error {
	if key == nil {
		return errors.New("session: nil identity key")
	}
	return m.withLock(ctx, addr, func() error {
		return m.st.Update(ctx, func(tx store.Tx) error {
			if _, err := tx.Identities().Save(ctx, addr, key); err != nil {
				return storeError("saving the identity key", err)
			}
			return nil
		})
	})
}
