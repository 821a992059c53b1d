package client

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// cutter forwards loopback connections to addr and can drop them all at
// once, as a dying instance does.
type cutter struct {
	mu    sync.Mutex
	conns []net.Conn
}

func newCutter(t *testing.T, addr string) (*cutter, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ct := &cutter{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			ct.mu.Lock()
			ct.conns = append(ct.conns, c, up)
			ct.mu.Unlock()
			go func() { copyClose(up, c) }()
			go func() { copyClose(c, up) }()
		}
	}()
	t.Cleanup(ct.cut)
	return ct, "http://" + ln.Addr().String()
}

func copyClose(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

// cut closes every connection forwarded so far.
func (ct *cutter) cut() {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	for _, c := range ct.conns {
		c.Close()
	}
	ct.conns = nil
}

// The server stores an envelope and answers "sent", and the connection
// drops while the client removes the envelope from its outbox. The SQLite
// driver then reports the context's error although the delete went
// through (modernc.org/sqlite does so whenever a statement's context ends
// while it runs), which the fake removeOutbox below reproduces
// deterministically. Send must still return nil: the server has the
// envelope, and nothing is left in the outbox to confirm it later. Before
// settle took the delete off the connection's context, this Send waited
// for its context to end ("message queued, not yet stored by the
// server"), the load test's stuck send.
func TestSentConfirmedWhenConnectionDrops(t *testing.T) {
	ts := newServer(t)
	front, url := newCutter(t, strings.TrimPrefix(ts.url, "http://"))
	deleting := make(chan struct{}, 1)
	removeOutbox = func(ctx context.Context, db *sql.DB, id int64) error {
		if err := deleteOutbox(context.WithoutCancel(ctx), db, id); err != nil {
			return err
		}
		select {
		case deleting <- struct{}{}:
		default:
		}
		// Like the driver, only a context that can end changes the result.
		if ctx.Done() == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return errors.New("test: the connection did not drop")
		}
	}
	t.Cleanup(func() { removeOutbox = deleteOutbox })

	var ra, rb recorder
	withFront := func(cfg *Config) { cfg.Server = url }
	alice := ts.openWith(t, t.TempDir(), "alice", &ra, withFront)
	bob := ts.openWith(t, t.TempDir(), "bob", &rb, withFront)
	for _, c := range []*Client{alice, bob} {
		if err := c.Connect(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		select {
		case <-deleting:
			front.cut()
		case <-t.Context().Done():
		}
	}()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := alice.Send(sctx, "bob", "first"); err != nil {
		t.Fatalf("send whose confirmation came as the connection dropped: %v", err)
	}
	waitFor(t, "alice to reconnect", func() bool { return ra.count(EventConnected) >= 2 })
	if err := alice.Send(ctx(t), "bob", "second"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob's messages", func() bool { return len(rb.texts("alice")) == 2 })
	if got := rb.texts("alice"); strings.Join(got, ",") != "first,second" {
		t.Fatalf("bob got %q", got)
	}
	if out, err := listOutbox(ctx(t), alice.chat); err != nil || len(out) != 0 {
		t.Fatalf("outbox after both sends: %d envelopes, %v", len(out), err)
	}
}
