// Package kdf implements HMAC-SHA256 (RFC 2104) and HKDF-SHA256 (RFC 5869)
// for ratchetkit's hot paths.
//
// crypto/hmac and crypto/hkdf are correct but allocate a fresh hash state
// (several objects) for every key, and hash the key's inner and outer pad
// blocks again for every message. A ratchet step uses each key a few times at
// most, so that fixed cost dominates. Here a key is turned once into its two
// precomputed SHA-256 states (a [Key]), and every MAC afterwards resumes from
// those states: two compression function calls for a short message, no
// allocation. The all-zero HKDF salt used by the profile's message-key and
// X3DH derivations is precomputed once per process.
//
// # How the hashing is done
//
// The SHA-256 compression is crypto/sha256's, hardware-accelerated where the
// CPU allows. States are saved and restored through its
// encoding.BinaryAppender and encoding.BinaryUnmarshaler methods. Go promises
// that a saved state stays loadable across releases, not that its layout
// ("sha\x03", the eight chaining words big-endian, the buffered block, the
// length) stays the same. This package pads messages itself and only ever
// writes whole blocks, so every Write goes straight to the compression
// function, and it reads the digest out of the saved state's chaining words
// instead of calling Sum, which would copy the hash state and pad again.
//
// # The fallback
//
// Reading the chaining words depends on that layout, so at init the package
// runs the fast path once against crypto/hmac over a message that crosses
// the chunking and padding boundaries. If the layout has changed (a digest
// differs, a state has another size, a state no longer loads), the process
// uses crypto/hmac and crypto/hkdf instead, with the same outputs; it never
// panics. A [Key] then holds the HMAC key zero-padded to one block, which
// HMAC treats exactly as the key itself. The fallback allocates on every
// call and its hash states are not wiped.
//
// What the fast path buys, measured in one run (go test -bench . -count 8
// on a shared 2-core AMD EPYC, benchstat medians, impl=kdf against
// impl=fallback; see bench_test.go): a chain step (KDF_CK) 379 ns against
// 1133 ns and 0 allocations against 10; the message-key HKDF 583 ns against
// 3696 ns and 0 against 20; KDF_RK 648 ns against 1812 ns and 0 against 19.
// A message costs one chain step and one message-key HKDF, so the fast path
// saves about 3.8 µs and 30 allocations per message. Interleaved with the
// fallback on the thread's CPU clock (BenchmarkFastPathRatio, medians of 6),
// the fast path costs 0.45× the fallback per message (1.8 µs against
// 4.1 µs): the conservative figure, since there each fast call follows a
// fallback call and its 30 allocations.
//
// # Secrets
//
// A [Key] is as secret as the key it was made from, and a [Hasher]'s buffers
// hold intermediate values after use. Both print as REDACTED under every fmt
// verb. [Key.Clear] and [Put] wipe them; that is best effort, since Go gives
// no control over copies the runtime makes.
package kdf

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"sync"
)

const (
	// Size is the output length of HMAC-SHA256 and the HKDF-SHA256 PRK.
	Size = sha256.Size
	// MaxExpand is the longest output HKDF-SHA256 can produce.
	MaxExpand = 255 * Size

	blockSize = sha256.BlockSize
	// stateSize is the length of crypto/sha256's marshaled state:
	// "sha\x03" || h[8] (u32, big-endian) || buffered block (64) || length (u64).
	stateSize = 4 + 8*4 + blockSize + 8
	// digestOffset locates the chaining words, which after the final block
	// are the digest, in the marshaled state.
	digestOffset = 4
	// chunkSize is how much input is gathered before it is compressed.
	chunkSize = 4 * blockSize
	// bufSize leaves room for the padding (0x80, zeros, the 8-byte length)
	// after the at most chunkSize-1 bytes still waiting: one more block.
	bufSize = chunkSize + blockSize
)

// Key is an HMAC-SHA256 key in precomputed form: the SHA-256 states after
// absorbing key⊕ipad and key⊕opad. It is as secret as the key it came from.
// The zero Key is not valid; set it with [Hasher.SetKey]. A Key may be
// copied, and may live anywhere (stack or heap) without costing allocations.
type Key struct {
	inner, outer [stateSize]byte
}

