package session

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/ratchet"
)

// recordVersion2 is the session record of a Manager configured for
// ratchet.Signal. Profile v1 records stay version 1: a version names
// both the layout and the protocol of every session in the record.
//
//	struct {
//	    opaque magic[4] = "rkss";
//	    uint8  version = 2;
//	    uint8  current;            /* index of the current session, < count */
//	    uint8  count;              /* 1..41 */
//	    SignalEntry sessions[count];    /* current first, then the archive */
//	} SessionRecord;
//
//	struct {
//	    uint8  role;               /* 1 = initiator, 2 = responder */
//	    opaque peer_identity[33];  /* Encode(peer's identity key) */
//	    opaque base_key[33];       /* Encode(EK_A) of the session's PQXDH */
//	    uint8  flags;              /* bit 0: a one-time EC prekey was used;
//	                                  bit 1: pending (see below) */
//	    select (role, pending) {
//	      case (2, 0):
//	        uint32 signed_pre_key_id;
//	        uint32 one_time_pre_key_id;     /* only if flags bit 0 */
//	        uint32 kyber_pre_key_id;
//	        opaque kyber_ciphertext_hash[32];  /* SHA-256 of 0x08 || CT */
//	      case (1, 1):
//	        uint32 signed_pre_key_id;
//	        uint32 one_time_pre_key_id;     /* only if flags bit 0 */
//	        uint32 kyber_pre_key_id;
//	        int64  created;            /* Unix seconds, the session's start */
//	        opaque local_identity[33]; /* Encode(our IK) as PQXDH used it */
//	        opaque kyber_ciphertext[1569];
//	      case (1, 0): struct {};
//	    };
//	    opaque ratchet_state<1..2^24-1>;   /* a Signal ratchet.Session */
//	} SignalEntry;
//
// The archive is in libsignal's order, the state that stopped being
// current most recently first (record.go, makeCurrent, says why records
// written in creation order with the current entry elsewhere read
// correctly by the same rule).
//
// An initiator's entry is pending exactly while its session has received
// nothing: it holds what the PreKeySignalMessages it sends repeat, and
// the start time against which the 30-day limit on unacknowledged
// sessions is checked; the pending part is dropped with the first reply.
// A responder's entry holds the outer fields of the PreKeySignalMessage
// that started it, the Kyber ciphertext as its hash, so that a repeated
// PreKeySignalMessage with the same base key is checked against them.
// A responder's peer_identity is the message's identity key, and its
// state has received a message. No two responder entries share a base
// key. Every key decodes; flags bits 2 to 7 are zero; bit 1 is set only
// for an initiator. Nothing may follow the structure.
const recordVersion2 = 2

// Flags of a Signal entry.
const (
	sigFlagOPK     = 0x01
	sigFlagPending = 0x02
)

// signalHeader is what a Signal entry keeps besides its ratchet state.
type signalHeader struct {
	baseKey               [encodedKeySize]byte
	flags                 byte
	spkID, opkID, kyberID uint32
	// Pending initiator only.
	created int64
	local   [encodedKeySize]byte
	ct      []byte // owned; kyber.EncodedCiphertextSize bytes
	// Responder only.
	ctHash [sha256.Size]byte
}

// pending reports whether the entry holds its PreKeySignalMessage fields.
func (h *signalHeader) pending() bool { return h.flags&sigFlagPending != 0 }

// parseSignal reads one version-2 entry from the front of b and returns
// the rest.
func (e *entry) parseSignal(b []byte) ([]byte, error) {
	const fixed = 1 + 2*encodedKeySize + 1
	if len(b) < fixed {
		return nil, fmt.Errorf("%w: truncated", ErrInvalidRecord)
	}
	e.role = b[0]
	if e.role != roleInitiator && e.role != roleResponder {
		return nil, fmt.Errorf("%w: unknown role", ErrInvalidRecord)
	}
	h := &e.sig
	copy(e.peer[:], b[1:])
	copy(h.baseKey[:], b[1+encodedKeySize:])
	if !canonicalKey(e.peer[:]) || !canonicalKey(h.baseKey[:]) {
		return nil, fmt.Errorf("%w: key", ErrInvalidRecord)
	}
	h.flags = b[fixed-1]
	b = b[fixed:]
	if h.flags&^(sigFlagOPK|sigFlagPending) != 0 || (h.pending() && e.role != roleInitiator) {
		return nil, fmt.Errorf("%w: flags", ErrInvalidRecord)
	}
	withIDs := e.role == roleResponder || h.pending()
	if withIDs {
		n := 8
		if h.flags&sigFlagOPK != 0 {
			n = 12
		}
		if len(b) < n {
			return nil, fmt.Errorf("%w: truncated", ErrInvalidRecord)
		}
		h.spkID, b = binary.BigEndian.Uint32(b), b[4:]
		h.opkID = 0
		if h.flags&sigFlagOPK != 0 {
			h.opkID, b = binary.BigEndian.Uint32(b), b[4:]
		}
		h.kyberID, b = binary.BigEndian.Uint32(b), b[4:]
	}
	switch {
	case e.role == roleResponder:
		if len(b) < sha256.Size {
			return nil, fmt.Errorf("%w: truncated", ErrInvalidRecord)
		}
		copy(h.ctHash[:], b)
		b = b[sha256.Size:]
	case h.pending():
		if len(b) < 8+encodedKeySize+kyber.EncodedCiphertextSize {
			return nil, fmt.Errorf("%w: truncated", ErrInvalidRecord)
		}
		h.created = int64(binary.BigEndian.Uint64(b))
		copy(h.local[:], b[8:])
		if !canonicalKey(h.local[:]) {
			return nil, fmt.Errorf("%w: key", ErrInvalidRecord)
		}
		b = b[8+encodedKeySize:]
		h.ct = append(h.ct[:0], b[:kyber.EncodedCiphertextSize]...)
		if h.ct[0] != kyber.KeyType {
			return nil, fmt.Errorf("%w: Kyber ciphertext", ErrInvalidRecord)
		}
		b = b[kyber.EncodedCiphertextSize:]
	}
	b, err := e.parseState(b)
	if err != nil {
		return nil, err
	}
	if e.sess.Protocol() != ratchet.Signal {
		return nil, fmt.Errorf("%w: a profile v1 state in a Signal record", ErrInvalidRecord)
	}
	if e.role == roleInitiator && h.pending() == e.sess.HasReceived() {
		return nil, fmt.Errorf("%w: pending flag", ErrInvalidRecord)
	}
	return b, nil
}

// appendSignal appends e's version-2 encoding, without its state, to b.
// An initiator whose session has received a message drops its pending
// part here.
func (e *entry) appendSignal(b []byte) []byte {
	h := &e.sig
	if h.pending() && e.sess.HasReceived() {
		h.flags &^= sigFlagPending
		clear(h.ct)
		h.ct = h.ct[:0]
	}
	b = append(b, e.role)
	b = append(b, e.peer[:]...)
	b = append(b, h.baseKey[:]...)
	b = append(b, h.flags)
	if e.role == roleResponder || h.pending() {
		b = binary.BigEndian.AppendUint32(b, h.spkID)
		if h.flags&sigFlagOPK != 0 {
			b = binary.BigEndian.AppendUint32(b, h.opkID)
		}
		b = binary.BigEndian.AppendUint32(b, h.kyberID)
	}
	switch {
	case e.role == roleResponder:
		b = append(b, h.ctHash[:]...)
	case h.pending():
		b = binary.BigEndian.AppendUint64(b, uint64(h.created))
		b = append(b, h.local[:]...)
		b = append(b, h.ct...)
	}
	return b
}
