package session

import (
	"errors"
	"fmt"

	"github.com/ratchetkit/ratchetkit/ratchet"
)

// ErrInvalidRecord is returned when an address's stored session record
// does not parse: the store returned bytes this package did not write, or
// damaged ones. The address's sessions are lost; nothing overwrites the
// record until the application calls DeleteSession, after which the peer
// can start over.
var ErrInvalidRecord = errors.New("session: invalid session record")

// recordMagic starts every session record; the version byte follows.
const recordMagic = "rkss"

const (
	recordVersion1 = 1

	roleInitiator = 1 // we ran X3DH from the peer's bundle
	roleResponder = 2 // the peer's prekey message started it

	// DefaultMaxArchived is how many sessions per address a Manager keeps
	// besides the current one unless Config.MaxArchived says otherwise,
	// and the most it can keep. Archived sessions exist so that messages
	// still in flight when a newer session replaced theirs can be read;
	// 40 is libsignal's figure, and PROTOCOL.md section 7 pins it for
	// profile v1 responders.
	DefaultMaxArchived = 40

	maxSessions = DefaultMaxArchived + 1

	// maxStateSize bounds one ratchet state in a record (its length is a
	// 24-bit field). A state with the largest skipped-key store allowed
	// (ratchet.MaxLimit keys of 36 bytes) stays below it.
	maxStateSize = 1<<24 - 1
)

// The session record, version 1, in the presentation language of RFC 8446
// section 3 (big-endian integers; a <floor..ceiling> vector has a length
// prefix of as many bytes as the ceiling needs):
//
//	struct {
//	    opaque magic[4] = "rkss";
//	    uint8  version = 1;
//	    uint8  current;            /* index of the current session, < count */
//	    uint8  count;              /* 1..41 */
//	    Entry  sessions[count];    /* newest created first */
//	} SessionRecord;
//
//	struct {
//	    uint8  role;               /* 1 = initiator, 2 = responder */
//	    opaque peer_identity[33];  /* Encode(peer's identity key) */
//	    opaque x3dh_header[71 or 75];
//	    opaque ratchet_state<1..2^24-1>;   /* ratchet.Session.MarshalBinary */
//	} Entry;
//
// x3dh_header is the x3dh.Header encoding, flags || Encode(IK_A) ||
// Encode(EK_A) || u32be(spk_id) || [u32be(opk_id)], 75 bytes when flags
// bit 0 is set, else 71; flags bits 1 to 7 are zero. For an initiator it
// is the header its prekey messages carry until the session has
// received a message; for a responder, the header of the prekey message
// that started the session, against which later prekey messages with
// the same EK_A are checked. A responder's peer_identity equals its
// header's IK_A, and its ratchet state has received a message (it was
// made by decrypting one). No two responder entries share an EK_A. Every
// key decodes (0x05, u < p). Nothing may follow the structure.
//
// Extension rule, as for the ratchet state: a released layout never
// changes. A change is a new version byte with its layout written here;
// parsing keeps accepting every earlier version (a golden blob of each is
// in testdata/session/record), and only the newest is written.
//
// A record contains every secret of the address's sessions: see the
// package documentation on storage.

// entry is one session of a record.
type entry struct {
	role   byte
	peer   [encodedKeySize]byte
	hdr    [x3dhHeaderSizeOPK]byte
	hdrLen int
	sess   *ratchet.Session
	// sig is the header of a Signal session (version-2 records).
	sig signalHeader
}

func (e *entry) header() []byte { return e.hdr[:e.hdrLen] }

// baseKey returns Encode(EK_A) of the session's key agreement.
func (e *entry) baseKey() []byte {
	if e.sess != nil && e.sess.Protocol() == ratchet.Signal {
		return e.sig.baseKey[:]
	}
	return e.hdr[hdrEK : hdrEK+encodedKeySize]
}

// record is a parsed session record. Records are pooled: a parse reuses
// the entries' Sessions (ratchet.Session.UnmarshalBinary), so loading a
// record with few skipped keys allocates nothing.
type record struct {
	// proto is the protocol of every session in the record, and names its
	// version: ratchet.ProfileV1 version 1, ratchet.Signal version 2.
	proto   ratchet.Protocol
	current int
	n       int
	entries [maxSessions]entry
}

