package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The walkthrough runs to the end and its transcript reports what the
// profile says: sizes, the out-of-order delivery, the consumed one-time
// prekey, the refused replay, and a message read after reopening the store.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out, t.TempDir()); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	// Sizes: a bundle with a one-time prekey is 173 bytes; a prekey
	// message is 1 + 75 (header with an opk id) + a ratchet message of
	// 42 + plaintext + 16 bytes.
	want := []string{
		`(?m)^   The server gives Alice 173 bytes: .*one-time prekey #1$`,
		`(?m)^   Alice → Bob   156-byte prekey message`,
		`(?m)^   Bob reads     "Hi Bob! Lunch at noon\?" .*; 99 one-time prekeys left\)$`,
		`(?m)^   Bob → Alice   63-byte and 82-byte ratchet messages`,
		`(?m)^   Alice reads   "Same place as last time\?" .*\n   Alice reads   "Sure\." `,
		`(?m)^   Alice → Bob   77-byte ratchet message`,
		`(?m)^   A replay of it is refused: ratchet: duplicate message$`,
		`(?m)^   Alice sees (\d{5} ){11}\d{5}\n   Bob sees the same digits`,
		`(?m)^   Reopened, Bob reads "Sent while Bob's app was closed\."$`,
	}
	for _, re := range want {
		if !regexp.MustCompile(re).MatchString(got) {
			t.Errorf("transcript lacks %s:\n%s", re, got)
		}
	}
	if n := strings.Count(got, "\n"); n != 22 {
		t.Errorf("transcript has %d lines, want 22", n)
	}
}

// The README's quick start is an excerpt of session.Example, which go test
// compiles and runs: every line of it, comments aside, appears in the
// example, in the same order.
func TestReadmeQuickStart(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../../session/example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "## Quick start")
	if !ok {
		t.Fatal("README has no quick start")
	}
	_, rest, _ = strings.Cut(rest, "```go\n")
	snippet, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("README's quick start has no Go block")
	}
	var lines []string
	for l := range strings.Lines(string(example)) {
		lines = append(lines, strings.TrimSpace(l))
	}
	i, checked := 0, 0
	for l := range strings.Lines(snippet) {
		l, _, _ = strings.Cut(l, "//")
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		for i < len(lines) && lines[i] != l && !strings.HasPrefix(lines[i], l+" //") {
			i++
		}
		if i == len(lines) {
			t.Fatalf("README quick start line %q is not in session.Example (or out of order)", l)
		}
		i++
		checked++
	}
	if checked < 15 {
		t.Fatalf("only %d lines checked", checked)
	}
}
