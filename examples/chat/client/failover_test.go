package client

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/examples/chat/internal/chattest"
	"github.com/ratchetkit/ratchetkit/examples/chat/server"
)

// A server shutting down gracefully closes connections as going away, and
// the client redials at once rather than after its backoff: behind a load
// balancer (here a forwarder that prefers the first of two instances on
// one PostgreSQL database and falls back to the second) it is back on the
// other instance, and gets what was sent to it meanwhile.
func TestGoingAwayReconnectsAtOnce(t *testing.T) {
	dsn := chattest.PostgresDB(t)
	defer func(d time.Duration) { firstBackoff = d }(firstBackoff)
	firstBackoff = time.Minute // a reconnect that waits for it fails the test

	var addrs []string
	var stops []func() error
	for range 2 {
		srv, err := server.New(server.Config{DBPath: dsn, Logger: slog.New(slog.DiscardHandler), BundleBurst: 100})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		addr, stop := chattest.ServeStoppable(t, srv)
		t.Cleanup(func() { stop() })
		addrs, stops = append(addrs, addr), append(stops, stop)
	}
	front := forwarder(t, addrs)

	alice, aliceEv := openClient(t, "http://"+front, "alice")
	_, bobEv := openClient(t, "http://"+front, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := alice.Send(ctx, "bob", "before"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, func() bool { return len(bobEv.texts("alice")) == 1 })

	if err := stops[0](); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, func() bool {
		return aliceEv.count(EventConnected) == 2 && bobEv.count(EventConnected) == 2
	})
	if err := alice.Send(ctx, "bob", "after"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, func() bool { return len(bobEv.texts("alice")) == 2 })
}

// forwarder listens on loopback and forwards each connection to the
// first of addrs that accepts it.
func forwarder(t *testing.T, addrs []string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for _, a := range addrs {
					up, err := net.Dial("tcp", a)
					if err != nil {
						continue
					}
					defer up.Close()
					go func() { io.Copy(up, c); up.Close() }()
					io.Copy(c, up)
					return
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// openClient registers name on the server at url and connects it.
func openClient(t *testing.T, url, name string) (*Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Open(ctx, Config{Dir: t.TempDir(), Server: url, Name: name, OnEvent: rec.on})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	return c, rec
}

func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
