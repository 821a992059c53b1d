package main

import (
	"bytes"
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
