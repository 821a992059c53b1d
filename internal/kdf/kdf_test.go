package kdf

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding"
	"encoding/json"
	"fmt"
	"hash"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/testutil"
)

type hexBytes = testutil.Hex

func loadRFC(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "rfc", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func stdHMAC(key []byte, msg ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range msg {
		m.Write(p)
	}
	return m.Sum(nil)
}

// splits returns m cut into three parts in a few ways, to check that MAC's
// three parts concatenate.
func splits(m []byte) [][3][]byte {
	n := len(m)
	return [][3][]byte{
		{m, nil, nil}, {nil, m, nil}, {nil, nil, m},
		{m[:n/3], m[n/3 : 2*n/3], m[2*n/3:]},
		{m[:n/2], nil, m[n/2:]},
	}
}

func TestRFC4231(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		var v struct {
			Tests []struct {
				Case           int
				Key, Data, MAC hexBytes
				Truncated      bool
			}
		}
		loadRFC(t, "rfc4231.json", &v)
		if len(v.Tests) != 7 {
			t.Fatalf("%d RFC 4231 cases, want 7", len(v.Tests))
		}
		h := NewHasher()
		for _, tc := range v.Tests {
			if tc.Truncated != (len(tc.MAC) < Size) || len(tc.MAC) < 16 {
				t.Fatalf("case %d: bad vector", tc.Case)
			}
			var k Key
			h.SetKey(&k, tc.Key)
			for i, parts := range splits(tc.Data) {
				var out [Size]byte
				h.MAC(&out, &k, parts[0], parts[1], parts[2])
				if !bytes.Equal(out[:len(tc.MAC)], tc.MAC) {
					t.Errorf("case %d, split %d: MAC = %x, want %x", tc.Case, i, out, tc.MAC)
				}
			}
		}
	})
}

type rfc5869Case struct {
	Case                      int
	IKM, Salt, Info, PRK, OKM hexBytes
	Length                    int
}

func TestRFC5869(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		var v struct{ Tests []rfc5869Case }
		loadRFC(t, "rfc5869.json", &v)
		if len(v.Tests) != 3 {
			t.Fatalf("%d RFC 5869 cases, want 3", len(v.Tests))
		}
		h := NewHasher()
		for _, tc := range v.Tests {
			var salt, prk, wantPRK Key
			h.SetKey(&salt, tc.Salt)
			if len(tc.Salt) == 0 && salt != *ZeroSalt() {
				t.Errorf("case %d: the empty salt differs from ZeroSalt", tc.Case)
			}
			h.Extract(&prk, &salt, tc.IKM)
			h.SetKey(&wantPRK, tc.PRK)
			if prk != wantPRK {
				t.Errorf("case %d: Extract gives the wrong PRK", tc.Case)
			}
			out := make([]byte, tc.Length)
			h.Expand(out, &prk, tc.Info)
			if !bytes.Equal(out, tc.OKM) {
				t.Errorf("case %d: Expand = %x, want %x", tc.Case, out, tc.OKM)
			}
			clear(out)
			h.HKDF(out, &salt, tc.IKM, tc.Info)
			if !bytes.Equal(out, tc.OKM) {
				t.Errorf("case %d: HKDF = %x, want %x", tc.Case, out, tc.OKM)
			}
		}
	})
}

func TestZeroSalt(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		h := NewHasher()
		var k32, k0 Key
		h.SetKey(&k32, make([]byte, 32))
		h.SetKey(&k0, nil)
		if *ZeroSalt() != k32 || k0 != k32 {
			t.Fatal("ZeroSalt is not the key of 32 zero bytes (nor the empty key)")
		}
		if a, b := ZeroSalt(), ZeroSalt(); a != b {
			t.Fatal("ZeroSalt is recomputed")
		}
	})
}

