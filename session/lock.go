package session

import (
	"context"
	"sync"

	"github.com/ratchetkit/ratchetkit/store"
)

// addrLocks serializes the operations on one address while letting
// different addresses run in parallel, and keeps, for up to max
// addresses, the state the last operation left: the Manager's
// write-through cache of parsed records.
//
// Why the cache is correct: an operation leaves its state in the cache
// only if it holds exactly what the store holds (after a successful
// write, or when the operation wrote nothing and changed nothing).
// Every write compares the stored record and trusted key with the
// state's, as it did when each operation read the store first, so a
// change by another Manager or process is found at the next write, which
// then rereads the store and redoes the operation. An operation that
// fails without writing may have used a state that another process has
// since replaced; it changed nothing, so it counts as having run before
// that write. Operations of this Manager that change an address without
// an addrState (DeleteSession, ApproveIdentity, ResetIdentity) drop its
// cached state under the address's lock.
//
// An entry exists only while some
// call holds or waits for it or it holds a cached state, so the map does
// not grow with the number of peers ever seen. Keeping the cache in the
// lock's entry costs a steady-state operation no lookup or mutex beyond
// the lock's own.
type addrLocks struct {
	mu     sync.Mutex
	m      map[store.Address]*addrLock
	max    int // the most cached states
	cached int // entries with a state
}

// addrLock is a one-slot semaphore, so that waiting can end with the
// caller's context, the number of calls holding or waiting for it, and
// the address's cached state. state is read and written only by the
// holder of sem, and dropped by eviction only when refs is zero.
type addrLock struct {
	sem   chan struct{}
	refs  int
	state *addrState
}

var lockPool = sync.Pool{New: func() any { return &addrLock{sem: make(chan struct{}, 1)} }}

// lock waits until the caller is the only one working on addr, or ctx is
// done. On success the caller must call unlock(addr, l, ...).
func (ls *addrLocks) lock(ctx context.Context, addr store.Address) (*addrLock, error) {
	ls.mu.Lock()
	if ls.m == nil {
		ls.m = make(map[store.Address]*addrLock)
	}
	l := ls.m[addr]
	if l == nil {
		l = lockPool.Get().(*addrLock)
		ls.m[addr] = l
	}
	l.refs++
	ls.mu.Unlock()

	select {
	case l.sem <- struct{}{}:
		return l, nil
	default:
	}
	select {
	case l.sem <- struct{}{}:
		return l, nil
	case <-ctx.Done():
		ls.mu.Lock()
		ls.release(addr, l)
		ls.mu.Unlock()
		return nil, ctx.Err()
	}
}

// unlock ends the caller's turn on addr, leaving keep (which may be nil)
// as the address's cached state. If that makes more than max states
// cached, the state of an address nobody holds is evicted, and returned
// for the caller to free outside the lock; with max zero, keep itself is.
func (ls *addrLocks) unlock(addr store.Address, l *addrLock, keep *addrState) (evicted *addrState) {
	ls.mu.Lock()
	switch {
	case keep != nil && l.state == nil:
		ls.cached++
	case keep == nil && l.state != nil:
		ls.cached--
	}
	l.state = keep
	<-l.sem
	if ls.cached > ls.max {
		evicted = ls.evict(l)
	}
	ls.release(addr, l)
	ls.mu.Unlock()
	return evicted
}

// evict drops a cached state of an address nobody holds or waits for,
// or else l's own, and returns it. Map order is random enough to keep
// the busiest addresses cached most of the time, at no bookkeeping cost.
// ls.mu is held.
func (ls *addrLocks) evict(l *addrLock) *addrState {
	if ls.max > 0 {
		for a, e := range ls.m {
			if e != l && e.refs == 0 && e.state != nil {
				s := e.state
				e.state = nil
				ls.cached--
				delete(ls.m, a)
				lockPool.Put(e)
				return s
			}
		}
	}
	s := l.state
	if s != nil {
		l.state = nil
		ls.cached--
	}
	return s
}

// release drops one reference, and the entry with the last one unless it
// holds a cached state. ls.mu is held.
func (ls *addrLocks) release(addr store.Address, l *addrLock) {
	l.refs--
	if l.refs == 0 && l.state == nil {
		delete(ls.m, addr)
		lockPool.Put(l)
	}
}

// drop removes every cached state, for tests; it returns them.
func (ls *addrLocks) dropAll() []*addrState {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	var out []*addrState
	for a, e := range ls.m {
		if e.refs == 0 && e.state != nil {
			out = append(out, e.state)
			e.state = nil
			ls.cached--
			delete(ls.m, a)
			lockPool.Put(e)
		}
	}
	return out
}

// len returns the number of entries that hold no cached state, which
// exist only while some call holds or waits for them, for tests.
func (ls *addrLocks) len() int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return len(ls.m) - ls.cached
}
