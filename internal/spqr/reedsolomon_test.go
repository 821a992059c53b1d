package spqr

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
)

// slowMul is carry-less multiplication reduced by SPQR's polynomial, bit
// by bit: the definition the tables must agree with.
func slowMul(a, b uint16) uint16 {
	var acc uint32
	for i := range 16 {
		if b>>i&1 == 1 {
			acc ^= uint32(a) << i
		}
	}
	for i := 31; i >= 16; i-- {
		if acc>>i&1 == 1 {
			acc ^= gfPoly << (i - 16)
		}
	}
	return uint16(acc)
}

func TestGF16(t *testing.T) {
	g := gf()
	// x generates the whole multiplicative group: 65535 distinct powers.
	seen := make([]bool, 65536)
	for i := range 65535 {
		v := g.exp[i]
		if v == 0 || seen[v] {
			t.Fatalf("x^%d = %#x repeats", i, v)
		}
		seen[v] = true
	}
	r := rand.New(rand.NewPCG(1, 1))
	for range 100000 {
		a, b := uint16(r.Uint32()), uint16(r.Uint32())
		if got, want := g.mul(a, b), slowMul(a, b); got != want {
			t.Fatalf("%#x·%#x = %#x, want %#x", a, b, got, want)
		}
		if a != 0 && slowMul(a, g.inv(a)) != 1 {
			t.Fatalf("inv(%#x) is wrong", a)
		}
	}
}

// naiveEval evaluates, from the definition, SPQR's polynomial p of msg at
// x: the Lagrange form over the points (i, v_{16i+p}), with slowMul and
// inverses by exhaustive search. It shares no code with the encoder.
func naiveEval(msg []byte, p int, x uint16) uint16 {
	var xs, ys []uint16
	for i := p; 2*i < len(msg); i += 16 {
		xs = append(xs, uint16(i/16))
		ys = append(ys, uint16(msg[2*i])<<8|uint16(msg[2*i+1]))
	}
	inv := func(a uint16) uint16 { // a^(2^16 − 2)
		r := uint16(1)
		for range 15 {
			a = slowMul(a, a)
			r = slowMul(r, a)
		}
		return r
	}
	var sum uint16
	for j := range xs {
		num, den := uint16(1), uint16(1)
		for i := range xs {
			if i != j {
				num = slowMul(num, x^xs[i])
				den = slowMul(den, xs[j]^xs[i])
			}
		}
		sum ^= slowMul(ys[j], slowMul(num, inv(den)))
	}
	return sum
}

// TestEncoderLayout: data chunks are slices of the message, and parity
// chunks are the evaluations of SPQR's polynomials computed naively.
func TestEncoderLayout(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, size := range []int{2, 10, 34, 96, 160} {
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(r.Uint32())
		}
		e, err := NewEncoder(msg)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < size/ChunkSize; i++ {
			if c := e.Chunk(uint16(i)); !bytes.Equal(c.Data[:], msg[ChunkSize*i:ChunkSize*(i+1)]) {
				t.Fatalf("size %d: data chunk %d is not the message slice", size, i)
			}
		}
		for _, idx := range []uint16{uint16((size + 31) / 32), 7, 1000, 65535} {
			c := e.Chunk(idx)
			for p := range polys {
				if pointCount(size, p) == 0 {
					continue
				}
				want := naiveEval(msg, p, idx)
				if got := uint16(c.Data[2*p])<<8 | uint16(c.Data[2*p+1]); got != want {
					t.Fatalf("size %d chunk %d poly %d: %#x, want %#x", size, idx, p, got, want)
				}
			}
		}
	}
}

// TestRoundTrip: for SPQR's sizes and others, any ⌈size/32⌉ distinct
// chunks, drawn from anywhere in the index space, in any order and mixed
// with repeats, rebuild the message, and fewer never claim to.
func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, size := range []int{2, 10, 32, 34, 96, 160, 960, 1088, 1152, MaxCodedSize} {
		for trial := range 8 {
			msg := make([]byte, size)
			for i := range msg {
				msg[i] = byte(r.Uint32())
			}
			e, _ := NewEncoder(msg)
			d, err := NewDecoder(size)
			if err != nil {
				t.Fatal(err)
			}
			need := (size + ChunkSize - 1) / ChunkSize
			spread := []int{need, 2 * need, 65536}[trial%3]
			picked := map[uint16]bool{}
			for len(picked) < need {
				idx := uint16(r.IntN(spread))
				if !picked[idx] {
					if _, ok := d.Message(); ok {
						t.Fatalf("size %d: Message after %d of %d chunks", size, len(picked), need)
					}
				}
				picked[idx] = true
				if err := d.Add(e.Chunk(idx)); err != nil {
					t.Fatal(err)
				}
			}
			got, ok := d.Message()
			if !ok || !bytes.Equal(got, msg) {
				t.Fatalf("size %d trial %d: decoding failed (ok=%v)", size, trial, ok)
			}
			// More chunks change nothing.
			d.Add(e.Chunk(uint16(r.Uint32())))
			if got, ok := d.Message(); !ok || !bytes.Equal(got, msg) {
				t.Fatalf("size %d: an extra chunk broke the decoding", size)
			}
		}
	}
}

