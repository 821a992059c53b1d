package ratchet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/ratchetkit/ratchetkit/internal/curve"
)

// ErrInvalidState is returned by ParseSession for anything but a complete,
// consistent state blob of a known version.
var ErrInvalidState = errors.New("ratchet: invalid session state")

// stateMagic starts every state blob; the version byte follows.
const stateMagic = "rkdr"

const (
	stateVersion1 = 1
	// skippedKeySize is a serialized SkippedKey: u32 n, 32-byte key.
	skippedKeySize = 4 + 32
	// fixedStateSize is a version 1 state up to and including the ad length.
	fixedStateSize = len(stateMagic) + 1 + 1 + 4 + 4 + 2
)

// The state blob, version 1, in the presentation language of RFC 8446
// section 3 (big-endian integers, <floor..ceiling> vectors with a length
// prefix in bytes):
//
//	struct {
//	    opaque magic[4] = "rkdr";
//	    uint8  version = 1;
//	    uint8  suite;              /* 1 = AES-256-GCM, 2 = ChaCha20-Poly1305 */
//	    uint32 max_skip;           /* at most 65536 */
//	    uint32 max_skipped_keys;   /* at most 65536 */
//	    opaque ad<0..2^16-1>;
//	    opaque root_key[32];
//	    opaque dhs_private[32];    /* raw X25519 private key, unclamped */
//	    opaque dhs_public[32];     /* its u-coordinate, canonical */
//	    uint8  phase;
//	    select (phase) {
//	        case 0:                /* responder, nothing received yet */
//	            struct {};
//	        case 1:                /* initiator, nothing received yet */
//	            opaque dhr[32];
//	            opaque cks[32];
//	            uint32 ns;         /* at most 2^32-2 */
//	        case 2:                /* a message has been decrypted */
//	            opaque dhr[32];
//	            opaque cks[32];
//	            uint32 ns;         /* at most 2^32-2 */
//	            uint32 pn;         /* at most 2^32-2 */
//	            opaque ckr[32];
//	            uint32 nr;
//	            SkippedChain skipped<0..2^24-1>;
//	    };
//	} SessionState;
//
//	struct {
//	    opaque ratchet_key[32];            /* canonical u-coordinate */
//	    SkippedKey keys<36..2^24-1>;       /* n strictly increasing */
//	} SkippedChain;
//
//	struct {
//	    uint32 n;                          /* at most 2^32-2 */
//	    opaque message_key[32];
//	} SkippedKey;
//
// Skipped keys appear oldest first, which is the eviction order; no
// (ratchet_key, n) appears twice, and there are at most max_skipped_keys.
// Nothing may follow the structure.
//
// Extension rule: a layout never changes once released. A change, even an
// added field, is a new version byte with its own layout written here;
// ParseSession keeps reading every earlier version (a golden blob of each
// is in testdata/ratchet/state), and MarshalBinary writes only the newest.

// MarshalBinary returns the session's state, which ParseSession restores.
//
// The state contains the secrets that the session's forward secrecy and
// break-in recovery rest on (the root, chain and stored message keys and the
// ratchet private key): anyone who reads it can decrypt the session's
// future messages and any skipped ones it stores. Store it encrypted, and
// wipe copies once a newer state replaces them.
func (s *Session) MarshalBinary() ([]byte, error) {
	return s.AppendBinary(make([]byte, 0, s.marshaledSize()))
}

// AppendBinary appends the state that MarshalBinary returns to b.
func (s *Session) AppendBinary(b []byte) ([]byte, error) {
	s.check()
	if s.proto == Signal {
		return s.appendSignal(b), nil
	}
	b = slices.Grow(b, s.marshaledSize())
	b = append(b, stateMagic...)
	b = append(b, stateVersion1, s.suiteID)
	b = binary.BigEndian.AppendUint32(b, s.maxSkip)
	b = binary.BigEndian.AppendUint32(b, s.maxKeys)
	b = binary.BigEndian.AppendUint16(b, uint16(s.adLen))
	b = append(b, s.ad()...)
	b = append(b, s.rk[:]...)
	b = append(b, s.dhsPriv[:]...)
	b = append(b, s.dhsPub[:]...)
	b = append(b, s.phase)
	if s.phase == phaseResponder {
		return b, nil
	}
	b = append(b, s.dhr[:]...)
	b = append(b, s.cks[:]...)
	b = binary.BigEndian.AppendUint32(b, s.ns)
	if s.phase == phaseInitiator {
		return b, nil
	}
	b = binary.BigEndian.AppendUint32(b, s.pn)
	b = append(b, s.ckr[:]...)
	b = binary.BigEndian.AppendUint32(b, s.nr)
	return s.skipped.appendBinary(b), nil
}

