package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The database path comes from the environment unless a flag overrides
// it, the server answers on the address it logs, and it stops cleanly when
// its context ends.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CHAT_DB", filepath.Join(dir, "from-env.db"))
	t.Setenv("CHAT_ADDR", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, logs) }()

	url := waitListening(t, logs)
	resp, err := http.Get(url + "/v1/keys/count")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil && err != http.ErrServerClosed {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "from-env.db")); err != nil {
		t.Fatalf("database not at CHAT_DB: %v", err)
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("no stop line in the log")
	}

	// Flags win over the environment; bad settings are errors.
	t.Setenv("CHAT_LOG_LEVEL", "chatty")
	if err := run(context.Background(), nil, &syncBuffer{}); err == nil || !strings.Contains(err.Error(), "log level") {
		t.Fatalf("bad CHAT_LOG_LEVEL: %v", err)
	}
	stopped, stop := context.WithCancel(context.Background())
	stop()
	if err := run(stopped, []string{"-log-level", "warn", "-db", filepath.Join(dir, "flag.db")}, &syncBuffer{}); err != nil {
		t.Fatalf("-log-level over a bad CHAT_LOG_LEVEL: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "flag.db")); err != nil {
		t.Fatalf("database not at -db: %v", err)
	}
	for _, args := range [][]string{
		{"-log-level", "loud"},
		{"-log-level", "info", "-tls-cert", "c.pem"},
		{"-log-level", "info", "stray"},
	} {
		if err := run(context.Background(), args, &syncBuffer{}); err == nil {
			t.Errorf("run %q succeeded", args)
		}
	}
}

// waitListening returns the URL the server logs that it listens on.
func waitListening(t *testing.T, logs *syncBuffer) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, line := range strings.Split(logs.String(), "\n") {
			var l struct{ Msg, URL string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "listening" {
				return l.URL
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listening line in the log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// -invite-codes closes registration to those without a listed code; a
// file without codes, or with a short one, is an error rather than an
// open server.
func TestInviteCodesFlag(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.txt", "# codes for the reading group\n\n  0123456789abcdef0123  \nfedcba9876543210fedc\n")
	base := []string{"-addr", "127.0.0.1:0", "-db", filepath.Join(dir, "s.db")}
	for name, text := range map[string]string{"empty.txt": "# none yet\n\n", "short.txt": "abc\n"} {
		if err := run(context.Background(), append(base, "-invite-codes", write(name, text)), &syncBuffer{}); err == nil {
			t.Errorf("-invite-codes %s: server started", name)
		}
	}
	if err := run(context.Background(), append(base, "-invite-codes", filepath.Join(dir, "missing.txt")), &syncBuffer{}); err == nil {
		t.Error("-invite-codes with a missing file: server started")
	}

	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append(base, "-invite-codes", good), logs) }()
	url := waitListening(t, logs)
	resp, err := http.Post(url+"/v1/register", "application/json", strings.NewReader(`{"name":"x","invite":"not-a-listed-code-at-all"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("registration without a listed code: status %d, want 403", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil && err != http.ErrServerClosed {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"codes":2`) {
		t.Errorf("the log does not say two codes were loaded:\n%s", logs.String())
	}
}

// The log names a PostgreSQL database by host and name, never with the
// password its URL carries.
func TestDBNameHidesPassword(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://chat:s3cret@127.0.0.1:5432/chat?sslmode=disable": "postgres://127.0.0.1:5432/chat",
		"postgresql://chat:s3cret@db/chat":                           "postgres://db/chat",
		"/var/lib/chat/chatserver.db":                                "/var/lib/chat/chatserver.db",
	} {
		if got := dbName(in); got != want || strings.Contains(got, "s3cret") {
			t.Errorf("dbName(%q) = %q, want %q", in, got, want)
		}
	}
}
