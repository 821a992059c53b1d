package ratchet

// skippedStore holds the message keys of skipped messages, keyed by
// (ratchet key, N) as in the specification's MKSKIPPED, in the order they
// were stored.
//
// Keys are derived chain by chain in increasing N, so the store is a list of
// runs: each run (a skippedChain) shares one ratchet key, stored once, and
// covers a contiguous range of entries with strictly increasing N. Lookup
// scans the runs, newest first, for the ratchet key and binary-searches N.
// A used key is only marked dead (and wiped) in place; dead slots are
// reclaimed when they reach the front or when the slice is compacted.
//
// Memory: 40 bytes per slot (N, a flag, the 32-byte key) and 56 per run.
// The slice grows to at most twice the cap on live keys: it is compacted
// instead of grown once half of it is dead or evicted, so every operation
// is amortized constant time and memory stays within 80 bytes per allowed
// key, 40 bytes per key when none has been used out of order.
type skippedStore struct {
	entries []skippedKey // slots; entries[head:] are in use
	head    int
	live    int
	chains  []skippedChain // oldest first; they tile entries[chains[0].start:]
}

type skippedKey struct {
	n    uint32
	dead bool
	mk   [32]byte
}

type skippedChain struct {
	pub        [32]byte
	start, end int // entries[max(start, head):end]
	live       int
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
			if st.entries[m].n < n {
				lo = m + 1
			} else {
				hi = m
			}
		}
		if lo < c.end && st.entries[lo].n == n && !st.entries[lo].dead {
			return lo, ci
		}
	}
	return -1, -1
}

// remove deletes the key in slot i of run ci.
func (st *skippedStore) remove(i, ci int) {
	e := &st.entries[i]
	clear(e.mk[:])
	e.dead = true
	st.live--
	st.chains[ci].live--
	st.trimFront()
}

// trimFront moves head past dead slots and drops runs that lie wholly
// before it, keeping entries[head] live (or head == len(entries)).
func (st *skippedStore) trimFront() {
	for st.head < len(st.entries) && st.entries[st.head].dead {
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
	if st.head == len(st.entries) {
		st.entries = st.entries[:0]
		st.head = 0
	}
}

// evictOldest deletes the oldest live key.
func (st *skippedStore) evictOldest() {
	st.remove(st.head, 0)
}

// add stores (pub, n, mk), keeping at most maxKeys live keys by evicting
// the oldest. If dedup is set, some run may already hold (pub, n) (a peer
// reusing a ratchet key): that older key is deleted, as a map assignment in
// the specification would replace it.
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
		st.evictOldest()
	}
	if len(st.entries) == cap(st.entries) {
		st.makeRoom(maxKeys)
	}
	var c *skippedChain
	if k := len(st.chains); k > 0 {
		c = &st.chains[k-1]
		if c.pub != *pub || c.end != len(st.entries) || st.entries[c.end-1].n >= n {
			c = nil
		}
	}
	if c == nil {
		st.chains = append(st.chains, skippedChain{pub: *pub, start: len(st.entries), end: len(st.entries)})
		c = &st.chains[len(st.chains)-1]
	}
	st.entries = append(st.entries, skippedKey{n: n, mk: *mk})
	c.end++
	c.live++
	st.live++
}

// makeRoom frees slots at the end of a full slice: by compacting when at
// least half of it is free, else by moving to a larger one (at most
// 2·maxKeys slots, where live < maxKeys makes compaction always win).
func (st *skippedStore) makeRoom(maxKeys int) {
	size := len(st.entries)
	if size > 0 && 2*st.live <= size {
		full := st.entries
		st.compact(full[:0])
		clear(full[len(st.entries):]) // vacated slots
		return
	}
	old := st.entries[:cap(st.entries)]
	st.compact(make([]skippedKey, 0, min(max(2*size, 8), 2*maxKeys)))
	clear(old)
}

// compact copies the live keys, in order, to the front of dst (which may
// share the current slice's array: slots are only ever copied towards the
// front) and makes it the store's slice; empty runs are dropped.
func (st *skippedStore) compact(dst []skippedKey) {
	old := st.entries
	k := 0
	for _, c := range st.chains {
		start := len(dst)
		for i := max(c.start, st.head); i < c.end; i++ {
			if !old[i].dead {
				dst = append(dst, old[i])
			}
		}
		if len(dst) > start {
			st.chains[k] = skippedChain{pub: c.pub, start: start, end: len(dst), live: len(dst) - start}
			k++
		}
	}
	clear(st.chains[k:])
	st.chains = st.chains[:k]
	st.entries = dst
	st.head = 0
}

// clear wipes every key and empties the store.
func (st *skippedStore) clear() {
	clear(st.entries[:cap(st.entries)])
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