// appendBinary appends the skipped vector, SkippedChain skipped<0..2^24-1>.
func (st *skippedStore) appendBinary(b []byte) []byte {
	b = appendUint24(b, st.marshaledSize())
	for ci := range st.chains {
		c := &st.chains[ci]
		if c.live == 0 {
			continue
		}
		b = append(b, c.pub[:]...)
		b = appendUint24(b, c.live*skippedKeySize)
		for i := max(c.start, st.head); i < c.end; i++ {
			if e := st.at(i); !e.dead {
				b = binary.BigEndian.AppendUint32(b, e.n)
				b = append(b, e.mk[:]...)
			}
		}
	}
	return b
}

func (s *Session) marshaledSize() int {
	if s.proto == Signal {
		return s.signalMarshaledSize()
	}
	n := fixedStateSize + s.adLen + 3*32 + 1
	switch s.phase {
	case phaseInitiator:
		n += 32 + 32 + 4
	case phaseEstablished:
		n += 32 + 32 + 4 + 4 + 32 + 4 + 3 + s.skipped.marshaledSize()
	}
	return n
}

func appendUint24(b []byte, v int) []byte {
	return append(b, byte(v>>16), byte(v>>8), byte(v))
}

// ParseSession restores a session from MarshalBinary's output, of this or
// any earlier state version. It rejects, with an error wrapping
// ErrInvalidState, a blob that is truncated, has trailing bytes, or breaks
// any rule of the layout (see the comment on the format in the source); a
// successful parse re-marshals to the same bytes. (A Signal state of
// minimal SPQR, written before full SPQR, moves to full SPQR with the
// first message the session sends or decrypts; until then it re-marshals
// as it was.) It does not check that
// the stored public key matches the private key, which would cost a scalar
// multiplication per load.
//
// The session copies what it needs from b; the caller should wipe b.
func ParseSession(b []byte) (*Session, error) {
	s := new(Session)
	if err := s.parse(b); err != nil {
		return nil, err
	}
	return s, nil
}

// UnmarshalBinary replaces s's state with the one in b, as ParseSession
// would return it, wiping the secrets s held. It lets a caller that loads
// sessions often reuse one Session: a profile v1 state with no skipped
// keys stored allocates nothing (a Signal state allocates its SPQR state).
// On error s is unchanged.
func (s *Session) UnmarshalBinary(b []byte) error {
	var n Session
	if err := n.parse(b); err != nil {
		return err
	}
	old, oldSig := s.skipped.ring, s.sig
	*s = n
	clear(old)
	if oldSig != nil {
		oldSig.clear()
	}
	// Wipe the stack copy's keys; its slices and Signal state now belong
	// to s.
	n.skipped = skippedStore{}
	n.sig = nil
	n.Clear()
	return nil
}

func (s *Session) parse(b []byte) error {
	if len(b) < len(stateMagic)+1 || string(b[:len(stateMagic)]) != stateMagic {
		return ErrInvalidState
	}
	switch v := b[len(stateMagic)]; v {
	case stateVersion1:
		if err := s.parseV1(b[len(stateMagic)+1:]); err != nil {
			s.Clear()
			return err
		}
		return nil
	case stateVersionSignal:
		if err := s.parseSignal(b[len(stateMagic)+1:]); err != nil {
			s.Clear()
			return err
		}
		return nil
	default:
		return fmt.Errorf("%w: unknown version %d", ErrInvalidState, v)
	}
}

func invalid(what string) error {
	return fmt.Errorf("%w: %s", ErrInvalidState, what)
}