// parse replaces r with the record in b. On error r holds no session.
func (r *record) parse(b []byte) error {
	r.n, r.current = 0, 0
	if len(b) < len(recordMagic)+3 || string(b[:len(recordMagic)]) != recordMagic {
		return ErrInvalidRecord
	}
	parseEntry := (*entry).parse
	switch v := b[len(recordMagic)]; v {
	case recordVersion1:
		r.proto = ratchet.ProfileV1
	case recordVersion2:
		r.proto, parseEntry = ratchet.Signal, (*entry).parseSignal
	default:
		return fmt.Errorf("%w: unknown version %d", ErrInvalidRecord, v)
	}
	current, count := int(b[len(recordMagic)+1]), int(b[len(recordMagic)+2])
	if count < 1 || count > maxSessions || current >= count {
		return fmt.Errorf("%w: bad session count or index", ErrInvalidRecord)
	}
	b = b[len(recordMagic)+3:]
	for i := range count {
		e := &r.entries[i]
		var err error
		if b, err = parseEntry(e, b); err != nil {
			r.n = 0
			return err
		}
		if e.role == roleResponder {
			for j := range i {
				if r.entries[j].role == roleResponder && string(r.entries[j].baseKey()) == string(e.baseKey()) {
					r.n = 0
					return fmt.Errorf("%w: two sessions with one EK_A", ErrInvalidRecord)
				}
			}
		}
		r.n = i + 1
	}
	if len(b) != 0 {
		r.n = 0
		return fmt.Errorf("%w: trailing bytes", ErrInvalidRecord)
	}
	r.current = current
	return nil
}

// parse reads one entry from the front of b and returns the rest.
func (e *entry) parse(b []byte) ([]byte, error) {
	if len(b) < 1+encodedKeySize+1 {
		return nil, fmt.Errorf("%w: truncated", ErrInvalidRecord)
	}
	e.role = b[0]
	if e.role != roleInitiator && e.role != roleResponder {
		return nil, fmt.Errorf("%w: unknown role", ErrInvalidRecord)
	}
	copy(e.peer[:], b[1:])
	if !canonicalKey(e.peer[:]) {
		return nil, fmt.Errorf("%w: peer identity key", ErrInvalidRecord)
	}
	b = b[1+encodedKeySize:]
	flags := b[0]
	switch flags {
	case 0:
		e.hdrLen = x3dhHeaderSize
	case flagOneTimePreKey:
		e.hdrLen = x3dhHeaderSizeOPK
	default:
		return nil, fmt.Errorf("%w: header flags", ErrInvalidRecord)
	}
	if len(b) < e.hdrLen+3 {
		return nil, fmt.Errorf("%w: truncated", ErrInvalidRecord)
	}
	copy(e.hdr[:], b[:e.hdrLen])
	h := e.header()
	if !canonicalKey(h[hdrIK:]) || !canonicalKey(h[hdrEK:]) {
		return nil, fmt.Errorf("%w: header key", ErrInvalidRecord)
	}
	if e.role == roleResponder && string(h[hdrIK:hdrIK+encodedKeySize]) != string(e.peer[:]) {
		return nil, fmt.Errorf("%w: responder's peer is not the header's IK_A", ErrInvalidRecord)
	}
	b, err := e.parseState(b[e.hdrLen:])
	if err != nil {
		return nil, err
	}
	if e.sess.Protocol() != ratchet.ProfileV1 {
		return nil, fmt.Errorf("%w: a Signal state in a profile v1 record", ErrInvalidRecord)
	}
	return b, nil
}

// parseState reads the ratchet state that ends every entry, of either
// version, from the front of b and returns the rest.
func (e *entry) parseState(b []byte) ([]byte, error) {
	if len(b) < 3 {
		return nil, fmt.Errorf("%w: truncated", ErrInvalidRecord)
	}
	n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
	b = b[3:]
	if n == 0 || len(b) < n {
		return nil, fmt.Errorf("%w: truncated", ErrInvalidRecord)
	}
	if e.sess == nil {
		e.sess = new(ratchet.Session)
	}
	if err := e.sess.UnmarshalBinary(b[:n]); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	if e.role == roleResponder && !e.sess.HasReceived() {
		return nil, fmt.Errorf("%w: responder session that received nothing", ErrInvalidRecord)
	}
	return b[n:], nil
}

// appendBinary appends the record's encoding to b.
func (r *record) appendBinary(b []byte) ([]byte, error) {
	if r.n < 1 || r.n > maxSessions || r.current >= r.n {
		return nil, errors.New("session: internal error: bad record")
	}
	version := byte(recordVersion1)
	if r.proto == ratchet.Signal {
		version = recordVersion2
	}
	b = append(b, recordMagic...)
	b = append(b, version, byte(r.current), byte(r.n))
	for i := range r.n {
		e := &r.entries[i]
		if e.sess.Protocol() != r.proto {
			return nil, errors.New("session: internal error: mixed protocols in a record")
		}
		if r.proto == ratchet.Signal {
			b = e.appendSignal(b)
		} else {
			b = append(b, e.role)
			b = append(b, e.peer[:]...)
			b = append(b, e.header()...)
		}
		at := len(b)
		b = append(b, 0, 0, 0)
		var err error
		if b, err = e.sess.AppendBinary(b); err != nil {
			return nil, err
		}
		n := len(b) - at - 3
		if n > maxStateSize {
			return nil, errors.New("session: ratchet state too large for a record")
		}
		b[at], b[at+1], b[at+2] = byte(n>>16), byte(n>>8), byte(n)
	}
	return b, nil
}

