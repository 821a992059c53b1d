package ratchet

import (
	"errors"
	"fmt"
	"slices"

	"github.com/ratchetkit/ratchetkit/internal/curve"
	"github.com/ratchetkit/ratchetkit/internal/kdf"
	"github.com/ratchetkit/ratchetkit/internal/signalsuite"
	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/internal/spqr"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/pqxdh"
)

// Protocol is the protocol a Session speaks, fixed when it starts.
type Protocol byte

const (
	// ProfileV1 is ratchetkit's wire profile v1 (PROTOCOL.md): X3DH's
	// secret, AES-256-GCM (or ChaCha20-Poly1305) and the 42-byte header.
	ProfileV1 Protocol = iota
	// Signal is libsignal 0.103's Double Ratchet (message version 4) from
	// PQXDH's keys, with SPQR's ML-KEM braid and epoch chains; see
	// SIGNAL.md.
	Signal
)

// libsignal's limits, fixed for Signal sessions (Config's limits apply to
// profile v1 only).
const (
	// SignalMaxJump is the furthest ahead of its receiving chain a message
	// may be: libsignal's MAX_FORWARD_JUMPS, counted as the number of
	// message keys skipped. SPQR adds its own bound (spqr.MaxJump) on the
	// index it carries, which in an unbroken chain refuses a jump of 25 000
	// skipped keys one step before this does.
	SignalMaxJump = 25000
	// SignalMaxKeysPerChain is how many skipped message keys a Signal
	// session keeps per receiving chain (MAX_MESSAGE_KEYS): beyond it the
	// oldest of that chain is dropped.
	SignalMaxKeysPerChain = 2000
	// SignalMaxReceivingChains is how many receiving chains a Signal
	// session keeps (MAX_RECEIVER_CHAINS): a new one drops the oldest, with
	// its skipped keys.
	SignalMaxReceivingChains = 5
)

// ErrSPQRKeyUsed reports a Signal message whose Double Ratchet position
// is new to the session but whose SPQR key (the epoch and index its
// payload names) the session has used or trimmed already. It wraps
// ErrDuplicate: to this session the message is a replay, refused with
// nothing changed. But it may be a genuine message of another session
// with the same peer, whose SPQR indexes run alike: libsignal takes this
// SPQR error as an invalid message for one state and goes on to its
// archived states (only a used Double Ratchet key, DuplicatedMessage,
// stops its search), and so does package session. ErrDuplicate without
// ErrSPQRKeyUsed is a Double Ratchet key already used or dropped.
var ErrSPQRKeyUsed = fmt.Errorf("%w: SPQR key already used or trimmed", ErrDuplicate)

// signalState is the part of a Signal session's state that profile v1
// does not have: both identity keys (the tag covers them; also kept as
// *keys.PublicKey, made once per construction or parse, since every
// message's tag needs both), the receiving chains, oldest first, and SPQR.
type signalState struct {
	localID, remoteID   [32]byte
	localKey, remoteKey *keys.PublicKey
	chains              [SignalMaxReceivingChains]signalChain
	nchains             int
	pq                  pqRatchet
}

// clear wipes the secrets.
func (g *signalState) clear() {
	if g.pq != nil {
		g.pq.Clear()
	}
	for i := range g.chains {
		clear(g.chains[i].ck[:])
	}
}

// signalChain is one receiving chain of a Signal session: the peer's
// ratchet key, the chain key at position next, and next, the first
// message number not yet derived.
type signalChain struct {
	pub  [32]byte
	ck   [32]byte
	next uint32
}

var signalRootInfo = []byte("WhisperRatchet")

