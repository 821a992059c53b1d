package spqr

import (
	"errors"
	"slices"
	"sync"
)

// SPQR's erasure code: a Reed-Solomon code over GF(2^16) that cuts a
// message (a header with its MAC, an encapsulation key vector, a
// ciphertext part) into 32-byte chunks, one per ratchet message, so that
// any sufficient subset of chunks, in any order, rebuilds it.
//
// The layout is SPQR V1's. The message is read as big-endian 16-bit field
// elements v_0, v_1, ...; element v_i is the value at x = ⌊i/16⌋ of
// polynomial number i mod 16. Polynomial p thus passes through the points
// (x, v_{16x+p}) for x below its point count, and is the lowest-degree
// polynomial that does. Chunk j carries f_0(j), ..., f_15(j), each big
// endian: for j below the point count the chunk is a plain slice of the
// message (the code is systematic), beyond it the chunk is parity.
//
// Everything here handles public values (keys, ciphertexts and MACs that
// the chunks carry in the clear), so the field arithmetic uses log and
// exponent tables and branches on zero. The tables take 384 KiB, built on
// first use: a multiplication is then three loads where the bitwise
// product with reduction is some forty operations, and decoding a vector
// from parity chunks needs tens of thousands of multiplications.

// ChunkSize is the length of a chunk's data.
const ChunkSize = 32

// polys is the number of parallel polynomials, one per field element of a
// chunk.
const polys = ChunkSize / 2

// MaxCodedSize bounds the messages NewEncoder and NewDecoder take. SPQR's
// largest is the 1152-byte vector of an ML-KEM-768 key (36 chunks); the
// bound keeps interpolation (quadratic in the chunk count) cheap.
const MaxCodedSize = 64 * ChunkSize

var (
	// ErrCodedSize is returned for a message length that is odd, zero or
	// above MaxCodedSize.
	ErrCodedSize = errors.New("spqr: erasure-coded message length not supported")
	// ErrChunkConflict is returned by Decoder.Add for a chunk whose index
	// was seen before with other data. The decoder keeps the first.
	ErrChunkConflict = errors.New("spqr: chunk conflicts with one received before")
	// ErrChunkMalformed is returned by ParseChunk.
	ErrChunkMalformed = errors.New("spqr: malformed chunk")
)

// The field GF(2^16) = GF(2)[x]/(x^16 + x^12 + x^3 + x + 1), SPQR's
// polynomial 0x1100b, in which x generates the multiplicative group.
const gfPoly = 0x1100b

type gfTables struct {
	exp [2 * 65535]uint16 // exp[i] = x^i, twice over so that a sum of two logs indexes it
	log [65536]uint16     // log[x^i] = i; log[0] unused
}

var gf = sync.OnceValue(func() *gfTables {
	t := new(gfTables)
	v := uint32(1)
	for i := range 65535 {
		t.exp[i] = uint16(v)
		t.exp[i+65535] = uint16(v)
		t.log[v] = uint16(i)
		v <<= 1
		if v&0x10000 != 0 {
			v ^= gfPoly
		}
	}
	return t
})

func (t *gfTables) mul(a, b uint16) uint16 {
	if a == 0 || b == 0 {
		return 0
	}
	return t.exp[int(t.log[a])+int(t.log[b])]
}

// inv returns 1/a for a ≠ 0.
func (t *gfTables) inv(a uint16) uint16 { return t.exp[65535-int(t.log[a])] }

// point is one (x, y) of a polynomial.
type point struct{ x, y uint16 }

// pointCount is how many points polynomial p of a size-byte message has.
func pointCount(size, p int) int {
	elems := size / 2
	c := elems / polys
	if p < elems%polys {
		c++
	}
	return c
}

// weights returns the barycentric weights w_j = 1/Π_{i≠j}(x_j − x_i) of
// pts, whose x are distinct. Subtraction in GF(2^16) is XOR.
func (t *gfTables) weights(pts []point) []uint16 {
	w := make([]uint16, len(pts))
	for j, pj := range pts {
		d := uint16(1)
		for i, pi := range pts {
			if i != j {
				d = t.mul(d, pj.x^pi.x)
			}
		}
		w[j] = t.inv(d)
	}
	return w
}

