package session

import (
	"sync"

	"github.com/ratchetkit/ratchetkit/store"
)

// stateCache keeps the addrStates of recently used addresses between
// operations, so that a steady-state message skips the read transaction
// and the parsing of its record: the Manager's write-through cache.
//
// Why it is correct: an operation takes its address's state out of the
// cache under the address's lock and puts it back only if it holds
// exactly what the store holds (after a successful write, or when the
// operation wrote nothing and changed nothing). Every write compares the
// stored record and trusted key with the state's, as it did when each
// operation read the store first, so a change by another Manager or
// process is found at the next write, which then rereads the store and
// redoes the operation. An operation that fails without writing may have
// used a state that another process has since replaced; it changed
// nothing, so it counts as having run before that write.
//
// Operations of this Manager that change an address without going
// through an addrState (DeleteSession, ApproveIdentity, ResetIdentity)
// drop its entry under the address's lock.
type stateCache struct {
	mu  sync.Mutex
	max int
	m   map[store.Address]*addrState
}

// take removes addr's state from the cache and returns it, or nil.
func (c *stateCache) take(addr store.Address) *addrState {
	if c.max == 0 {
		return nil
	}
	c.mu.Lock()
	s := c.m[addr]
	if s != nil {
		delete(c.m, addr)
	}
	c.mu.Unlock()
	return s
}

// put caches s for its address, evicting another entry if the cache is
// full, or frees s if the cache is off.
func (c *stateCache) put(s *addrState) {
	if c.max == 0 {
		s.free()
		return
	}
	s.ctx = nil
	var evicted *addrState
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[store.Address]*addrState)
	}
	if len(c.m) >= c.max {
		// Any entry will do: map order is random enough to keep the hot
		// addresses cached most of the time, and costs no bookkeeping.
		for a, e := range c.m {
			evicted = e
			delete(c.m, a)
			break
		}
	}
	c.m[s.addr] = s
	c.mu.Unlock()
	if evicted != nil {
		evicted.free()
	}
}

// drop removes and frees addr's state, if cached.
func (c *stateCache) drop(addr store.Address) {
	if s := c.take(addr); s != nil {
		s.free()
	}
}

// len returns the number of cached states, for tests.
func (c *stateCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