// NewSignalInitiator starts the Signal session of the party that processed
// the peer's bundle (Alice), from PQXDH's keys, both identity keys (local
// first) and the bundle's signed prekey. As libsignal does, it keeps a
// receiving chain on the signed prekey with PQXDH's chain key, then
// generates its first ratchet key and takes the sending step at once. The
// session layer wraps its messages in PreKeySignalMessages until
// HasReceived reports true.
//
// cfg may be nil; its limits and Suite must be zero (libsignal's are
// fixed). The session copies what it keeps; the caller wipes k.
func NewSignalInitiator(k *pqxdh.Keys, local, remote, signedPreKey *keys.PublicKey, cfg *Config) (*Session, error) {
	s, err := newSignalSession(k, local, remote, cfg, true)
	if err != nil {
		return nil, err
	}
	if signedPreKey == nil {
		return nil, errors.New("ratchet: nil signed prekey")
	}
	s.sig.chains[0] = signalChain{ck: k.ChainKey}
	copy(s.sig.chains[0].pub[:], signedPreKey.Bytes())
	s.sig.nchains = 1
	if err := s.startInitiator(&s.sig.chains[0].pub, signalRootInfo); err != nil {
		return nil, err
	}
	return s, nil
}

// NewSignalResponder starts the Signal session of the party whose bundle
// was used (Bob), from PQXDH's keys, both identity keys (local first) and
// the signed prekey pair, which is its ratchet key until the first message
// arrives. It can encrypt once it has decrypted a message. (libsignal's
// responder also holds a sending chain on the signed prekey, but it only
// ever exists after decrypting the initiator's first message, which
// replaces it; this session does not keep it.)
func NewSignalResponder(k *pqxdh.Keys, local, remote *keys.PublicKey, signedPreKey *keys.PrivateKey, cfg *Config) (*Session, error) {
	s, err := newSignalSession(k, local, remote, cfg, false)
	if err != nil {
		return nil, err
	}
	if err := s.startResponder(signedPreKey); err != nil {
		return nil, err
	}
	return s, nil
}

func newSignalSession(k *pqxdh.Keys, local, remote *keys.PublicKey, cfg *Config, initiator bool) (*Session, error) {
	if k == nil || local == nil || remote == nil {
		return nil, errors.New("ratchet: nil PQXDH keys or identity key")
	}
	if cfg != nil && (cfg.MaxSkip != 0 || cfg.MaxSkippedKeys != 0 || cfg.Suite != nil) {
		return nil, errors.New("ratchet: a Signal session's limits and cipher are libsignal's; leave Config's zero")
	}
	s := &Session{proto: Signal, sig: new(signalState)}
	if cfg != nil {
		s.keySource = cfg.keySource
	}
	copy(s.sig.localID[:], local.Bytes())
	copy(s.sig.remoteID[:], remote.Bytes())
	s.sig.localKey, s.sig.remoteKey = storedKey(&s.sig.localID), storedKey(&s.sig.remoteID)
	s.rk = k.RootKey
	if cfg != nil && cfg.minimalSPQR {
		s.sig.pq = spqr.NewMinimal(&k.PQRKey, initiator)
	} else {
		s.sig.pq = newFullPQ(&k.PQRKey, initiator)
	}
	return s, nil
}

// Protocol returns the protocol the session speaks.
func (s *Session) Protocol() Protocol {
	s.check()
	return s.proto
}