// coefficients returns the c_j with f(at) = Σ_j c_j·y_j for every f of
// lowest degree through points at pts's x (at must not be one of them):
// the barycentric form c_j = ℓ(at)·w_j/(at − x_j) with ℓ(at) = Π(at − x_j).
// They depend on the x alone, so the 16 polynomials, whose x are the same
// (they share every chunk), share them: a parity value then costs one
// multiplication per point instead of an interpolation.
func (t *gfTables) coefficients(pts []point, w []uint16, at uint16) []uint16 {
	c := make([]uint16, len(pts))
	l := uint16(1)
	for j, pj := range pts {
		l = t.mul(l, pj.x^at)
		c[j] = t.mul(w[j], t.inv(pj.x^at))
	}
	for j := range c {
		c[j] = t.mul(c[j], l)
	}
	return c
}

// dot returns Σ_j c_j·y_j.
func (t *gfTables) dot(pts []point, c []uint16) uint16 {
	var sum uint16
	for j, pj := range pts {
		sum ^= t.mul(c[j], pj.y)
	}
	return sum
}

// sameX reports whether a and b have the same x, in order.
func sameX(a, b []point) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].x != b[i].x {
			return false
		}
	}
	return true
}

// Encoder cuts one message into chunks.
type Encoder struct {
	pts  [polys][]point  // polynomial p's defining points, x = 0, 1, ...
	w    [polys][]uint16 // their weights, computed at the first parity chunk
	next uint32
}

// NewEncoder returns an encoder of msg (even length, at most
// MaxCodedSize). It keeps its own copy.
func NewEncoder(msg []byte) (*Encoder, error) {
	if len(msg) == 0 || len(msg)%2 != 0 || len(msg) > MaxCodedSize {
		return nil, ErrCodedSize
	}
	e := new(Encoder)
	for i := 0; i < len(msg)/2; i++ {
		p := i % polys
		e.pts[p] = append(e.pts[p], point{uint16(i / polys), uint16(msg[2*i])<<8 | uint16(msg[2*i+1])})
	}
	return e, nil
}

// Chunk returns the chunk of the given index.
func (e *Encoder) Chunk(index uint16) Chunk {
	c := Chunk{Index: index}
	t := gf()
	var coef []uint16 // for the polynomials of the point count last seen
	for p := range polys {
		var y uint16
		switch {
		case int(index) < len(e.pts[p]):
			y = e.pts[p][index].y
		default:
			if coef == nil || len(coef) != len(e.pts[p]) {
				if e.w[p] == nil {
					e.w[p] = t.weights(e.pts[p])
				}
				coef = t.coefficients(e.pts[p], e.w[p], index)
			}
			y = t.dot(e.pts[p], coef)
		}
		c.Data[2*p], c.Data[2*p+1] = byte(y>>8), byte(y)
	}
	return c
}

// message returns the message e encodes.
func (e *Encoder) message() []byte {
	var n int
	for _, pts := range e.pts {
		n += len(pts)
	}
	msg := make([]byte, 2*n)
	for i := range n {
		y := e.pts[i%polys][i/polys].y
		msg[2*i], msg[2*i+1] = byte(y>>8), byte(y)
	}
	return msg
}

// Next returns the chunk after the one Next returned last, starting at
// index 0, as SPQR sends them: a 32-bit counter whose low 16 bits are the
// index.
func (e *Encoder) Next() Chunk {
	c := e.Chunk(uint16(e.next))
	e.next++
	return c
}

// Decoder rebuilds one message from chunks.
type Decoder struct {
	size int
	pts  [polys][]point // sorted by x, distinct x
}

// NewDecoder returns a decoder of a size-byte message (even, at most
// MaxCodedSize).
func NewDecoder(size int) (*Decoder, error) {
	if size <= 0 || size%2 != 0 || size > MaxCodedSize {
		return nil, ErrCodedSize
	}
	d := &Decoder{size: size}
	// One backing array for all polynomials, with room for the most
	// points Add keeps (twice the need), so that adding never allocates.
	need := pointCount(size, 0)
	backing := make([]point, polys*2*need)
	for p := range d.pts {
		d.pts[p] = backing[p*2*need : p*2*need : (p+1)*2*need]
	}
	return d, nil
}

// clone returns a copy of d that shares nothing with it.
func (d *Decoder) clone() *Decoder {
	c := &Decoder{size: d.size}
	need := pointCount(d.size, 0)
	backing := make([]point, polys*2*need)
	for p := range c.pts {
		c.pts[p] = append(backing[p*2*need:p*2*need:(p+1)*2*need], d.pts[p]...)
	}
	return c
}

