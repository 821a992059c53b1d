// Package chattest holds what the chat example's tests in several packages
// need alike: fresh account keys, a server on loopback, a PostgreSQL
// schema of its own for each server test, and clients that play the
// attacks on it (slow connections, their lifetimes).
package chattest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/ratchetkit/ratchetkit/examples/chat/server"
	"github.com/ratchetkit/ratchetkit/internal/sqltest"
	"github.com/ratchetkit/ratchetkit/keys"
)

// PostgresDB makes a new, empty schema on the PostgreSQL server that
// RATCHETKIT_POSTGRES_DSN names, dropped when t ends, and returns a URL
// for server.Config.DBPath whose search_path is that schema: servers
// opened on it, in this process or another, share it. Without the
// variable t is skipped, or fails if RATCHETKIT_REQUIRE_POSTGRES is 1 (as
// in CI), as sqltest.PostgresConfig does.
func PostgresDB(t testing.TB) string {
	t.Helper()
	cfg := sqltest.PostgresConfig(t)
	var suffix [6]byte
	rand.Read(suffix[:])
	schema := fmt.Sprintf("chat_%d_%s", os.Getpid(), hex.EncodeToString(suffix[:]))
	admin := stdlib.OpenDB(*cfg)
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("PostgreSQL at RATCHETKIT_POSTGRES_DSN: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping the test schema: %v", err)
		}
	})
	u, err := url.Parse(os.Getenv("RATCHETKIT_POSTGRES_DSN"))
	if err != nil {
		t.Fatal("RATCHETKIT_POSTGRES_DSN is not a URL")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// OpenDB opens the database of a server's DBPath, SQLite file or
// PostgreSQL URL, for a test to look into; it is closed when t ends.
func OpenDB(t testing.TB, dbPath string) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	if u, perr := url.Parse(dbPath); perr == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		db, err = sql.Open("pgx", dbPath)
	} else {
		db, err = sql.Open("sqlite", "file:"+dbPath+"?mode=ro&_pragma=busy_timeout(5000)")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// NewKeys generates an identity key, a signed prekey with id 1 and n
// one-time prekeys numbered from firstOPK, failing t on an error.
func NewKeys(t testing.TB, firstOPK uint32, n int) (*keys.IdentityKeyPair, *keys.SignedPreKey, []*keys.OneTimePreKey) {
	t.Helper()
	ik, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	spk, err := keys.GenerateSignedPreKey(ik, 1)
	if err != nil {
		t.Fatal(err)
	}
	var opks []*keys.OneTimePreKey
	if n > 0 {
		if opks, err = keys.GenerateOneTimePreKeys(firstOPK, n); err != nil {
			t.Fatal(err)
		}
	}
	return ik, spk, opks
}

// Trickle connects to addr, sends head at once, then one more byte every
// 100 ms until the server closes the connection or stop is closed. The
// channel receives how long the connection lived once the server has
// closed it. The connection is closed when the test ends.
func Trickle(t testing.TB, addr, head string, stop <-chan struct{}) <-chan time.Duration {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	lived := make(chan time.Duration, 1)
	start := time.Now()
	go func() {
		if _, err := io.WriteString(c, head); err != nil {
			return
		}
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte{' '}); err != nil {
				return
			}
		}
	}()
	go func() {
		// Whatever the server answers, the connection's end is what counts.
		io.Copy(io.Discard, c)
		lived <- time.Since(start)
	}()
	return lived
}

// Lifetimes waits up to d for each of the connections of Trickle to be
// closed and returns, shortest first, how long those that were closed
// lived.
func Lifetimes(conns []<-chan time.Duration, d time.Duration) []time.Duration {
	deadline := time.After(d)
	var lives []time.Duration
	for _, l := range conns {
		select {
		case lived := <-l:
			lives = append(lives, lived)
		case <-deadline:
			slices.Sort(lives)
			return lives
		}
	}
	slices.Sort(lives)
	return lives
}

// WebSocketUpgrade is the head of a WebSocket handshake for token followed
// by the start of a masked text frame of 1000 bytes: with Trickle, a frame
// that arrives a byte at a time.
func WebSocketUpgrade(token string) string {
	return "GET /v1/ws HTTP/1.1\r\nHost: chat\r\nAuthorization: Bearer " + token +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n" +
		"\x81\xfe\x03\xe8mask"
}

// Serve runs srv.Serve on a port of 127.0.0.1 until the test ends, and
// returns its address. Cleanups run last first: register srv.Close before
// calling Serve, and closing clients after.
func Serve(t testing.TB, srv *server.Server) string {
	t.Helper()
	addr, stop := ServeStoppable(t, srv)
	t.Cleanup(func() { stop() })
	return addr
}

// ServeStoppable runs srv.Serve on a port of 127.0.0.1 and returns its
// address and a function that shuts it down gracefully, returning Serve's
// error; the function may be called more than once.
func ServeStoppable(t testing.TB, srv *server.Server) (addr string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, "", "") }()
	stopOnce := sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	return ln.Addr().String(), stopOnce
}
