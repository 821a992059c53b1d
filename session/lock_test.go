package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/store"
)

func TestAddrLocks(t *testing.T) {
	var ls addrLocks
	const addrs, workers, rounds = 5, 8, 200
	var inside [addrs]atomic.Int32
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				a := (w + i) % addrs
				addr := store.Address{Name: fmt.Sprint("peer", a)}
				l, err := ls.lock(context.Background(), addr)
				if err != nil {
					t.Error(err)
					return
				}
				if inside[a].Add(1) != 1 {
					t.Error("two holders of one address")
				}
				inside[a].Add(-1)
				ls.unlock(addr, l, nil)
			}
		}()
	}
	wg.Wait()
	if n := ls.len(); n != 0 {
		t.Errorf("%d entries left", n)
	}
}

func TestAddrLocksParallel(t *testing.T) {
	// Holding one address does not block another.
	var ls addrLocks
	a, b := store.Address{Name: "a"}, store.Address{Name: "b"}
	la, err := ls.lock(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lb, err := ls.lock(ctx, b)
	if err != nil {
		t.Fatalf("locking b while a is held: %v", err)
	}
	ls.unlock(b, lb, nil)
	ls.unlock(a, la, nil)
}

func TestAddrLocksContext(t *testing.T) {
	var ls addrLocks
	addr := store.Address{Name: "x", DeviceID: 1}
	l, err := ls.lock(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := ls.lock(ctx, addr)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("waiting with a canceled context: %v", err)
	}
	if n := ls.len(); n != 1 {
		t.Fatalf("%d entries while one is held, want 1", n)
	}
	ls.unlock(addr, l, nil)
	if n := ls.len(); n != 0 {
		t.Fatalf("%d entries left", n)
	}
	// A free lock is taken whatever the context; the store's transaction
	// checks the context next.
	if l, err := ls.lock(ctx, addr); err != nil {
		t.Fatalf("free lock with a canceled context: %v", err)
	} else {
		ls.unlock(addr, l, nil)
	}
}
