package server_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
	"github.com/ratchetkit/ratchetkit/examples/chat/server"
)

// dbFiles returns the contents of the database file and its -wal and -shm
// files (nil for one that does not exist).
func dbFiles(t *testing.T, path string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(path + suffix)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		out["db"+suffix] = b
	}
	return out
}

// holding names the files that contain any of bodies.
func holding(files map[string][]byte, bodies [][]byte) []string {
	var in []string
	for name, b := range files {
		for _, body := range bodies {
			if bytes.Contains(b, body) {
				in = append(in, name)
				break
			}
		}
	}
	return in
}

// Envelopes that were delivered and acknowledged leave no trace in the
// database or its write-ahead log once the next checkpoint has run: small
// ones stored in the table's pages and large ones in overflow pages. The
// files are readable by their owner only.
func TestDeletedEnvelopesLeaveNoTrace(t *testing.T) {
	ts := newServer(t, sqliteBackend, server.Config{})
	alice := ts.register(t, "alice", 0)
	bob := ts.register(t, "bob", 0)
	wa := ts.dial(t, alice.token)

	var bodies [][]byte
	for i := range 24 {
		size := 200
		if i%4 == 0 {
			size = api.MaxEnvelopeSize
		}
		body := bytes.Repeat(fmt.Appendf(nil, "<envelope %02d body>", i), size/18)
		bodies = append(bodies, body[:64]) // a prefix unique to this envelope
		wa.send(api.Frame{Type: api.FrameSend, ID: fmt.Sprint(i), To: "bob", Body: body})
		wa.readType(api.FrameSent)
	}
	// The scan can see them while they are queued.
	if in := holding(dbFiles(t, ts.dbPath), bodies); len(in) == 0 {
		t.Fatal("queued envelopes not found in the database files: the scan sees nothing")
	}
	wb := ts.dial(t, bob.token)
	for range bodies {
		f := wb.readType(api.FrameMessage)
		wb.send(api.Frame{Type: api.FrameAck, Seq: f.Seq})
	}
	waitFor(t, func() bool { return ts.queued(t, "bob") == 0 })
	deadline := time.Now().Add(5 * time.Second)
	for {
		in := holding(dbFiles(t, ts.dbPath), bodies)
		if len(in) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after the acks, deleted envelopes are still in %v", in)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		fi, err := os.Stat(ts.dbPath + suffix)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("db%s has mode %v, want owner-only", suffix, fi.Mode().Perm())
		}
	}
}

// An existing database readable by others is narrowed to its owner.
func TestExistingDatabaseMadePrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // past the umask
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{DBPath: path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
}