// Clear wipes k. It is best effort: earlier copies made by the Go runtime
// (stack moves, register spills) are out of reach.
func (k *Key) Clear() {
	clear(k.inner[:])
	clear(k.outer[:])
}

// String, GoString and Format keep key material out of formatted output,
// whatever the verb, for Key values and pointers alike.
func (Key) String() string                   { return "kdf.Key(REDACTED)" }
func (k Key) GoString() string               { return k.String() }
func (k Key) Format(f fmt.State, _ rune)     { io.WriteString(f, k.String()) }
func (*Hasher) String() string               { return "kdf.Hasher(REDACTED)" }
func (h *Hasher) Format(f fmt.State, _ rune) { io.WriteString(f, h.String()) }

// Hasher holds the SHA-256 state and buffers that the MAC and KDF functions
// work in. It is not safe for concurrent use; keep one per goroutine or
// session, or use [Get] and [Put]. Its buffers may hold secret intermediate
// values after use; [Put] wipes them.
type Hasher struct {
	d       hash.Hash
	save    encoding.BinaryAppender
	restore encoding.BinaryUnmarshaler

	// All bytes handed to d pass through buf, and states through state,
	// both on the heap with the Hasher: handing a caller's buffer to an
	// interface method would make it escape, an allocation per call.
	buf   [bufSize]byte
	n     int    // bytes of buf waiting to be compressed
	total uint64 // message length so far, in bytes, for the padding
	state [stateSize]byte
	sum   [Size]byte
	prk   Key
}

// NewHasher returns a Hasher. It allocates; reuse Hashers on hot paths.
func NewHasher() *Hasher {
	// The hash state is set up whenever it can be, even on the fallback,
	// so that a Hasher works on either path.
	if h, ok := newFastHasher(sha256.New()); ok {
		return h
	}
	return new(Hasher)
}

// newFastHasher returns a Hasher that works in d's saved states, or false if
// d cannot save and restore them.
func newFastHasher(d hash.Hash) (*Hasher, bool) {
	save, ok1 := d.(encoding.BinaryAppender)
	restore, ok2 := d.(encoding.BinaryUnmarshaler)
	if !ok1 || !ok2 {
		return nil, false
	}
	return &Hasher{d: d, save: save, restore: restore}, true
}

// fast reports whether this process uses the precomputed states (the fast
// path) rather than crypto/hmac and crypto/hkdf. It is set once, at init.
var fast bool

func init() { fast = fastPathWorks(sha256.New) }

// fastPathWorks runs the fast path over hashes from newHash and compares
// its HMAC with crypto/hmac's, for a long key (hashed first) and a message
// that spans the chunking and padding boundaries. A panic inside (a state of
// an unexpected size, or one that does not load) counts as a failure.
func fastPathWorks(newHash func() hash.Hash) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	h, ok := newFastHasher(newHash())
	if !ok {
		return false
	}
	key := make([]byte, blockSize+1)
	msg := make([]byte, chunkSize+blockSize-8)
	for i := range msg {
		msg[i] = byte(i)
	}
	for i := range key {
		key[i] = byte(255 - i)
	}
	var k Key
	var got [Size]byte
	h.setKey(&k, key)
	h.mac(&got, &k, msg, nil, nil)
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return hmac.Equal(got[:], m.Sum(nil))
}

var pool = sync.Pool{New: func() any { return NewHasher() }}

// Get returns a Hasher from a process-wide pool.
func Get() *Hasher { return pool.Get().(*Hasher) }

// Put wipes h's buffers and returns it to the pool.
func Put(h *Hasher) {
	h.Wipe()
	pool.Put(h)
}

// Wipe clears the intermediate values h holds, as Put does, for a Hasher kept
// outside the pool. It costs about as much as a short memclr.
func (h *Hasher) Wipe() {
	if h.d != nil {
		h.d.Reset()
	}
	clear(h.buf[:])
	clear(h.state[:])
	clear(h.sum[:])
	h.prk.Clear()
	h.n, h.total = 0, 0
}