// TestDifferentialHMAC compares MAC and MACByte with crypto/hmac over
// seeded random keys (0–200 bytes, across the 64-byte block boundary where
// keys get hashed) and messages (0–1000 bytes, across the chunk and padding
// boundaries).
func TestDifferentialHMAC(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		rng := rand.New(rand.NewChaCha8([32]byte{'h', 'm', 'a', 'c'}))
		h := NewHasher()
		n := 3000
		if testing.Short() {
			n = 300
		}
		for i := range n {
			key := make([]byte, rng.IntN(201))
			msg := make([]byte, rng.IntN(1001))
			fill(rng, key)
			fill(rng, msg)
			a := rng.IntN(len(msg) + 1)
			b := a + rng.IntN(len(msg)-a+1)
			var k Key
			h.SetKey(&k, key)
			var out [Size]byte
			h.MAC(&out, &k, msg[:a], msg[a:b], msg[b:])
			if want := stdHMAC(key, msg); !bytes.Equal(out[:], want) {
				t.Fatalf("#%d: key %x, msg %x (split %d, %d): MAC = %x, want %x", i, key, msg, a, b, out, want)
			}
			c := byte(rng.Uint32())
			h.MACByte(&out, &k, c)
			if want := stdHMAC(key, []byte{c}); !bytes.Equal(out[:], want) {
				t.Fatalf("#%d: key %x: MACByte(%d) = %x, want %x", i, key, c, out, want)
			}
		}
	})
}

// TestDifferentialHKDF compares HKDF with crypto/hkdf over seeded random
// salts, secrets and info strings (0–200 bytes) and every output length
// class from 1 to 255·32 bytes.
func TestDifferentialHKDF(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		rng := rand.New(rand.NewChaCha8([32]byte{'h', 'k', 'd', 'f'}))
		h := NewHasher()
		n := 600
		if testing.Short() {
			n = 60
		}
		for i := range n {
			salt := make([]byte, rng.IntN(201))
			ikm := make([]byte, rng.IntN(201))
			info := make([]byte, rng.IntN(201))
			fill(rng, salt)
			fill(rng, ikm)
			fill(rng, info)
			length := 1 + rng.IntN(MaxExpand)
			if i%3 == 0 {
				length = 1 + rng.IntN(100) // short outputs, the common case
			}
			if i == 0 {
				length = MaxExpand
			}
			var s Key
			h.SetKey(&s, salt)
			out := make([]byte, length)
			h.HKDF(out, &s, ikm, info)
			want, err := hkdf.Key(sha256.New, ikm, salt, string(info), length)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, want) {
				t.Fatalf("#%d: salt %x, ikm %x, info %x, length %d: HKDF differs from crypto/hkdf", i, salt, ikm, info, length)
			}
		}
	})
}

func fill(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

func TestExpandTooLong(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		h := NewHasher()
		defer func() {
			if r := recover(); r != "kdf: HKDF output too long" {
				t.Fatalf("Expand(MaxExpand+1): recovered %v, want the length panic", r)
			}
		}()
		h.Expand(make([]byte, MaxExpand+1), ZeroSalt(), nil)
	})
}

func TestExpandEmpty(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		h := NewHasher()
		h.Expand(nil, ZeroSalt(), []byte("info")) // must not panic or loop
		h.HKDF([]byte{}, ZeroSalt(), nil, nil)
	})
}

// TestHasherIsolation interleaves operations under different keys on one
// Hasher and checks that no state leaks from one into the next.
func TestHasherIsolation(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		h := NewHasher()
		var k1, k2 Key
		key1, key2 := bytes.Repeat([]byte{1}, 100), []byte("two")
		h.SetKey(&k1, key1)
		h.SetKey(&k2, key2)
		msg := bytes.Repeat([]byte("m"), 300)
		for range 3 {
			var a, b [Size]byte
			h.MAC(&a, &k1, msg, nil, nil)
			h.MACByte(&b, &k2, 7)
			if !bytes.Equal(a[:], stdHMAC(key1, msg)) || !bytes.Equal(b[:], stdHMAC(key2, []byte{7})) {
				t.Fatal("interleaved results differ")
			}
			out := make([]byte, 100)
			h.HKDF(out, &k2, msg, msg[:10])
			want, _ := hkdf.Key(sha256.New, msg, key2, string(msg[:10]), 100)
			if !bytes.Equal(out, want) {
				t.Fatal("interleaved HKDF differs")
			}
		}
	})
}

