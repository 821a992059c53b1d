package ratchet

// skippedStore holds the message keys of skipped messages, keyed by
// (ratchet key, N) as in the specification's MKSKIPPED, in the order they
// were stored, which is the eviction order.
//
// Keys are derived chain by chain in increasing N, so the store is a list of
// runs: each run (a skippedChain) shares one ratchet key, stored once, and
// covers consecutive slots with strictly increasing N. Lookup scans the
// runs, newest first, for the ratchet key and binary-searches N.
//
// The slots form a ring addressed by logical indices: slot i lives at
// ring[i mod len(ring)], the used window is [head, tail), and head is kept
// below len(ring). Evicting the oldest key only advances head, so a store
// that is full and keeps receiving new keys never moves or grows. A used
// key is wiped and marked dead in place; dead slots are reclaimed when they
// reach head, or by compacting the ring when it has no free slot.
//
// Memory: 40 bytes per slot (N, a flag, the 32-byte key) plus 56 per run.
// The ring grows on demand to MaxSkippedKeys slots; only when keys are used
// out of order while it is nearly full may it grow to twice that, so that
// compaction stays amortized constant time. So a stored key costs 40 bytes,
// and never more than 80.
type skippedStore struct {
	ring       []skippedKey
	head, tail int
	live       int
	chains     []skippedChain // oldest first; they tile [chains[0].start, tail)
}

type skippedKey struct {
	n    uint32
	dead bool
	mk   [32]byte
}

type skippedChain struct {
	pub        [32]byte
	start, end int // logical; the run's slots are [max(start, head), end)
	live       int
}

// at returns slot i, for head ≤ i < tail.
func (st *skippedStore) at(i int) *skippedKey {
	if i >= len(st.ring) {
		i -= len(st.ring)
	}
	return &st.ring[i]
}

// has reports whether some run has ratchet key pub.
func (st *skippedStore) has(pub *[32]byte) bool {
	for i := range st.chains {
		if st.chains[i].pub == *pub {
			return true
		}
	}
	return false
}

// find returns the slot of the live key (pub, n) and the index of its run,
// or -1, -1.
func (st *skippedStore) find(pub *[32]byte, n uint32) (int, int) {
	for ci := len(st.chains) - 1; ci >= 0; ci-- {
		c := &st.chains[ci]
		if c.live == 0 || c.pub != *pub {
			continue
		}
		lo, hi := max(c.start, st.head), c.end
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if st.at(m).n < n {
				lo = m + 1
			} else {
				hi = m
			}
		}
		if lo < c.end {
			if e := st.at(lo); e.n == n && !e.dead {
				return lo, ci
			}
		}
	}
	return -1, -1
}

// key returns the message key in slot i.
func (st *skippedStore) key(i int) []byte { return st.at(i).mk[:] }

// remove deletes the key in slot i of run ci.
func (st *skippedStore) remove(i, ci int) {
	st.kill(i, ci)
	if i == st.head {
		st.trimFront()
	}
}

// trimFront moves head past dead slots and drops the runs that lie wholly
// before it, keeping slot head live (or the window empty).
func (st *skippedStore) trimFront() {
	for st.head < st.tail && st.at(st.head).dead {
		st.head++
	}
	k := 0
	for k < len(st.chains) && st.chains[k].end <= st.head {
		k++
	}
	if k > 0 {
		n := copy(st.chains, st.chains[k:])
		clear(st.chains[n:])
		st.chains = st.chains[:n]
	}
	switch {
	case st.head == st.tail:
		st.head, st.tail = 0, 0
	case st.head >= len(st.ring):
		// Rebase, keeping every logical index below 2·len(ring).
		st.head -= len(st.ring)
		st.tail -= len(st.ring)
		for i := range st.chains {
			st.chains[i].start -= len(st.ring)
			st.chains[i].end -= len(st.ring)
		}
	}
}

// add stores (pub, n, mk), keeping at most maxKeys live keys by evicting
// the oldest. If dedup is set, some run may already hold (pub, n) (only a
// peer reusing a ratchet key causes that): the older key is deleted, as a
// map assignment in the specification would replace it.
func (st *skippedStore) add(pub *[32]byte, n uint32, mk *[32]byte, maxKeys int, dedup bool) {
	if maxKeys == 0 {
		return
	}
	if dedup {
		if i, ci := st.find(pub, n); i >= 0 {
			st.remove(i, ci)
		}
	}
	if st.live >= maxKeys {
		st.remove(st.head, 0) // evict the oldest
	}
	if st.tail-st.head == len(st.ring) {
		st.makeRoom(maxKeys)
	}
	var c *skippedChain
	if k := len(st.chains); k > 0 {
		c = &st.chains[k-1]
		if c.pub != *pub || st.at(c.end-1).n >= n {
			c = nil
		}
	}
	if c == nil {
		st.chains = append(st.chains, skippedChain{pub: *pub, start: st.tail, end: st.tail})
		c = &st.chains[len(st.chains)-1]
	}
	*st.at(st.tail) = skippedKey{n: n, mk: *mk}
	st.tail++
	c.end++
	c.live++
	st.live++
}