// completesWith reports whether Add(c) would make the message complete,
// without adding it.
func (d *Decoder) completesWith(c Chunk) bool {
	for p := range polys {
		y := uint16(c.Data[2*p])<<8 | uint16(c.Data[2*p+1])
		if i, found := find(d.pts[p], c.Index); found && d.pts[p][i].y != y {
			return false // a conflicting chunk adds nothing
		}
	}
	for p := range polys {
		need := pointCount(d.size, p)
		n := len(d.pts[p])
		if _, found := find(d.pts[p], c.Index); !found && n < need {
			n++
		}
		if n < need {
			return false
		}
	}
	return true
}

// Add takes one chunk. A chunk whose index came before with the same data
// changes nothing; with other data it is ErrChunkConflict and changes
// nothing either. Of the rest, a polynomial keeps a point only while it
// lacks points or when it is one of its own message values (an index below
// its point count), which bounds a decoder's memory at twice the message.
func (d *Decoder) Add(c Chunk) error {
	for p := range polys {
		y := uint16(c.Data[2*p])<<8 | uint16(c.Data[2*p+1])
		if i, found := find(d.pts[p], c.Index); found && d.pts[p][i].y != y {
			return ErrChunkConflict
		}
	}
	for p := range polys {
		y := uint16(c.Data[2*p])<<8 | uint16(c.Data[2*p+1])
		need := pointCount(d.size, p)
		i, found := find(d.pts[p], c.Index)
		if found || (int(c.Index) >= need && len(d.pts[p]) >= need) {
			continue
		}
		d.pts[p] = slices.Insert(d.pts[p], i, point{c.Index, y})
	}
	return nil
}

func cmpX(pt point, x uint16) int { return int(pt.x) - int(x) }

// find is slices.BinarySearchFunc on x, with the case of chunks arriving
// in increasing order (the usual one) answered from the last point alone.
func find(pts []point, x uint16) (int, bool) {
	if n := len(pts); n == 0 || pts[n-1].x < x {
		return n, false
	}
	return slices.BinarySearchFunc(pts, x, cmpX)
}

// Message returns the message once enough chunks have arrived, and false
// before.
func (d *Decoder) Message() ([]byte, bool) {
	for p := range polys {
		if len(d.pts[p]) < pointCount(d.size, p) {
			return nil, false
		}
	}
	t := gf()
	out := make([]byte, d.size)
	var prev []point              // the basis of the polynomial before
	var w []uint16                // its weights
	coef := map[uint16][]uint16{} // its coefficients per missing x
	for p := range polys {
		need := pointCount(d.size, p)
		basis := d.pts[p][:need] // the lowest indexes, as SPQR chooses them
		if !sameX(basis, prev) {
			prev, w = basis, nil
			clear(coef)
		}
		for x := range need {
			var y uint16
			if i, found := find(d.pts[p], uint16(x)); found {
				y = d.pts[p][i].y
			} else {
				if w == nil {
					w = t.weights(basis)
				}
				if coef[uint16(x)] == nil {
					coef[uint16(x)] = t.coefficients(basis, w, uint16(x))
				}
				y = t.dot(basis, coef[uint16(x)])
			}
			e := 16*x + p
			out[2*e], out[2*e+1] = byte(y>>8), byte(y)
		}
	}
	return out, true
}

// Chunk is one piece of an erasure-coded message.
type Chunk struct {
	Index uint16
	Data  [ChunkSize]byte
}

// AppendChunk appends c as SPQR V1 sends it after a message header: the
// index as a varint, then the 32 data bytes.
func AppendChunk(dst []byte, c Chunk) []byte {
	return append(appendVarint(dst, uint64(c.Index)), c.Data[:]...)
}

// ParseChunk reads a chunk as AppendChunk writes it: a minimal varint
// index below 65536 and exactly 32 bytes.
func ParseChunk(b []byte) (Chunk, error) {
	index, n := uvarint(b, 3)
	if n == 0 || index > 0xffff || len(b)-n != ChunkSize {
		return Chunk{}, ErrChunkMalformed
	}
	c := Chunk{Index: uint16(index)}
	copy(c.Data[:], b[n:])
	return c, nil
}

// The lengths SPQR V1 erasure-codes with ML-KEM-768.
const (
	// HeaderMessageSize is the encapsulation key header and its MAC.
	HeaderMessageSize = 64 + 32
	// VectorMessageSize is the encapsulation key vector.
	VectorMessageSize = 1152
	// Ciphertext1MessageSize is ct1.
	Ciphertext1MessageSize = 960
	// Ciphertext2MessageSize is ct2 and its MAC.
	Ciphertext2MessageSize = 128 + 32
)