// signalEncrypt is AppendEncrypt for Signal sessions, after the checks
// both protocols share: the SPQR payload and
// key first (the one step that can fail, before anything changes), then
// the chain step, the message keys from seed and SPQR key, AES-256-CBC,
// the SignalMessage and its tag over both identity keys.
func (s *Session) signalEncrypt(dst, plaintext []byte) ([]byte, error) {
	w := getWork()
	defer putWork(w)
	payload, salt, err := s.sig.pq.Send(w.pq[:0])
	if errors.Is(err, spqr.ErrIndexOverflow) {
		return nil, ErrCounterOverflow
	} else if err != nil {
		return nil, err // crypto/rand failed for the braid's key pair or encapsulation
	}
	w.pq = payload
	h := kdf.Get()
	kdfCK(h, w, &s.cks, &w.mk)
	kdf.Put(h)
	mk := signalsuite.DeriveMessageKeys(&w.mk, salt[:])
	defer mk.Clear()
	clear(salt[:])
	m := signalwire.SignalMessage{
		RatchetKey: storedKey(&s.dhsPub), Counter: s.ns, PreviousCounter: s.pn,
		Ciphertext: signalsuite.Encrypt(mk, plaintext), PQRatchet: payload,
	}
	start := len(dst)
	dst = slices.Grow(dst, 1+2+33+12+3+len(m.Ciphertext)+2+len(payload)+signalsuite.TagSize)
	dst, err = m.AppendBody(dst)
	if err != nil {
		// Unreachable: the key is set and the payload is a few bytes.
		return nil, errors.New("ratchet: internal error: encoding a SignalMessage")
	}
	tag := signalsuite.Tag(mk, s.sig.localKey, s.sig.remoteKey, dst[start:])
	s.ns++
	s.sig.settlePQ()
	return append(dst, tag[:]...), nil
}

// findChain returns the index of the receiving chain on pub, or -1.
func (s *Session) findChain(pub *[32]byte) int {
	for i := s.sig.nchains - 1; i >= 0; i-- {
		if s.sig.chains[i].pub == *pub {
			return i
		}
	}
	return -1
}

// signalDecrypt is AppendDecrypt for Signal sessions. Like profile v1's
// path it computes the message key without changing anything, from a
// stored seed, the message's receiving chain, or the receiving half of a
// DH ratchet step; checks the tag and decrypts; and only then commits the
// change: the seed deleted, the chain advanced (its skipped seeds stored),
// or the new chain added with a fresh ratchet key and sending chain, and
// the SPQR step.
//
// Errors: ErrMalformed (not a strict SignalMessage with an SPQR payload),
// ErrDuplicate (a counter already used, or whose seed was dropped),
// ErrSPQRKeyUsed (an SPQR index already used or trimmed; it wraps
// ErrDuplicate), ErrTooManySkipped (a jump above SignalMaxJump or
// spqr.MaxJump), ErrAuthentication, an error wrapping keys.ErrSmallOrder,
// and at a DH ratchet step an error from crypto/rand.
func (s *Session) signalDecrypt(dst, msg []byte) ([]byte, error) {
	m, body, mac, err := signalwire.ParseSignalMessage(msg)
	if err != nil || m.PQRatchet == nil {
		return nil, ErrMalformed
	}
	var theirs [32]byte
	copy(theirs[:], m.RatchetKey.Bytes())
	n := m.Counter
	if n > maxCounter {
		return nil, ErrCounterOverflow
	}
	w := getWork()
	defer putWork(w)
	h := kdf.Get()
	defer kdf.Put(h)

	const (
		fromStore = iota
		onChain
		newChain
	)
	var (
		kind         int
		slot, run    int
		ci           = s.findChain(&theirs)
		dh, rk, ck0  [32]byte
		seed         = &w.mk
		chainAtCount [32]byte
	)
	defer func() {
		clear(dh[:])
		clear(rk[:])
		clear(ck0[:])
		clear(chainAtCount[:])
	}()
	switch {
	case ci >= 0 && n < s.sig.chains[ci].next:
		kind = fromStore
		if slot, run = s.skipped.find(&theirs, n); slot < 0 {
			return nil, ErrDuplicate
		}
		copy(seed[:], s.skipped.key(slot))
	case ci >= 0:
		kind = onChain
		c := &s.sig.chains[ci]
		if n-c.next > SignalMaxJump {
			return nil, ErrTooManySkipped
		}
		chainAtCount = c.ck
		for range n - c.next {
			chainStep(h, w, &chainAtCount)
		}
		kdfCK(h, w, &chainAtCount, seed)
	default:
		kind = newChain
		if n > SignalMaxJump {
			return nil, ErrTooManySkipped
		}
		if err := curve.DH(&dh, &s.dhsPriv, &theirs); err != nil {
			return nil, errSmallOrder
		}
		rootStep(h, w, signalRootInfo, &s.rk, &dh, &rk, &ck0)
		chainAtCount = ck0
		for range n {
			chainStep(h, w, &chainAtCount)
		}
		kdfCK(h, w, &chainAtCount, seed)
	}
	salt, err := s.sig.pq.Recv(m.PQRatchet)
	if err != nil {
		return nil, pqError(err)
	}
	mk := signalsuite.DeriveMessageKeys(seed, salt[:])
	clear(salt[:])
	defer mk.Clear()
	pt, err := signalsuite.Open(mk, s.sig.remoteKey, s.sig.localKey, body, mac, m.Ciphertext)
	if err != nil {
		return nil, ErrAuthentication
	}
	defer clear(pt)

	switch kind {
	case fromStore:
		s.skipped.remove(slot, run)
	case onChain:
		c := &s.sig.chains[ci]
		s.storeChainSeeds(h, w, &theirs, &c.ck, c.next, n)
		c.ck, c.next = chainAtCount, n+1
	case newChain:
		// The message is authentic. Make the sending half before changing
		// anything: generating a key pair can fail.
		if err := s.newRatchetKey(w); err != nil {
			return nil, err
		}
		if err := curve.DH(&dh, &w.priv, &theirs); err != nil {
			return nil, errSmallOrder // unreachable, as in decryptNewChain
		}
		if s.sig.nchains == SignalMaxReceivingChains {
			s.skipped.removeAll(&s.sig.chains[0].pub)
			copy(s.sig.chains[:], s.sig.chains[1:])
			s.sig.nchains--
		}
		c := &s.sig.chains[s.sig.nchains]
		s.sig.nchains++
		*c = signalChain{pub: theirs}
		s.storeChainSeeds(h, w, &theirs, &ck0, 0, n)
		c.ck, c.next = chainAtCount, n+1
		rootStep(h, w, signalRootInfo, &rk, &dh, &s.rk, &s.cks)
		// libsignal writes the previous chain's last counter, 0 for an
		// empty chain (and ignores the field on receipt).
		s.pn = max(s.ns, 1) - 1
		s.ns = 0
		s.dhsPriv, s.dhsPub = w.priv, w.pub
	}
	s.sig.pq.Commit(m.PQRatchet)
	s.sig.settlePQ()
	s.phase = phaseEstablished
	return append(dst, pt...), nil
}