// TestAliasing checks the outputs that may overlap the inputs.
func TestAliasing(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		h := NewHasher()
		var k Key
		key := []byte("chain key")
		h.SetKey(&k, key)
		var out [Size]byte
		copy(out[:], "message in the output buffer....")
		want := stdHMAC(key, out[:])
		h.MAC(&out, &k, out[:], nil, nil)
		if !bytes.Equal(out[:], want) {
			t.Fatal("MAC with out aliasing the message differs")
		}
		// SetKey with the key in the Key it replaces is not supported (the key
		// is a byte slice, the Key a state), but a key read from a previous
		// output is the ratchet's normal use.
		h.SetKey(&k, out[:])
		h.MACByte(&out, &k, 2)
		if want2 := stdHMAC(want, []byte{2}); !bytes.Equal(out[:], want2) {
			t.Fatal("chained MACByte differs")
		}
	})
}

// bothPaths runs f once on the fast path and once on the fallback. Tests
// that call it must not run in parallel: the path is process-wide.
func bothPaths(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	if !fast {
		t.Fatal("the fast path failed its self-check on this Go release")
	}
	t.Run("path=fast", f)
	t.Run("path=fallback", func(t *testing.T) {
		fast = false
		t.Cleanup(func() { fast = true })
		f(t)
	})
}

// TestFastPathOnThisGo fails, where a program would quietly fall back, when
// a Go release changes crypto/sha256's state layout: then the fast path
// must be revisited.
func TestFastPathOnThisGo(t *testing.T) {
	if !fastPathWorks(sha256.New) || !fast {
		t.Fatal("the fast path fails its self-check with this crypto/sha256")
	}
}

// relaid is SHA-256 whose saved state has another layout, as a future Go
// release might choose.
type relaid struct {
	hash.Hash
	change func([]byte) []byte // applied to the saved state
	undo   func([]byte) []byte // applied before loading one
}

func (r relaid) AppendBinary(b []byte) ([]byte, error) {
	st, err := r.Hash.(encoding.BinaryAppender).AppendBinary(nil)
	return append(b, r.change(st)...), err
}

func (r relaid) UnmarshalBinary(b []byte) error {
	return r.Hash.(encoding.BinaryUnmarshaler).UnmarshalBinary(r.undo(slices.Clone(b)))
}

// TestSelfCheckDetectsLayout checks that the init self-check turns each way
// the layout could change into a fallback rather than a panic or a wrong
// MAC.
func TestSelfCheckDetectsLayout(t *testing.T) {
	same := func(b []byte) []byte { return b }
	// swap exchanges the first two chaining words: same size, other order.
	swap := func(b []byte) []byte {
		w := b[digestOffset : digestOffset+8]
		w0 := slices.Clone(w[:4])
		copy(w[:4], w[4:])
		copy(w[4:], w0)
		return b
	}
	for name, r := range map[string]relaid{
		"unchanged":     {change: same, undo: same},
		"word order":    {change: swap, undo: swap},
		"longer state":  {change: func(b []byte) []byte { return append([]byte{0}, b...) }, undo: func(b []byte) []byte { return b[1:] }},
		"state refused": {change: same, undo: func([]byte) []byte { return nil }},
	} {
		got := fastPathWorks(func() hash.Hash { r.Hash = sha256.New(); return r })
		if want := name == "unchanged"; got != want {
			t.Errorf("%s: self-check passed = %v, want %v", name, got, want)
		}
	}
	if fastPathWorks(func() hash.Hash { return struct{ hash.Hash }{sha256.New()} }) {
		t.Error("self-check passed a hash that cannot save its state")
	}
}