// makeRoom frees a slot in a ring with none free (and, after eviction,
// fewer than maxKeys live keys): by compacting when at least half of it is
// dead, else by moving to a larger ring, first of up to maxKeys slots, then
// of 2·maxKeys, where compaction always wins.
func (st *skippedStore) makeRoom(maxKeys int) {
	size := len(st.ring)
	if size > 0 && 2*st.live <= size {
		st.compactInPlace()
		return
	}
	newSize := min(max(2*size, 8), maxKeys)
	if newSize <= size {
		newSize = 2 * maxKeys
	}
	old := st.ring
	ring := make([]skippedKey, newSize)
	w := 0
	st.rebuild(func(e *skippedKey) int { ring[w] = *e; w++; return w - 1 })
	st.ring, st.head, st.tail = ring, 0, w
	clear(old)
}

// compactInPlace moves the live keys of the window to its front, in order.
// Slots only ever move to lower logical indices, so none is overwritten
// before it is read.
func (st *skippedStore) compactInPlace() {
	w := st.head
	st.rebuild(func(e *skippedKey) int {
		d := st.at(w)
		if d != e {
			*d = *e
		}
		w++
		return w - 1
	})
	for i := w; i < st.tail; i++ {
		*st.at(i) = skippedKey{}
	}
	st.tail = w
}

// rebuild passes every live key, oldest first, to put, which stores it and
// returns its new logical index, and rewrites the runs to match, dropping
// empty ones.
func (st *skippedStore) rebuild(put func(e *skippedKey) int) {
	k := 0
	for _, c := range st.chains {
		start, end := -1, -1
		for i := max(c.start, st.head); i < c.end; i++ {
			if e := st.at(i); !e.dead {
				end = put(e) + 1
				if start < 0 {
					start = end - 1
				}
			}
		}
		if start >= 0 {
			st.chains[k] = skippedChain{pub: c.pub, start: start, end: end, live: end - start}
			k++
		}
	}
	clear(st.chains[k:])
	st.chains = st.chains[:k]
}

// each calls f on every live key, oldest first.
func (st *skippedStore) each(f func(pub *[32]byte, e *skippedKey)) {
	for ci := range st.chains {
		c := &st.chains[ci]
		for i := max(c.start, st.head); i < c.end; i++ {
			if e := st.at(i); !e.dead {
				f(&c.pub, e)
			}
		}
	}
}

// clear wipes every key and empties the store.
func (st *skippedStore) clear() {
	clear(st.ring)
	*st = skippedStore{}
}

// marshaledSize is the length of the skipped-key vector's contents.
func (st *skippedStore) marshaledSize() int {
	n := 0
	for _, c := range st.chains {
		if c.live > 0 {
			n += 32 + 3 + c.live*skippedKeySize
		}
	}
	return n
}

// kill deletes the key in slot i of run ci without moving head; the caller
// calls trimFront afterwards.
func (st *skippedStore) kill(i, ci int) {
	e := st.at(i)
	clear(e.mk[:])
	e.dead = true
	st.live--
	st.chains[ci].live--
}

// count returns the number of live keys stored under pub.
func (st *skippedStore) count(pub *[32]byte) int {
	n := 0
	for i := range st.chains {
		if st.chains[i].pub == *pub {
			n += st.chains[i].live
		}
	}
	return n
}

// dropOldest deletes the k oldest live keys stored under pub (all of them
// if there are fewer): a Signal session's per-chain limit, and the end of
// a dropped receiving chain.
func (st *skippedStore) dropOldest(pub *[32]byte, k int) {
	for ci := range st.chains {
		c := &st.chains[ci]
		if c.pub != *pub {
			continue
		}
		for i := max(c.start, st.head); i < c.end && k > 0 && c.live > 0; i++ {
			if !st.at(i).dead {
				st.kill(i, ci)
				k--
			}
		}
		if k == 0 {
			break
		}
	}
	st.trimFront()
}

// removeAll deletes every key stored under pub.
func (st *skippedStore) removeAll(pub *[32]byte) { st.dropOldest(pub, st.count(pub)) }
