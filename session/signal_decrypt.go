package session

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/pqxdh"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/store"
)

// protobufSignalMessage is the first protobuf byte of a SignalMessage
// (field 1, ratchet_key, length-delimited). A PreKeySignalMessage starts
// with field 1 as a varint (0x08) or, without a one-time prekey, field 2
// (0x12), so the byte after the version tells the two apart: libsignal
// hands its type (2 or 3) beside the bytes, which Decrypt does not need.
const protobufSignalMessage = 0x0a

// Message types of the Signal protocol, as libsignal's
// CiphertextMessageType numbers them: what a transport that carries
// libsignal's messages sends beside the bytes.
const (
	SignalTypeWhisper = signalwire.TypeWhisper // a SignalMessage
	SignalTypePreKey  = signalwire.TypePreKey  // a PreKeySignalMessage
)

// SignalMessageType returns SignalTypePreKey or SignalTypeWhisper for a
// message that a Signal Manager's Encrypt made, from its first two bytes,
// or 0 for anything else. It checks no more than those bytes: Decrypt
// does not need the type, but a transport shared with libsignal peers
// does.
func SignalMessageType(msg []byte) int {
	if len(msg) < 2 || msg[0] != signalwire.VersionByte {
		return 0
	}
	if msg[1] == protobufSignalMessage {
		return SignalTypeWhisper
	}
	return SignalTypePreKey
}

var (
	errSignalVersion  = fmt.Errorf("%w: not a message version 4 (0x44)", ErrUnknownType)
	errReplayedPreKey = fmt.Errorf("session: PreKeySignalMessage already used (Kyber prekey, signed prekey and base key): %w", store.ErrReusedBaseKey)
	errNoKyber        = fmt.Errorf("%w: Kyber prekey", ErrUnknownPreKey)
	errNoKyberCommit  = fmt.Errorf("%w: one-time Kyber prekey consumed concurrently", ErrUnknownPreKey)
)

