package session

import (
	"context"
	"sync"

	"github.com/ratchetkit/ratchetkit/store"
)

// addrLocks serializes the operations on one address while letting
// different addresses run in parallel. An entry exists only while some
// call holds or waits for it, so the map does not grow with the number of
// peers ever seen.
type addrLocks struct {
	mu sync.Mutex
	m  map[store.Address]*addrLock
}

// addrLock is a one-slot semaphore, so that waiting can end with the
// caller's context, and the number of calls holding or waiting for it.
type addrLock struct {
	sem  chan struct{}
	refs int
}

var lockPool = sync.Pool{New: func() any { return &addrLock{sem: make(chan struct{}, 1)} }}

// lock waits until the caller is the only one working on addr, or ctx is
// done. On success the caller must call unlock(addr, l).
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
		ls.release(addr, l)
		return nil, ctx.Err()
	}
}

// unlock ends the caller's turn on addr.
func (ls *addrLocks) unlock(addr store.Address, l *addrLock) {
	<-l.sem
	ls.release(addr, l)
}

// release drops one reference, and the entry with the last one.
func (ls *addrLocks) release(addr store.Address, l *addrLock) {
	ls.mu.Lock()
	l.refs--
	if l.refs == 0 {
		delete(ls.m, addr)
		lockPool.Put(l)
	}
	ls.mu.Unlock()
}

// len returns the number of entries, for tests.
func (ls *addrLocks) len() int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return len(ls.m)
}
