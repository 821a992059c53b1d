package spqr

import (
	"crypto/rand"
	"encoding/binary"
	"errors"

	"github.com/ratchetkit/ratchetkit/internal/mlkem768"
)

// The serialized form of a Ratchet, for the session record. The layout is
// ratchetkit's own (libsignal's SPQR keeps a protobuf that never leaves the
// device either). All integers are big endian.
//
//	u8  format (1)
//	u8  sending direction
//	braid:  u8 state, u64 epoch, root (32), mac key (32), u8 pieces,
//	        then the pieces flagged in it, in this order:
//	        key-pair seed (64), header (64), vector (1152),
//	        encapsulation randomness m (32), ct1 (960),
//	        encoder (u16 length, message, u32 next index),
//	        decoder (u16 size, then per polynomial u16 count and count
//	        points of u16 x, u16 y, x strictly increasing)
//	chains: u64 current, u64 send epoch, next root (32), u8 epochs, then
//	        per epoch: send key (32), u32 index, u8 live, receive key (32),
//	        u32 index, u16 history length, history (u32 index, key (32))
//
// The encapsulation state is stored as its randomness and rebuilt from
// the header on load, which also checks it against the stored ct1. Parsing
// accepts exactly what AppendBinary writes, with the pieces each state
// needs and no others, so a loaded state can never reach a missing piece.

const stateFormat = 1

// ErrStateMalformed is returned by ParseRatchet.
var ErrStateMalformed = errors.New("spqr: malformed ratchet state")

const (
	hasSeed = 1 << iota
	hasHeader
	hasVector
	hasM
	hasCt1
	hasEnc
	hasDec
)

// pieces lists, per state, the pieces it holds, and the sizes of what its
// encoder sends and its decoder receives.
var pieces = [...]struct {
	flags          byte
	encSize, decSz int
}{
	keysUnsampled:        {0, 0, 0},
	keysSampled:          {hasSeed | hasEnc, HeaderMessageSize, 0},
	headerSent:           {hasSeed | hasEnc | hasDec, VectorMessageSize, Ciphertext1MessageSize},
	ct1Received:          {hasSeed | hasCt1 | hasEnc, VectorMessageSize, 0},
	ekSentCt1Received:    {hasSeed | hasCt1 | hasDec, 0, Ciphertext2MessageSize},
	noHeaderReceived:     {hasDec, 0, HeaderMessageSize},
	headerReceived:       {hasHeader | hasDec, 0, VectorMessageSize},
	ct1Sampled:           {hasHeader | hasM | hasCt1 | hasEnc | hasDec, Ciphertext1MessageSize, VectorMessageSize},
	ekReceivedCt1Sampled: {hasHeader | hasVector | hasM | hasCt1 | hasEnc, Ciphertext1MessageSize, 0},
	ct1Acknowledged:      {hasHeader | hasM | hasCt1 | hasDec, 0, VectorMessageSize},
	ct2Sampled:           {hasEnc, Ciphertext2MessageSize, 0},
}

// maxHistory bounds a stored history: SPQR trims at historyTrim, and one
// jump adds at most MaxOOOKeys before the trim.
const maxHistory = historyTrim + MaxOOOKeys

// maxEpochLinks bounds the stored epochs: SendKey keeps one before the
// sending epoch, and epochs are added one per braid epoch.
const maxEpochLinks = 8

// AppendBinary appends r's state. It is secret.
func (r *Ratchet) AppendBinary(b []byte) ([]byte, error) {
	br := r.braid
	if br.pending != nil {
		return nil, errors.New("spqr: state has an uncommitted receive")
	}
	b = append(b, stateFormat, byte(r.chains.dir), byte(br.state))
	b = binary.BigEndian.AppendUint64(b, br.epoch)
	b = append(b, br.auth.root[:]...)
	b = append(b, br.auth.mac[:]...)
	b = append(b, pieces[br.state].flags)
	if br.dk != nil {
		b = append(b, br.dk.Bytes()...)
	}
	b = append(b, br.hdr...)
	b = append(b, br.vec...)
	if br.es != nil {
		b = append(b, br.es.Randomness()...)
	}
	b = append(b, br.ct1...)
	if br.enc != nil {
		msg := br.enc.message()
		b = binary.BigEndian.AppendUint16(b, uint16(len(msg)))
		b = append(b, msg...)
		b = binary.BigEndian.AppendUint32(b, br.enc.next)
	}
	if br.dec != nil {
		b = binary.BigEndian.AppendUint16(b, uint16(br.dec.size))
		for _, pts := range br.dec.pts {
			b = binary.BigEndian.AppendUint16(b, uint16(len(pts)))
			for _, pt := range pts {
				b = binary.BigEndian.AppendUint16(b, pt.x)
				b = binary.BigEndian.AppendUint16(b, pt.y)
			}
		}
	}
	c := r.chains
	b = binary.BigEndian.AppendUint64(b, c.current)
	b = binary.BigEndian.AppendUint64(b, c.sendEpoch)
	b = append(b, c.nextRoot[:]...)
	b = append(b, byte(len(c.links)))
	for _, l := range c.links {
		b = append(b, l.send.key[:]...)
		b = binary.BigEndian.AppendUint32(b, l.send.index)
		live := byte(0)
		if l.sendLive {
			live = 1
		}
		b = append(b, live)
		b = append(b, l.recv.key[:]...)
		b = binary.BigEndian.AppendUint32(b, l.recv.index)
		b = binary.BigEndian.AppendUint16(b, uint16(len(l.recv.history)))
		for _, s := range l.recv.history {
			b = binary.BigEndian.AppendUint32(b, s.index)
			b = append(b, s.key[:]...)
		}
	}
	return b, nil
}