// begin resumes hashing from state, a saved state that has absorbed exactly
// one pad block.
func (h *Hasher) begin(state *[stateSize]byte) {
	h.state = *state
	if err := h.restore.UnmarshalBinary(h.state[:]); err != nil {
		panic("kdf: internal error: " + err.Error())
	}
	h.n, h.total = 0, blockSize
}

// absorb adds p to the message, compressing whenever a chunk is full.
func (h *Hasher) absorb(p []byte) {
	h.total += uint64(len(p))
	for len(p) > 0 {
		c := copy(h.buf[h.n:chunkSize], p)
		h.n += c
		p = p[c:]
		if h.n == chunkSize {
			h.d.Write(h.buf[:chunkSize])
			h.n = 0
		}
	}
}

// end pads the message (FIPS 180-4, section 5.1.1), compresses what is left
// and sets out to the digest.
func (h *Hasher) end(out *[Size]byte) {
	n := h.n
	h.buf[n] = 0x80
	n++
	last := (n + 8 + blockSize - 1) &^ (blockSize - 1)
	clear(h.buf[n : last-8])
	binary.BigEndian.PutUint64(h.buf[last-8:last], h.total<<3)
	h.d.Write(h.buf[:last])
	h.n = 0
	h.snapshot()
	copy(out[:], h.state[digestOffset:digestOffset+Size])
}

// snapshot saves the hash state into h.state.
func (h *Hasher) snapshot() {
	b, err := h.save.AppendBinary(h.state[:0])
	if err != nil || len(b) != stateSize {
		panic("kdf: internal error: unexpected SHA-256 state size")
	}
}

var ipad, opad = bytes.Repeat([]byte{0x36}, blockSize), bytes.Repeat([]byte{0x5c}, blockSize)

// SetKey sets k to the precomputed form of the HMAC-SHA256 key key, of any
// length (keys longer than a block are hashed first, as RFC 2104 says).
func (h *Hasher) SetKey(k *Key, key []byte) {
	if !fast {
		slowSetKey(k, key)
		return
	}
	h.setKey(k, key)
}

// setKey is SetKey on the fast path.
func (h *Hasher) setKey(k *Key, key []byte) {
	if len(key) > blockSize {
		h.d.Reset()
		h.n, h.total = 0, 0
		h.absorb(key)
		h.end(&h.sum)
		key = h.sum[:]
	}
	// buf holds the zero-padded key in its second block and the pad in its
	// first.
	pad, padded := h.buf[:blockSize], h.buf[blockSize:2*blockSize]
	clear(padded)
	copy(padded, key)
	subtle.XORBytes(pad, padded, ipad[:])
	h.d.Reset()
	h.d.Write(pad)
	h.snapshot()
	k.inner = h.state
	subtle.XORBytes(pad, padded, opad[:])
	h.d.Reset()
	h.d.Write(pad)
	h.snapshot()
	k.outer = h.state
	clear(h.buf[:2*blockSize])
	clear(h.sum[:])
}

// MAC sets out to HMAC-SHA256(k, m1 || m2 || m3). Any of the parts may be
// empty; splitting the message saves the caller a concatenation.
func (h *Hasher) MAC(out *[Size]byte, k *Key, m1, m2, m3 []byte) {
	if !fast {
		h.slowMAC(out, k, m1, m2, m3)
		return
	}
	h.mac(out, k, m1, m2, m3)
}

// mac is MAC on the fast path.
func (h *Hasher) mac(out *[Size]byte, k *Key, m1, m2, m3 []byte) {
	h.begin(&k.inner)
	h.absorb(m1)
	h.absorb(m2)
	h.absorb(m3)
	h.end(&h.sum)
	h.finish(out, k)
}

// MACByte sets out to HMAC-SHA256(k, {b}), the chain-key step of the Double
// Ratchet.
func (h *Hasher) MACByte(out *[Size]byte, k *Key, b byte) {
	if !fast {
		h.buf[blockSize] = b
		h.slowMAC(out, k, h.buf[blockSize:blockSize+1], nil, nil)
		return
	}
	h.begin(&k.inner)
	h.buf[0] = b
	h.n, h.total = 1, blockSize+1
	h.end(&h.sum)
	h.finish(out, k)
}

