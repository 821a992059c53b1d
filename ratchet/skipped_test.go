package ratchet

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	mrand "math/rand/v2"
	"testing"
	"unsafe"
)

// TestSkippedStoreModel drives the store with random additions (including
// repeated (key, N) pairs and numbers out of order, which start new runs)
// and removals, against a plain ordered list with the profile's semantics.
func TestSkippedStoreModel(t *testing.T) {
	type ent struct {
		pub byte
		n   uint32
		mk  [32]byte
	}
	rounds := 8000
	if testing.Short() {
		rounds = 2000
	}
	for _, maxKeys := range []int{1, 2, 5, 16, 100} {
		rng := mrand.New(mrand.NewPCG(uint64(maxKeys), 7))
		var st skippedStore
		var model []ent
		pubOf := func(b byte) *[32]byte { var p [32]byte; p[0] = b; return &p }
		next := map[byte]uint32{}
		for r := range rounds {
			switch op := rng.IntN(10); {
			case op < 6:
				p := byte(rng.IntN(4))
				n := next[p]
				if rng.IntN(5) == 0 {
					n = uint32(rng.IntN(int(n) + 1)) // a number seen before, or out of order
				} else {
					next[p]++
				}
				var mk [32]byte
				binary.LittleEndian.PutUint64(mk[:], uint64(r)+1)
				st.add(pubOf(p), n, &mk, maxKeys, st.has(pubOf(p)))
				for i, e := range model {
					if e.pub == p && e.n == n {
						model = append(model[:i:i], model[i+1:]...)
						break
					}
				}
				model = append(model, ent{p, n, mk})
				if len(model) > maxKeys {
					model = model[1:]
				}
			case op < 9 && len(model) > 0:
				k := rng.IntN(len(model))
				e := model[k]
				i, c := st.find(pubOf(e.pub), e.n)
				if i < 0 || st.at(i).mk != e.mk {
					t.Fatalf("max %d round %d: key (%d, %d) not found", maxKeys, r, e.pub, e.n)
				}
				st.remove(i, c)
				model = append(model[:k:k], model[k+1:]...)
			default:
				p, n := byte(rng.IntN(5)), uint32(rng.IntN(int(next[0])+2))
				found := false
				for _, e := range model {
					found = found || e.pub == p && e.n == n
				}
				if i, _ := st.find(pubOf(p), n); (i >= 0) != found {
					t.Fatalf("max %d round %d: find(%d, %d) = %d, model %v", maxKeys, r, p, n, i, found)
				}
			}
			got := skippedList(&st)
			if len(got) != len(model) || st.live != len(model) {
				t.Fatalf("max %d round %d: %d keys (live %d), model %d", maxKeys, r, len(got), st.live, len(model))
			}
			for k, g := range got {
				if g.RatchetKey[0] != model[k].pub || g.N != model[k].n || !bytes.Equal(g.MK, model[k].mk[:]) {
					t.Fatalf("max %d round %d: key %d differs from the model", maxKeys, r, k)
				}
			}
			if len(st.ring) > 2*maxKeys {
				t.Fatalf("max %d: %d slots", maxKeys, len(st.ring))
			}
			checkStoreInvariants(t, &st)
		}
	}
}

func checkStoreInvariants(t *testing.T, st *skippedStore) {
	t.Helper()
	if st.head < 0 || st.head > len(st.ring) || st.tail < st.head || st.tail-st.head > len(st.ring) {
		t.Fatalf("window [%d, %d) in a ring of %d", st.head, st.tail, len(st.ring))
	}
	if len(st.chains) > 0 && (st.chains[0].start > st.head || st.chains[len(st.chains)-1].end != st.tail) {
		t.Fatalf("runs do not cover the window")
	}
	live := 0
	inWindow := make([]bool, len(st.ring))
	for ci, c := range st.chains {
		if ci > 0 && c.start != st.chains[ci-1].end {
			t.Fatalf("runs do not tile the window")
		}
		l := 0
		for i := max(c.start, st.head); i < c.end; i++ {
			inWindow[i%len(st.ring)] = true
			if i > max(c.start, st.head) && st.at(i).n <= st.at(i-1).n {
				t.Fatalf("run not increasing")
			}
			if !st.at(i).dead {
				l++
			} else if st.at(i).mk != ([32]byte{}) {
				t.Fatalf("dead slot not wiped")
			}
		}
		if l != c.live {
			t.Fatalf("run live count %d, counted %d", c.live, l)
		}
		live += l
	}
	if live != st.live {
		t.Fatalf("live %d, counted %d", st.live, live)
	}
	if st.head < st.tail && st.at(st.head).dead {
		t.Fatalf("head slot dead")
	}
	for i := range st.ring {
		if !inWindow[i] && st.ring[i].mk != ([32]byte{}) {
			t.Fatalf("slot outside the window holds a key")
		}
	}
}