// storeChainSeeds stores the seeds of messages from..until-1 of the chain
// whose key at from is *ck, keeping only the chain's newest
// SignalMaxKeysPerChain, and leaves *ck at until. Seeds older than those
// kept are never stored: the chain just steps past them.
func (s *Session) storeChainSeeds(h *kdf.Hasher, w *work, pub, ck *[32]byte, from, until uint32) {
	if from >= until {
		return
	}
	if until-from > SignalMaxKeysPerChain {
		for range until - from - SignalMaxKeysPerChain {
			chainStep(h, w, ck)
		}
		from = until - SignalMaxKeysPerChain
	}
	if drop := s.skipped.count(pub) + int(until-from) - SignalMaxKeysPerChain; drop > 0 {
		s.skipped.dropOldest(pub, drop)
	}
	for n := from; n < until; n++ {
		kdfCK(h, w, ck, &w.mk)
		s.skipped.add(pub, n, &w.mk, signalMaxStored, false)
	}
	clear(w.mk[:])
}

// signalMaxStored is the most seeds a Signal session stores in all.
const signalMaxStored = SignalMaxReceivingChains * SignalMaxKeysPerChain

// signalKnowsRatchetKey is KnowsRatchetKey for Signal sessions.
func (s *Session) signalKnowsRatchetKey(msg []byte) bool {
	m, _, _, err := signalwire.ParseSignalMessage(msg)
	if err != nil {
		return false
	}
	var pub [32]byte
	copy(pub[:], m.RatchetKey.Bytes())
	return s.findChain(&pub) >= 0
}