// MarshaledSize returns the length AppendBinary appends.
func (r *Ratchet) MarshaledSize() int {
	br := r.braid
	n := 3 + 8 + 2*KeySize + 1
	if br.dk != nil {
		n += mlkem768.SeedSize
	}
	n += len(br.hdr) + len(br.vec) + len(br.ct1)
	if br.es != nil {
		n += 32
	}
	if br.enc != nil {
		n += 2 + 4
		for _, pts := range br.enc.pts {
			n += 2 * len(pts) // message() without making it
		}
	}
	if br.dec != nil {
		n += 2
		for _, pts := range br.dec.pts {
			n += 2 + 4*len(pts)
		}
	}
	n += 8 + 8 + KeySize + 1
	for _, l := range r.chains.links {
		n += KeySize + 4 + 1 + KeySize + 4 + 2 + len(l.recv.history)*(4+KeySize)
	}
	return n
}

// reader reads a state; any short read sets bad.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) bytes(n int) []byte {
	if r.bad || len(r.b) < n {
		r.bad = true
		return make([]byte, n)
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() byte    { return r.bytes(1)[0] }
func (r *reader) u16() uint16 { return binary.BigEndian.Uint16(r.bytes(2)) }
func (r *reader) u32() uint32 { return binary.BigEndian.Uint32(r.bytes(4)) }
func (r *reader) u64() uint64 { return binary.BigEndian.Uint64(r.bytes(8)) }

// ParseRatchet loads a state AppendBinary wrote.
func ParseRatchet(data []byte) (*Ratchet, error) {
	rd := &reader{b: data}
	if rd.u8() != stateFormat {
		return nil, ErrStateMalformed
	}
	dir := Direction(rd.u8())
	st := braidState(rd.u8())
	if dir > BToA || int(st) >= len(pieces) {
		return nil, ErrStateMalformed
	}
	br := &Braid{state: st, epoch: rd.u64()}
	copy(br.auth.root[:], rd.bytes(KeySize))
	copy(br.auth.mac[:], rd.bytes(KeySize))
	want := pieces[st]
	if rd.u8() != want.flags || br.epoch == 0 {
		return nil, ErrStateMalformed
	}
	var m []byte
	if want.flags&hasSeed != 0 {
		br.dk = must(mlkem768.NewDecapsulationKey(rd.bytes(mlkem768.SeedSize)))
	}
	if want.flags&hasHeader != 0 {
		br.hdr = append([]byte(nil), rd.bytes(mlkem768.HeaderSize)...)
	}
	if want.flags&hasVector != 0 {
		br.vec = append([]byte(nil), rd.bytes(mlkem768.VectorSize)...)
		if !mlkem768.VectorMatchesHeader(br.hdr, br.vec) {
			return nil, ErrStateMalformed
		}
	}
	if want.flags&hasM != 0 {
		m = rd.bytes(32)
	}
	if want.flags&hasCt1 != 0 {
		br.ct1 = append([]byte(nil), rd.bytes(mlkem768.Ciphertext1Size)...)
	}
	if m != nil && !rd.bad {
		ct1, es, ss := must3(mlkem768.Encapsulate1(br.hdr, m))
		clear(ss)
		if string(ct1) != string(br.ct1) {
			return nil, ErrStateMalformed
		}
		br.es = es
	}
	if want.flags&hasEnc != 0 {
		msg := rd.bytes(int(rd.u16()))
		next := rd.u32()
		if len(msg) != want.encSize {
			return nil, ErrStateMalformed
		}
		br.enc = must(NewEncoder(msg))
		br.enc.next = next
	}
	if want.flags&hasDec != 0 {
		size := int(rd.u16())
		if size != want.decSz {
			return nil, ErrStateMalformed
		}
		br.dec = must(NewDecoder(size))
		for p := range br.dec.pts {
			n := int(rd.u16())
			if n > 2*pointCount(size, p) {
				return nil, ErrStateMalformed
			}
			for i := range n {
				pt := point{rd.u16(), rd.u16()}
				if i > 0 && pt.x <= br.dec.pts[p][i-1].x {
					return nil, ErrStateMalformed
				}
				br.dec.pts[p] = append(br.dec.pts[p], pt)
			}
		}
	}
	c := &Chains{dir: dir, current: rd.u64(), sendEpoch: rd.u64()}
	copy(c.nextRoot[:], rd.bytes(KeySize))
	n := int(rd.u8())
	// The chains hold the braid's epochs: up to epoch − 1, or up to the
	// braid's epoch once the ciphertext side has made its secret.
	newest := br.epoch - 1
	if st >= ct1Sampled {
		newest = br.epoch
	}
	if n == 0 || n > maxEpochLinks || uint64(n-1) > c.current || c.current != newest || c.sendEpoch > c.current {
		return nil, ErrStateMalformed
	}
	for range n {
		l := new(epochLinks)
		copy(l.send.key[:], rd.bytes(KeySize))
		l.send.index = rd.u32()
		switch rd.u8() {
		case 0:
		case 1:
			l.sendLive = true
		default:
			return nil, ErrStateMalformed
		}
		copy(l.recv.key[:], rd.bytes(KeySize))
		l.recv.index = rd.u32()
		h := int(rd.u16())
		if h > maxHistory || rd.bad {
			return nil, ErrStateMalformed
		}
		l.recv.history = make([]skippedKey, h)
		for i := range l.recv.history {
			l.recv.history[i].index = rd.u32()
			copy(l.recv.history[i].key[:], rd.bytes(KeySize))
		}
		c.links = append(c.links, l)
	}
	if rd.bad || len(rd.b) != 0 {
		return nil, ErrStateMalformed
	}
	return &Ratchet{braid: br, chains: c, rand: rand.Reader}, nil
}