// TestFlood sends gap-sized messages, each making the receiver store the
// maximum (MaxSkip keys of the old chain at a DH step plus MaxSkip of the
// new chain), and checks that the store never holds more than
// MaxSkippedKeys keys, keeps the newest, and stays within its memory bound.
func TestFlood(t *testing.T) {
	rounds := 6
	if testing.Short() {
		rounds = 2
	}
	alice, bob := newPair(t, nil)
	mustDecrypt(t, bob, mustEncrypt(t, alice, "start"), "start")
	for r := range rounds {
		mustDecrypt(t, alice, mustEncrypt(t, bob, "reply"), "reply")
		// 1001 messages on Alice's new chain: Bob skips 1000 of them...
		var last []byte
		for range DefaultMaxSkip + 1 {
			last = mustEncrypt(t, alice, "flood")
		}
		mustDecrypt(t, bob, last, "flood")
		// ...and 1000 more on the old chain at the next DH step, plus
		// 1000 on the chain after.
		for range DefaultMaxSkip {
			mustEncrypt(t, alice, "flood")
		}
		mustDecrypt(t, alice, mustEncrypt(t, bob, "reply"), "reply")
		for range DefaultMaxSkip + 1 {
			last = mustEncrypt(t, alice, "flood")
		}
		mustDecrypt(t, bob, last, "flood")
		st := &bob.skipped
		if st.live != DefaultMaxSkippedKeys {
			t.Fatalf("round %d: %d keys stored, want the cap %d", r, st.live, DefaultMaxSkippedKeys)
		}
		if got := len(st.ring); got != DefaultMaxSkippedKeys {
			t.Fatalf("round %d: %d slots", r, got)
		}
		// The newest keys survive: the old chain's 1000 and the new one's.
		list := skippedList(st)
		if list[0].N != 1001 || list[999].N != 2000 || list[1000].N != 0 || list[1999].N != 999 {
			t.Fatalf("round %d: kept keys %d..%d, %d..%d", r, list[0].N, list[999].N, list[1000].N, list[1999].N)
		}
		if len(st.chains) != 2 {
			t.Fatalf("round %d: %d runs", r, len(st.chains))
		}
		b := state(t, bob)
		if len(b) > 2000*36+2*(32+3)+400 {
			t.Fatalf("state of %d bytes", len(b))
		}
	}
	slot := unsafe.Sizeof(skippedKey{})
	t.Logf("skipped keys: %d bytes per slot, %d slots for %d keys (%.1f bytes per key); state %d bytes",
		slot, len(bob.skipped.ring), bob.skipped.live,
		float64(uintptr(len(bob.skipped.ring))*slot)/float64(bob.skipped.live), len(state(t, bob)))
}

// TestForgedFlood sends forged gap-sized messages: each costs the receiver
// its chain steps but stores nothing and changes nothing.
func TestForgedFlood(t *testing.T) {
	alice, bob := newPair(t, nil)
	mustDecrypt(t, bob, mustEncrypt(t, alice, "start"), "start")
	mustDecrypt(t, alice, mustEncrypt(t, bob, "reply"), "reply")
	m := mustEncrypt(t, alice, "x")
	before := state(t, bob)
	forged := bytes.Clone(m)
	for i := range 50 {
		binary.BigEndian.PutUint32(forged[34:], uint32(i%2)*DefaultMaxSkip)
		binary.BigEndian.PutUint32(forged[38:], DefaultMaxSkip)
		if i%3 == 0 {
			rand.Read(forged[2:34])
			forged[33] &= 0x7f
		}
		rand.Read(forged[wireHeaderSize:])
		if _, err := bob.Decrypt(forged); err == nil {
			t.Fatal("forgery accepted")
		}
	}
	if !bytes.Equal(before, state(t, bob)) || bob.skipped.live != 0 || len(bob.skipped.ring) != 0 {
		t.Fatal("forged messages changed the state or allocated skipped-key storage")
	}
	mustDecrypt(t, bob, m, "x")
}