// add makes e's session the newest and current one, then drops sessions
// other than the current one beyond maxArchived + 1: under profile v1 the
// oldest-created (PROTOCOL.md section 7), under Signal the one that
// stopped being current longest ago (see makeCurrent). e.sess now
// belongs to r.
func (r *record) add(e *entry, maxArchived int) {
	if r.proto == ratchet.Signal {
		r.toFront(r.current)
		r.current = 0
	}
	if r.n == maxSessions {
		r.drop(r.n - 1)
	}
	// The slot shifted over holds a wiped spare Session or nothing.
	copy(r.entries[1:r.n+1], r.entries[:r.n])
	r.entries[0] = *e
	r.n++
	r.current = 0
	r.trim(maxArchived)
}

// makeCurrent makes entry i the current one. The order of a record's
// entries means, and this keeps:
//
// Under profile v1 the entries are in creation order, newest first, and
// the current one is any of them: PROTOCOL.md section 7 tries the others
// newest-created first and drops the oldest-created.
//
// Under Signal the entries other than the current one are the archive in
// libsignal's order (SessionRecord's previous_sessions): the one that
// stopped being current most recently first. A state stops being current
// when a new session or an archived state takes its place; it then goes
// to the front of the archive, and a promoted state leaves it. The cap
// drops the last one, and archived states are tried in this order. Go
// writes the current entry first (makeCurrent, add), so a record Go
// changed reads as libsignal's record: current_session, then
// previous_sessions. The layout is unchanged, so the version is too.
//
// Version-2 records written before this order carry creation order,
// newest first, with the current entry anywhere. They parse unchanged and
// are read by the same rule: the entries other than the current one, in
// list order, are the archive. That is exactly libsignal's order when no
// archived state of the record was ever promoted (every state stopped
// being current when the next one was created); after a promotion, the
// record never held when each state stopped being current, and creation
// order is the closest order it has. Either way no state is lost or
// changed: at most the first eviction picks another archived state than
// libsignal would have, and the first change of current, or the next
// session, rewrites the record in the new order.
func (r *record) makeCurrent(i int) {
	if r.proto != ratchet.Signal {
		r.current = i
		return
	}
	c := r.current
	r.toFront(c) // the archive's order is unchanged
	if i != c {
		if i < c {
			i++
		}
		r.toFront(i)
	}
	r.current = 0
}

// toFront moves entry i to the front, the ones before it one place back.
func (r *record) toFront(i int) {
	e := r.entries[i]
	copy(r.entries[1:i+1], r.entries[:i])
	r.entries[0] = e
	if r.current < i {
		r.current++
	} else if r.current == i {
		r.current = 0
	}
}

// trim drops sessions from the end of the record, never the current one,
// until at most maxArchived + 1 remain: under profile v1 the
// oldest-created, under Signal the ones longest archived.
func (r *record) trim(maxArchived int) {
	for i := r.n - 1; r.n > maxArchived+1 && i >= 0; i-- {
		if i != r.current {
			r.drop(i)
		}
	}
}

// drop removes entry i, wiping its session.
func (r *record) drop(i int) {
	dropped, ct := r.entries[i].sess, r.entries[i].sig.ct
	dropped.Clear()
	clear(ct)
	copy(r.entries[i:r.n], r.entries[i+1:r.n])
	r.n--
	r.entries[r.n] = entry{sess: dropped, sig: signalHeader{ct: ct[:0]}}
	if r.current > i {
		r.current--
	}
}

// findBaseKey returns the index of the responder session whose EK_A is ek,
// or -1.
func (r *record) findBaseKey(ek []byte) int {
	for i := range r.n {
		e := &r.entries[i]
		if e.role == roleResponder && string(e.baseKey()) == string(ek) {
			return i
		}
	}
	return -1
}

// wipe clears every session r holds, keeping the Session values for reuse.
func (r *record) wipe() {
	for i := range r.entries {
		if s := r.entries[i].sess; s != nil {
			s.Clear()
		}
		clear(r.entries[i].sig.ct)
	}
	r.n, r.current = 0, 0
}