// TestNext: Next counts from 0 and wraps at 2^16 like SPQR's u32 counter
// cast to u16.
func TestNext(t *testing.T) {
	e, _ := NewEncoder(make([]byte, 64))
	for i := range 3 {
		if c := e.Next(); c.Index != uint16(i) {
			t.Fatalf("Next gave index %d, want %d", c.Index, i)
		}
	}
	e.next = 65535
	if e.Next().Index != 65535 || e.Next().Index != 0 {
		t.Fatal("Next does not wrap")
	}
}

// TestHostileChunks: conflicting repeats are refused without effect,
// malformed chunk bytes are refused, sizes out of range are refused, and a
// flood of distinct indexes keeps the decoder's memory bounded.
func TestHostileChunks(t *testing.T) {
	msg := bytes.Repeat([]byte{1, 2, 3, 4}, 24) // 96 bytes
	e, _ := NewEncoder(msg)
	d, _ := NewDecoder(len(msg))
	if err := d.Add(e.Chunk(5)); err != nil {
		t.Fatal(err)
	}
	if err := d.Add(e.Chunk(5)); err != nil {
		t.Fatalf("an identical repeat: %v", err)
	}
	bad := e.Chunk(5)
	bad.Data[31] ^= 1
	if err := d.Add(bad); !errors.Is(err, ErrChunkConflict) {
		t.Fatalf("a conflicting repeat: %v", err)
	}
	d.Add(e.Chunk(9))
	d.Add(e.Chunk(1))
	if got, ok := d.Message(); !ok || !bytes.Equal(got, msg) {
		t.Fatal("the conflicting chunk changed the decoder")
	}
	// A flood of parity: each polynomial keeps at most 2× its points.
	d, _ = NewDecoder(len(msg))
	for i := 3; i < 65536; i++ {
		d.Add(Chunk{Index: uint16(i), Data: [32]byte{byte(i)}})
	}
	for p := range polys {
		if len(d.pts[p]) > 2*pointCount(len(msg), p) {
			t.Fatalf("polynomial %d keeps %d points", p, len(d.pts[p]))
		}
	}
	for _, size := range []int{0, -2, 1, 33, MaxCodedSize + 2} {
		if _, err := NewDecoder(size); !errors.Is(err, ErrCodedSize) {
			t.Fatalf("NewDecoder(%d): %v", size, err)
		}
		if size >= 0 {
			if _, err := NewEncoder(make([]byte, size)); !errors.Is(err, ErrCodedSize) {
				t.Fatalf("NewEncoder(%d bytes): %v", size, err)
			}
		}
	}
	good := AppendChunk(nil, Chunk{Index: 300})
	if c, err := ParseChunk(good); err != nil || c.Index != 300 {
		t.Fatalf("ParseChunk: %v", err)
	}
	for _, b := range [][]byte{
		nil,
		good[:len(good)-1],
		append(bytes.Clone(good), 0),
		append([]byte{0x80, 0x80, 0x04}, make([]byte, 32)...), // 65536
		append([]byte{0x80, 0x00}, make([]byte, 32)...),       // non-minimal 0
		append([]byte{0xff, 0xff, 0xff, 0x01}, make([]byte, 32)...),
	} {
		if _, err := ParseChunk(b); !errors.Is(err, ErrChunkMalformed) {
			t.Fatalf("ParseChunk(%x): %v", b, err)
		}
	}
}

// libsignalChunks returns, per session, sender and message type, the
// chunks libsignal sent in the committed transcripts.
func libsignalChunks(t *testing.T) map[[3]string]map[uint16]Chunk {
	v := libsignaltest.Load(t)
	out := map[[3]string]map[uint16]Chunk{}
	for _, s := range v.Sessions {
		for _, m := range s.Messages {
			pq, err := Parse(pqPayload(t, &m))
			if err != nil {
				t.Fatal(err)
			}
			if pq.Type == None || pq.Type == Ct1Ack {
				continue
			}
			c, err := ParseChunk(pq.Rest)
			if err != nil {
				t.Fatalf("%s/%d: %v", s.Name, m.Seq, err)
			}
			if !bytes.Equal(AppendChunk(nil, c), pq.Rest) {
				t.Fatalf("%s/%d: chunk re-encodes differently", s.Name, m.Seq)
			}
			key := [3]string{s.Name, m.From, typeName[pq.Type]}
			if out[key] == nil {
				out[key] = map[uint16]Chunk{}
			}
			out[key][c.Index] = c
		}
	}
	return out
}

