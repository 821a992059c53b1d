package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/examples/chat/client"
	"github.com/ratchetkit/ratchetkit/examples/chat/server"
)

func TestSanitize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"hello, world", "hello, world"},
		{"tab\there", "tab\there"},
		{"héllo ✓ 你好", "héllo ✓ 你好"},
		{"clear\x1b[2Jscreen", `clear\u001b[2Jscreen`},
		{"new\nline\r", `new\u000aline\u000d`},
		{"bell\a", `bell\u0007`},
		{"csi\u009b31m", `csi\u009b31m`},
		{"evil\u202eexe.txt", `evil\u202eexe.txt`},
		{"zero\u200bwidth", `zero\u200bwidth`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"real \uFFFD stays", "real \uFFFD stays"},
	}
	for _, tt := range tests {
		if got := sanitize(tt.in); got != tt.want {
			t.Errorf("sanitize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Drops are reported at 1, 10, 100... of them, so that a flood of
// forgeries does not flood the terminal; a full hold is reported once.
func TestDropNotices(t *testing.T) {
	out := &syncBuffer{}
	u := &ui{out: out}
	for n := 1; n <= 250; n++ {
		u.event(client.Event{Kind: client.EventDropped, Peer: "mallory", Count: n, Err: client.ErrThrottled})
	}
	u.event(client.Event{Kind: client.EventHeldFull, Peer: "mallory", Count: 100})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[1], "!! 10 message(s) from mallory dropped unread") || !strings.Contains(lines[3], "/approve mallory") {
		t.Fatalf("notices:\n%s", out.String())
	}
}

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

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newServer runs a quiet server on loopback until the test ends.
func newServer(t *testing.T) *httptest.Server {
	srv, err := server.New(server.Config{DBPath: filepath.Join(t.TempDir(), "s.db"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return hs
}

// startTerminal runs the terminal client of name on the server at url,
// and returns what types a line into it, its output, and where run's
// result comes.
func startTerminal(t *testing.T, url, name string) (typeLine func(string), out *syncBuffer, done chan error) {
	in, typed := io.Pipe()
	out = &syncBuffer{}
	done = make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"-name", name, "-server", url, "-dir", t.TempDir()}, in, out)
	}()
	return func(s string) {
		if _, err := io.WriteString(typed, s+"\n"); err != nil {
			t.Fatal(err)
		}
	}, out, done
}

// The terminal client registers, sends what is typed, prints what arrives
// with control characters escaped, and shows the safety number.
func TestTerminal(t *testing.T) {
	hs := newServer(t)

	var mu sync.Mutex
	var got []string
	bob, err := client.Open(context.Background(), client.Config{
		Dir: t.TempDir(), Server: hs.URL, Name: "bob",
		OnEvent: func(ev client.Event) {
			if ev.Kind == client.EventMessage {
				mu.Lock()
				got = append(got, ev.Text)
				mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if err := bob.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}

	typeLine, out, done := startTerminal(t, hs.URL, "alice")
	typeLine("hello?")
	waitFor(t, "the no-peer hint", func() bool { return strings.Contains(out.String(), "/to NAME") })
	typeLine("/to bob")
	typeLine("Hi Bob!")
	waitFor(t, "bob to receive", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	if got[0] != "Hi Bob!" {
		t.Fatalf("bob got %q", got)
	}
	if err := bob.Send(context.Background(), "alice", "Hi Alice \x1b]0;pwned\x07"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice to print bob's message", func() bool { return strings.Contains(out.String(), "[bob] Hi Alice ") })
	if o := out.String(); strings.Contains(o, "\x1b") || !strings.Contains(o, `[bob] Hi Alice \u001b]0;pwned\u0007`) {
		t.Fatalf("bob's message printed unescaped:\n%q", o)
	}
	typeLine("/safety")
	num, err := bob.SafetyNumber(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the safety number", func() bool { return strings.Contains(out.String(), num) })
	typeLine("/frobnicate")
	waitFor(t, "the unknown-command hint", func() bool { return strings.Contains(out.String(), "Unknown command /frobnicate") })
	typeLine("/quit")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The group and device commands: /group create, /g, /device add (whose
// code a second device joins with), /devices, and group messages printed
// with their group.
func TestTerminalGroupsAndDevices(t *testing.T) {
	hs := newServer(t)

	var mu sync.Mutex
	var bobEvents []client.Event
	bob, err := client.Open(context.Background(), client.Config{
		Dir: t.TempDir(), Server: hs.URL, Name: "bob",
		OnEvent: func(ev client.Event) { mu.Lock(); bobEvents = append(bobEvents, ev); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if err := bob.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	bobSaw := func(kind client.EventKind, group, text string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, e := range bobEvents {
				if e.Kind == kind && e.Group == group && (text == "" || e.Text == text) {
					return true
				}
			}
			return false
		}
	}

	typeLine, out, done := startTerminal(t, hs.URL, "alice")
	typeLine("/group create team bob")
	waitFor(t, "the group to be made", func() bool { return strings.Contains(out.String(), "Done: group team create") })
	waitFor(t, "bob to hear of the group", bobSaw(client.EventGroup, "team", ""))
	typeLine("/g team hello team")
	waitFor(t, "bob to get the group message", bobSaw(client.EventMessage, "team", "hello team"))
	if err := bob.SendGroup(context.Background(), "team", "hi from bob"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice to print bob's group message", func() bool { return strings.Contains(out.String(), "[team/bob] hi from bob") })

	typeLine("/device add")
	waitFor(t, "a link code", func() bool { return strings.Contains(out.String(), "-link ") })
	o := out.String()
	code := strings.Fields(o[strings.Index(o, "-link ")+len("-link "):])[0]
	phone, err := client.Open(context.Background(), client.Config{Dir: t.TempDir(), Server: hs.URL, Name: "alice", Link: code})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	if phone.Device() != 2 {
		t.Fatalf("the new device is device %d", phone.Device())
	}
	typeLine("/devices")
	waitFor(t, "the device list", func() bool { return strings.Contains(out.String(), "alice has devices [1 2].") })
	// The next message goes to the new device too, and the terminal says
	// so: a device added behind the user's back would show the same way.
	typeLine("/to bob")
	typeLine("now on two devices")
	waitFor(t, "the new-device warning", func() bool { return strings.Contains(out.String(), "!! Your account has a device 2") })
	typeLine("/groups")
	waitFor(t, "the group list", func() bool { return strings.Contains(out.String(), "team: alice, bob") })
	typeLine("/quit")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