// parseSignal checks everything about a Signal message that depends on no
// state: the version byte (ErrUnknownType), the strict protobuf layout and
// keys (ErrMalformed, wrapping signalwire.ErrMalformed), and the size
// (ErrTooLarge).
func (m *Manager) parseSignal(msg []byte) (message, *signalwire.PreKeySignalMessage, error) {
	var pm message
	if len(msg) < 2 || msg[0] != signalwire.VersionByte {
		return pm, nil, errSignalVersion
	}
	var sm *signalwire.SignalMessage
	var pk *signalwire.PreKeySignalMessage
	var err error
	if msg[1] == protobufSignalMessage {
		pm.kind, pm.inner = typeRatchet, msg
		sm, _, _, err = signalwire.ParseSignalMessage(msg)
	} else {
		pm.kind = typePreKey
		pk, sm, err = signalwire.ParsePreKeySignalMessage(msg)
		if err == nil {
			pm.inner = pk.Message
		}
	}
	if err != nil {
		return pm, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	// AES-256-CBC with PKCS#7 adds 1 to 16 bytes.
	if len(sm.Ciphertext)-16 >= m.maxMessage {
		return pm, nil, errTooLargeIn
	}
	pm.counter = sm.Counter
	return pm, pk, nil
}

// signalPreKey decrypts a PreKeySignalMessage: with the responder session
// its base key started, if the record holds one (libsignal's
// promote_matching_session: the Kyber prekey is not marked used again),
// else with a new responder session.
func (d *decryption) signalPreKey(s *addrState) ([]byte, error) {
	pk := d.pk
	var base [encodedKeySize]byte
	pk.BaseKey.AppendEncode(base[:0])
	if use := s.rec.findBaseKey(base[:]); use >= 0 {
		e := &s.rec.entries[use]
		if !e.sig.sameOuter(pk) || string(e.peer[:]) != string(pk.IdentityKey.Encode()) {
			return nil, errFields
		}
		if err := s.checkIdentity(d.m.trust, e.peer[:]); err != nil {
			return nil, err
		}
		out, err := e.sess.AppendDecrypt(d.dst, pk.Message)
		if err != nil {
			return nil, err
		}
		s.rec.makeCurrent(use)
		return out, nil
	}
	return d.signalRespond(s, base)
}

// sameOuter reports whether a responder entry was started by a
// PreKeySignalMessage with pk's outer fields. libsignal checks only the
// base key; checking the rest (only the inner message is authenticated)
// refuses a repeated message whose Kyber ciphertext or ids were altered,
// which no honest sender makes.
func (h *signalHeader) sameOuter(pk *signalwire.PreKeySignalMessage) bool {
	if pk.HasPreKeyID != (h.flags&sigFlagOPK != 0) || (pk.HasPreKeyID && pk.PreKeyID != h.opkID) {
		return false
	}
	sum := sha256.Sum256(pk.KyberCiphertext)
	return pk.SignedPreKeyID == h.spkID && pk.KyberPreKeyID == h.kyberID && sum == h.ctHash
}

// signalRespond starts a responder session from a PreKeySignalMessage
// and decrypts its SignalMessage. The commit removes the one-time EC
// prekey and marks the Kyber prekey used with (Kyber id, signed id, base
// key), in the transaction that saves the record.
func (d *decryption) signalRespond(s *addrState, base [encodedKeySize]byte) ([]byte, error) {
	m, pk := d.m, d.pk
	var ik [encodedKeySize]byte
	pk.IdentityKey.AppendEncode(ik[:0])
	if err := s.checkIdentity(m.trust, ik[:]); err != nil {
		return nil, err
	}
	pre, err := loadSignalPreKeys(s.ctx, m.st, pk)
	if err != nil {
		return nil, err
	}
	defer pre.wipe()
	localPub := pre.local.KeyPair.PublicKey()
	localPub.AppendEncode(s.local[:0])
	s.checkLocal = true
	h := &pqxdh.Header{
		IdentityKey:      pk.IdentityKey,
		BaseKey:          pk.BaseKey,
		SignedPreKeyID:   pk.SignedPreKeyID,
		HasOneTimePreKey: pk.HasPreKeyID,
		OneTimePreKeyID:  pk.PreKeyID,
		KyberPreKeyID:    pk.KyberPreKeyID,
		KyberCiphertext:  pk.KyberCiphertext,
	}
	k, err := pqxdh.Respond(pre.local.KeyPair, pre.spk, pre.opk, pre.kpk, h)
	if err != nil {
		return nil, err
	}
	defer k.Clear()
	sess, err := ratchet.NewSignalResponder(k, localPub, pk.IdentityKey, pre.spk.PrivateKey(), &m.ratchet)
	if err != nil {
		return nil, err
	}
	out, err := sess.AppendDecrypt(d.dst, pk.Message)
	if err != nil {
		sess.Clear()
		return nil, err
	}
	e := entry{role: roleResponder, peer: ik, sess: sess}
	e.sig = signalHeader{
		baseKey: base,
		spkID:   pk.SignedPreKeyID,
		kyberID: pk.KyberPreKeyID,
		ctHash:  sha256.Sum256(pk.KyberCiphertext),
	}
	if pk.HasPreKeyID {
		e.sig.flags, e.sig.opkID = sigFlagOPK, pk.PreKeyID
		s.consume, s.opkID = true, pk.PreKeyID
	}
	s.rec.add(&e, m.maxArchived)
	s.markKyber, s.kyberID, s.spkID, s.kyberBase = true, pk.KyberPreKeyID, pk.SignedPreKeyID, pk.BaseKey
	return out, nil
}

// markKyberUsed is the commit's MarkUsed, its errors mapped: a recorded
// triple is a replay (nothing is saved), a missing one-time Kyber prekey
// one that another session consumed meanwhile.
func (s *addrState) markKyberUsed(tx store.Tx) error {
	kp, err := store.KyberPreKeysOf(tx)
	if err != nil {
		return err
	}
	err = kp.MarkUsed(s.ctx, s.kyberID, s.spkID, s.kyberBase)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrReusedBaseKey):
		return errReplayedPreKey
	case errors.Is(err, store.ErrNotFound):
		return errNoKyberCommit
	}
	return storeError("marking the Kyber prekey used", err)
}

// signalPreKeys are the keys a new Signal responder session needs.
type signalPreKeys struct {
	preKeys
	kpk *kyber.PreKey
}

func (p *signalPreKeys) wipe() {
	p.preKeys.wipe()
	if p.kpk != nil {
		p.kpk.PrivateKey().Clear()
	}
}

// loadSignalPreKeys reads the prekeys pk names and the local identity in
// one read-only transaction.
func loadSignalPreKeys(ctx context.Context, st store.Store, pk *signalwire.PreKeySignalMessage) (*signalPreKeys, error) {
	pre := new(signalPreKeys)
	err := st.View(ctx, func(tx store.Tx) error {
		kp, err := store.KyberPreKeysOf(tx)
		if err != nil {
			return err
		}
		if err := pre.load(ctx, tx, pk.SignedPreKeyID, pk.HasPreKeyID, pk.PreKeyID); err != nil {
			return err
		}
		if pre.kpk, err = kp.Load(ctx, pk.KyberPreKeyID); errors.Is(err, store.ErrNotFound) {
			return errNoKyber
		} else if err != nil {
			return storeError("loading the Kyber prekey", err)
		}
		return nil
	})
	if err != nil {
		pre.wipe()
		return nil, err
	}
	return pre, nil
}