func TestWipe(t *testing.T) {
	h := NewHasher()
	out := make([]byte, 44)
	h.HKDF(out, ZeroSalt(), bytes.Repeat([]byte{0xaa}, 32), []byte("info"))
	if isZero(h.buf[:]) || isZero(h.state[:]) {
		t.Fatal("HKDF left the buffers empty; the test below proves nothing")
	}
	if !isZero(h.prk.inner[:]) || !isZero(h.prk.outer[:]) {
		t.Error("HKDF left its PRK behind")
	}
	h.Wipe()
	if !isZero(h.buf[:]) || !isZero(h.state[:]) || !isZero(h.sum[:]) {
		t.Error("Wipe left intermediate values")
	}
	// A wiped Hasher still works.
	h.HKDF(out, ZeroSalt(), nil, nil)
	want, _ := hkdf.Key(sha256.New, nil, nil, "", 44)
	if !bytes.Equal(out, want) {
		t.Error("HKDF after Wipe differs")
	}
	var k Key
	h.SetKey(&k, []byte("key"))
	k.Clear()
	if k != (Key{}) {
		t.Error("Clear left key material")
	}
}

func isZero(b []byte) bool { return bytes.Equal(b, make([]byte, len(b))) }

func TestPool(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		h := Get()
		var out [Size]byte
		h.MAC(&out, ZeroSalt(), []byte("x"), nil, nil)
		Put(h)
		if !isZero(h.buf[:]) || !isZero(h.state[:]) {
			t.Error("Put did not wipe")
		}
		h = Get()
		defer Put(h)
		var out2 [Size]byte
		h.MAC(&out2, ZeroSalt(), []byte("x"), nil, nil)
		if out != out2 || !bytes.Equal(out[:], stdHMAC(make([]byte, 32), []byte("x"))) {
			t.Fatal("pooled Hasher gives a different MAC")
		}
	})
}

func TestRedacted(t *testing.T) {
	h := NewHasher()
	var k Key
	h.SetKey(&k, bytes.Repeat([]byte{0x42}, 32))
	type wrapper struct {
		K Key
		P *Key
		H *Hasher
	}
	w := wrapper{k, &k, h}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
		for _, v := range []any{k, &k, w, &w, h} {
			s := fmt.Sprintf(verb, v)
			// Once the markers are gone, no digit may be left: any state
			// byte, in any base, would leave some.
			rest := strings.NewReplacer("kdf.Key(REDACTED)", "", "kdf.Hasher(REDACTED)", "").Replace(s)
			if rest == s || strings.ContainsAny(rest, "0123456789") {
				t.Errorf("Sprintf(%q, %T) = %q", verb, v, s)
			}
		}
	}
}

// TestAllocations pins the hot path at zero allocations, with keys and
// outputs on the caller's stack.
func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	h := NewHasher()
	key := make([]byte, 32)
	long := make([]byte, 100)
	msg := make([]byte, 500)
	info := []byte("ratchetkit_MessageKeys_AES-256-GCM_v1")
	for name, f := range map[string]func(){
		"SetKey":      func() { var k Key; h.SetKey(&k, key) },
		"SetKey/long": func() { var k Key; h.SetKey(&k, long) },
		"MAC": func() {
			var k Key
			var out [Size]byte
			h.SetKey(&k, key)
			h.MAC(&out, &k, msg, key, nil)
		},
		"MACByte": func() {
			var k Key
			var out [Size]byte
			h.SetKey(&k, key)
			h.MACByte(&out, &k, 1)
		},
		"Extract+Expand": func() {
			var prk Key
			var out [64]byte
			h.Extract(&prk, ZeroSalt(), key)
			h.Expand(out[:], &prk, info)
		},
		"HKDF": func() {
			var out [44]byte
			h.HKDF(out[:], ZeroSalt(), key, info)
		},
		"Get+Put": func() { Put(Get()) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations, want 0", name, n)
		}
	}
}
