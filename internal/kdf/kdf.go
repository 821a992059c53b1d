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
// The SHA-256 compression itself is crypto/sha256's, hardware-accelerated
// where the CPU allows; states are saved and restored through its
// encoding.BinaryAppender and encoding.BinaryUnmarshaler methods.
package kdf

import (
	"crypto/sha256"
	"encoding"
	"hash"
	"sync"
)

const (
	// Size is the output length of HMAC-SHA256 and the HKDF-SHA256 PRK.
	Size = sha256.Size
	// blockSize is SHA-256's block size, the HMAC pad length.
	blockSize = sha256.BlockSize
	// stateSize is the length of crypto/sha256's marshaled state:
	// "sha\x03" || h[8] (u32) || buffered block (64) || length (u64).
	stateSize = 4 + 8*4 + blockSize + 8
	// MaxExpand is the longest output HKDF-SHA256 can produce.
	MaxExpand = 255 * Size
	// scratchSize bounds the buffer through which input is copied into the
	// hash. It only has to be large enough for the common messages.
	scratchSize = 256
)

// Key is an HMAC-SHA256 key in precomputed form: the SHA-256 states after
// absorbing key⊕ipad and key⊕opad. It is as secret as the key it came from.
// The zero Key is not valid; set it with [Hasher.SetKey].
type Key struct {
	inner, outer [stateSize]byte
}

// Clear wipes k. It is best effort: earlier copies made by the Go runtime
// (stack moves, register spills) are out of reach.
func (k *Key) Clear() {
	clear(k.inner[:])
	clear(k.outer[:])
}

// String and GoString keep key material out of formatted output.
func (k *Key) String() string   { return "kdf.Key(REDACTED)" }
func (k *Key) GoString() string { return k.String() }

// Hasher holds the SHA-256 state and scratch buffers that the MAC and KDF
// functions work in. It is not safe for concurrent use; get one per goroutine
// or use [Get] and [Put]. Its buffers may hold secret intermediate values
// after use; [Put] wipes them.
type Hasher struct {
	h       hash.Hash
	save    encoding.BinaryAppender
	restore encoding.BinaryUnmarshaler

	// All bytes handed to h pass through these buffers, which live on the
	// heap with the Hasher: passing a caller's stack buffer to an interface
	// method would make it escape, costing an allocation per call.
	scratch [scratchSize]byte
	sum     [Size]byte
	prk     Key
}

// NewHasher returns a Hasher. It allocates; reuse Hashers on hot paths.
func NewHasher() *Hasher {
	h := sha256.New()
	save, ok1 := h.(encoding.BinaryAppender)
	restore, ok2 := h.(encoding.BinaryUnmarshaler)
	if !ok1 || !ok2 {
		panic("kdf: crypto/sha256 state cannot be saved and restored")
	}
	return &Hasher{h: h, save: save, restore: restore}
}

var pool = sync.Pool{New: func() any { return NewHasher() }}

// Get returns a Hasher from a process-wide pool.
func Get() *Hasher { return pool.Get().(*Hasher) }

// Put wipes h's buffers and returns it to the pool.
func Put(h *Hasher) {
	h.wipe()
	pool.Put(h)
}

func (h *Hasher) wipe() {
	h.h.Reset()
	clear(h.scratch[:])
	clear(h.sum[:])
	h.prk.Clear()
}

// write feeds p to the hash through the scratch buffer.
func (h *Hasher) write(p []byte) {
	for len(p) > 0 {
		n := copy(h.scratch[:], p)
		h.h.Write(h.scratch[:n])
		p = p[n:]
	}
}

func (h *Hasher) resume(state *[stateSize]byte) {
	if err := h.restore.UnmarshalBinary(state[:]); err != nil {
		panic("kdf: internal error: " + err.Error())
	}
}

func (h *Hasher) snapshot(state *[stateSize]byte) {
	b, err := h.save.AppendBinary(state[:0])
	if err != nil || len(b) != stateSize {
		panic("kdf: internal error: unexpected SHA-256 state size")
	}
}

// SetKey sets k to the precomputed form of the HMAC-SHA256 key key, of any
// length (keys longer than a block are hashed first, as RFC 2104 says).
func (h *Hasher) SetKey(k *Key, key []byte) {
	pad := h.scratch[:blockSize]
	if len(key) > blockSize {
		h.h.Reset()
		h.write(key)
		h.h.Sum(h.sum[:0])
		key = h.sum[:]
	}
	clear(pad)
	copy(pad, key)
	for i := range pad {
		pad[i] ^= 0x36
	}
	h.h.Reset()
	h.h.Write(pad)
	h.snapshot(&k.inner)
	for i := range pad {
		pad[i] ^= 0x36 ^ 0x5c
	}
	h.h.Reset()
	h.h.Write(pad)
	h.snapshot(&k.outer)
	clear(pad)
}

// MAC sets out to HMAC-SHA256(k, m1 || m2 || m3). Any of the parts may be
// empty; splitting the message saves the caller a concatenation.
func (h *Hasher) MAC(out *[Size]byte, k *Key, m1, m2, m3 []byte) {
	h.resume(&k.inner)
	h.write(m1)
	h.write(m2)
	h.write(m3)
	h.finish(out, k)
}

// MACByte sets out to HMAC-SHA256(k, {b}), the chain-key step of the Double
// Ratchet.
func (h *Hasher) MACByte(out *[Size]byte, k *Key, b byte) {
	h.resume(&k.inner)
	h.scratch[0] = b
	h.h.Write(h.scratch[:1])
	h.finish(out, k)
}

// finish completes an HMAC whose inner hash has absorbed the message.
func (h *Hasher) finish(out *[Size]byte, k *Key) {
	h.h.Sum(h.sum[:0])
	h.resume(&k.outer)
	h.h.Write(h.sum[:])
	h.h.Sum(h.sum[:0])
	*out = h.sum
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
	var t [Size]byte
	var ctr [1]byte
	for i := 0; len(out) > 0; i++ {
		ctr[0] = byte(i + 1)
		h.resume(&prk.inner)
		if i > 0 {
			h.write(t[:])
		}
		h.write(info)
		h.write(ctr[:])
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
// uses when no salt is given (a salt of HashLen zeros).
var zeroSalt = sync.OnceValue(func() *Key {
	k := new(Key)
	h := NewHasher()
	h.SetKey(k, make([]byte, Size))
	return k
})

// ZeroSalt returns the precomputed HKDF salt of 32 zero bytes. The returned
// Key is shared and must not be modified.
func ZeroSalt() *Key { return zeroSalt() }