func (s *Session) parseV1(b []byte) error {
	r := reader{b: b}
	s.suiteID = r.u8()
	s.maxSkip = r.u32()
	s.maxKeys = r.u32()
	ad := r.bytes(int(r.u16()))
	copy(s.rk[:], r.bytes(32))
	copy(s.dhsPriv[:], r.bytes(32))
	copy(s.dhsPub[:], r.bytes(32))
	s.phase = r.u8()
	if r.bad {
		return invalid("truncated")
	}
	if s.suite = suiteByID(s.suiteID); s.suite == nil {
		return invalid("unknown suite")
	}
	if s.maxSkip > MaxLimit || s.maxKeys > MaxLimit {
		return invalid("limit above MaxLimit")
	}
	if !curve.IsCanonical(&s.dhsPub) {
		return invalid("non-canonical ratchet public key")
	}
	s.setAD(ad)
	switch s.phase {
	case phaseResponder:
	case phaseInitiator, phaseEstablished:
		copy(s.dhr[:], r.bytes(32))
		copy(s.cks[:], r.bytes(32))
		s.ns = r.u32()
		if s.phase == phaseEstablished {
			s.pn = r.u32()
			copy(s.ckr[:], r.bytes(32))
			s.nr = r.u32()
			skipped := r.bytes(r.u24())
			if r.bad {
				return invalid("truncated")
			}
			if err := s.skipped.parse(skipped, int(s.maxKeys)); err != nil {
				return err
			}
		}
		if r.bad {
			return invalid("truncated")
		}
		if !curve.IsCanonical(&s.dhr) {
			return invalid("non-canonical peer ratchet key")
		}
		if s.ns > maxCounter || s.pn > maxCounter {
			return invalid("counter out of range")
		}
	default:
		return invalid("unknown phase")
	}
	if len(r.b) != 0 {
		return invalid("trailing bytes")
	}
	return nil
}

// parse fills an empty store from the contents of the skipped vector.
func (st *skippedStore) parse(b []byte, maxKeys int) error {
	// First pass: layout and counts, so that the slices are allocated once
	// and never beyond what the limits and the blob's length allow.
	nkeys, nchains := 0, 0
	for r := (reader{b: b}); len(r.b) > 0; {
		r.bytes(32)
		k := r.u24()
		r.bytes(k)
		if r.bad {
			return invalid("truncated skipped keys")
		}
		if k == 0 || k%skippedKeySize != 0 {
			return invalid("skipped-key run length")
		}
		nkeys += k / skippedKeySize
		nchains++
		if nkeys > maxKeys {
			return invalid("more skipped keys than max_skipped_keys")
		}
	}
	if nkeys == 0 {
		return nil
	}
	st.ring = make([]skippedKey, nkeys)
	st.chains = make([]skippedChain, 0, nchains)
	for r := (reader{b: b}); len(r.b) > 0; {
		c := skippedChain{start: st.tail}
		copy(c.pub[:], r.bytes(32))
		if !curve.IsCanonical(&c.pub) {
			st.clear()
			return invalid("non-canonical skipped ratchet key")
		}
		keys := r.bytes(r.u24())
		for i := 0; i < len(keys); i += skippedKeySize {
			e := &st.ring[st.tail]
			e.n = binary.BigEndian.Uint32(keys[i:])
			copy(e.mk[:], keys[i+4:i+skippedKeySize])
			if e.n > maxCounter || (i > 0 && e.n <= st.ring[st.tail-1].n) {
				st.clear()
				return invalid("skipped-key numbers out of order")
			}
			st.tail++
		}
		c.end = st.tail
		c.live = c.end - c.start
		st.chains = append(st.chains, c)
	}
	st.live = st.tail
	if st.hasDuplicates() {
		st.clear()
		return invalid("duplicate skipped key")
	}
	return nil
}

// hasDuplicates reports whether two runs with the same ratchet key share a
// message number. Runs are duplicate-free on their own (strictly increasing).
func (st *skippedStore) hasDuplicates() bool {
	if len(st.chains) < 2 {
		return false
	}
	order := make([]int, len(st.chains))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		return bytes.Compare(st.chains[a].pub[:], st.chains[b].pub[:])
	})
	var ns []uint32
	for i := 0; i < len(order); {
		j := i + 1
		for j < len(order) && st.chains[order[j]].pub == st.chains[order[i]].pub {
			j++
		}
		if j-i > 1 {
			ns = ns[:0]
			for _, ci := range order[i:j] {
				for _, e := range st.ring[st.chains[ci].start:st.chains[ci].end] {
					ns = append(ns, e.n)
				}
			}
			slices.Sort(ns)
			for k := 1; k < len(ns); k++ {
				if ns[k] == ns[k-1] {
					return true
				}
			}
		}
		i = j
	}
	return false
}

// reader reads big-endian fields; reading past the end sets bad and
// returns zeros.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) bytes(n int) []byte {
	if n > len(r.b) {
		r.bad = true
		r.b = nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() byte {
	if v := r.bytes(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if v := r.bytes(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *reader) u24() int {
	if v := r.bytes(3); v != nil {
		return int(v[0])<<16 | int(v[1])<<8 | int(v[2])
	}
	return 0
}

func (r *reader) u32() uint32 {
	if v := r.bytes(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}