// finish runs the outer hash over the inner digest in h.sum.
func (h *Hasher) finish(out *[Size]byte, k *Key) {
	h.begin(&k.outer)
	h.absorb(h.sum[:])
	h.end(out)
}

// Extract sets prk to the precomputed key of HKDF-Extract(salt, ikm).
func (h *Hasher) Extract(prk *Key, salt *Key, ikm []byte) {
	var t [Size]byte
	h.MAC(&t, salt, ikm, nil, nil)
	h.SetKey(prk, t[:])
	clear(t[:])
}

// Expand fills out with HKDF-Expand(prk, info, len(out)). It panics if out
// is longer than [MaxExpand], which no caller in this module asks for.
func (h *Hasher) Expand(out []byte, prk *Key, info []byte) {
	if len(out) > MaxExpand {
		panic("kdf: HKDF output too long")
	}
	if !fast {
		h.slowExpand(out, prk, info)
		return
	}
	var t [Size]byte
	for i := 1; len(out) > 0; i++ {
		h.begin(&prk.inner)
		if i > 1 {
			h.absorb(t[:])
		}
		h.absorb(info)
		h.absorb([]byte{byte(i)})
		h.end(&h.sum)
		h.finish(&t, prk)
		out = out[copy(out, t[:]):]
	}
	clear(t[:])
}

// HKDF fills out with HKDF-SHA256(salt, ikm, info, len(out)) (RFC 5869),
// where salt is given in precomputed form; see [ZeroSalt].
func (h *Hasher) HKDF(out []byte, salt *Key, ikm, info []byte) {
	h.Extract(&h.prk, salt, ikm)
	h.Expand(out, &h.prk, info)
	h.prk.Clear()
}

// zeroSalt is the precomputed HMAC key of 32 zero bytes, which RFC 5869 also
// uses when no salt is given (a salt of HashLen zeros), in the form of each
// path.
var zeroSalt = sync.OnceValue(func() *Key {
	k := new(Key)
	h, _ := newFastHasher(sha256.New())
	h.setKey(k, make([]byte, Size))
	return k
})

// zeroSlowSalt is the fallback's form of the same key: one zero block.
var zeroSlowSalt Key

// ZeroSalt returns the precomputed HKDF salt of 32 zero bytes. The returned
// Key is shared and must not be modified.
func ZeroSalt() *Key {
	if !fast {
		return &zeroSlowSalt
	}
	return zeroSalt()
}

// The fallback, used when the self-check fails. A Key holds the HMAC key
// zero-padded to one block in inner; outer stays zero. Every caller's buffer
// is copied through h's own (on the heap already) before it reaches
// crypto/hmac, whose interface calls would otherwise make the fast path's
// arguments escape too: an allocation per call on the path that must have
// none.

func slowSetKey(k *Key, key []byte) {
	k.Clear()
	if len(key) > blockSize {
		sum := sha256.Sum256(key)
		copy(k.inner[:], sum[:])
		clear(sum[:])
		return
	}
	copy(k.inner[:], key)
}

func (h *Hasher) slowMAC(out *[Size]byte, k *Key, m1, m2, m3 []byte) {
	copy(h.buf[:blockSize], k.inner[:blockSize])
	m := hmac.New(sha256.New, h.buf[:blockSize])
	h.slowWrite(m, m1)
	h.slowWrite(m, m2)
	h.slowWrite(m, m3)
	m.Sum(h.sum[:0])
	*out = h.sum
	clear(h.buf[:])
	clear(h.sum[:])
}

func (h *Hasher) slowWrite(m hash.Hash, p []byte) {
	for len(p) > 0 {
		n := copy(h.buf[:], p)
		m.Write(h.buf[:n])
		p = p[n:]
	}
}

func (h *Hasher) slowExpand(out []byte, prk *Key, info []byte) {
	if len(out) == 0 {
		return // crypto/hkdf refuses a zero length
	}
	copy(h.buf[:blockSize], prk.inner[:blockSize])
	b, err := hkdf.Expand(sha256.New, h.buf[:blockSize], string(info), len(out))
	clear(h.buf[:blockSize])
	if err != nil {
		// Unreachable: the length is checked above and the key is a
		// whole block.
		panic("kdf: internal error: " + err.Error())
	}
	copy(out, b)
	clear(b)
}