var typeName = map[MessageType]string{Hdr: "hdr", Ek: "ek", EkCt1Ack: "ek", Ct1: "ct1", Ct2: "ct2"}

// TestLibsignalChunks decodes the chunks of libsignal's transcripts. Its
// header messages (64-byte header and 32-byte MAC: three data chunks) run
// to index 4, so libsignal's parity chunks 3 and 4 pin the code: every
// three of the chunks must decode to the same 96 bytes, and the encoder
// must reproduce libsignal's parity from them. A ct1 sent in full (30
// chunks) must decode too.
func TestLibsignalChunks(t *testing.T) {
	chunks := libsignalChunks(t)
	parity := 0
	for key, cs := range chunks {
		if key[2] != "hdr" || len(cs) < 3 {
			continue
		}
		var want []byte
		var idx []uint16
		for i := range cs {
			idx = append(idx, i)
		}
		for a := range idx {
			for b := a + 1; b < len(idx); b++ {
				for c := b + 1; c < len(idx); c++ {
					d, _ := NewDecoder(HeaderMessageSize)
					for _, i := range []uint16{idx[a], idx[b], idx[c]} {
						if err := d.Add(cs[i]); err != nil {
							t.Fatal(err)
						}
					}
					got, ok := d.Message()
					if !ok {
						t.Fatalf("%v: three chunks do not decode", key)
					}
					if want == nil {
						want = got
					} else if !bytes.Equal(got, want) {
						t.Fatalf("%v: chunks %d %d %d decode differently", key, idx[a], idx[b], idx[c])
					}
				}
			}
		}
		e, _ := NewEncoder(want)
		for i, c := range cs {
			if e.Chunk(i) != c {
				t.Fatalf("%v: chunk %d differs from libsignal's", key, i)
			}
			if i >= 3 {
				parity++
			}
		}
	}
	if parity < 3 {
		t.Fatalf("only %d libsignal parity chunks checked", parity)
	}
	ct1s := 0
	for key, cs := range chunks {
		if key[2] != "ct1" || len(cs) < 30 {
			continue
		}
		d, _ := NewDecoder(Ciphertext1MessageSize)
		for _, c := range cs {
			d.Add(c)
		}
		if _, ok := d.Message(); !ok {
			t.Fatalf("%v: a full ct1 does not decode", key)
		}
		ct1s++
	}
	if ct1s == 0 {
		t.Fatal("no complete ct1 in the transcripts")
	}
	t.Logf("checked %d libsignal parity chunks and %d ct1s", parity, ct1s)
}

// FuzzDecoder feeds a decoder of each SPQR size a fuzzed series of chunks:
// no panic, bounded memory, and a decoded message of the right length
// whose data chunks re-encode to what was received at those indexes.
func FuzzDecoder(f *testing.F) {
	f.Add(byte(0), AppendChunk(AppendChunk(nil, Chunk{Index: 0}), Chunk{Index: 7}))
	f.Add(byte(3), bytes.Repeat([]byte{1}, 66))
	f.Fuzz(func(t *testing.T, which byte, b []byte) {
		sizes := []int{HeaderMessageSize, VectorMessageSize, Ciphertext1MessageSize, Ciphertext2MessageSize, 10}
		size := sizes[int(which)%len(sizes)]
		d, _ := NewDecoder(size)
		got := map[uint16]Chunk{}
		for len(b) > 0 {
			// One chunk: its varint (up to 3 bytes) and 32 bytes of data.
			n := 1
			for n < 3 && n < len(b) && b[n-1]&0x80 != 0 {
				n++
			}
			n = min(len(b), n+ChunkSize)
			c, err := ParseChunk(b[:n])
			b = b[n:]
			if err != nil {
				continue
			}
			if d.Add(c) == nil {
				if _, ok := got[c.Index]; !ok {
					got[c.Index] = c
				}
			}
		}
		for p := range polys {
			if len(d.pts[p]) > 2*pointCount(size, p)+1 {
				t.Fatalf("polynomial %d keeps %d points", p, len(d.pts[p]))
			}
		}
		msg, ok := d.Message()
		if !ok {
			return
		}
		if len(msg) != size {
			t.Fatalf("decoded %d bytes, want %d", len(msg), size)
		}
		e, err := NewEncoder(msg)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range got {
			if int(i)*ChunkSize+ChunkSize <= size && e.Chunk(i) != c {
				t.Fatalf("data chunk %d does not match the decoded message", i)
			}
		}
	})
}
