package main

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
)

// The whole script runs over TCP, every line arrives, and the transcript
// follows the frames in order with the profile's message sizes.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	got := regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(out.String(), "ADDR")
	// Sizes: bundle 173 bytes with a one-time prekey; prekey message =
	// 1 + 75-byte header + ratchet message; ratchet message = 42-byte
	// header + plaintext + 16-byte tag.
	want := `Bob listens on ADDR
Bob   → bundle, 173 bytes (identity key, signed prekey, signature, one-time prekey)
Alice ← bundle; signature verified, X3DH done, Double Ratchet started
Alice → 178-byte prekey message (type byte, 75-byte X3DH header, 102-byte ratchet message)
Bob   ← "Hi Bob, this is Alice over a raw TCP socket."
Bob   → 105-byte ratchet message
Alice ← "Hi Alice. The library never touched the socket."
Alice → 78-byte ratchet message
Alice → 107-byte ratchet message
Bob   ← "Bytes in, bytes out."
Bob   ← "Two in a row: same sending chain, no new DH step."
Bob   → 98-byte ratchet message
Alice ← "And my reply turns the DH ratchet again."
Alice hangs up
Bob   ← connection closed
`
	if got != want {
		t.Errorf("transcript:\n%s\nwant:\n%s", got, want)
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	for _, p := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte{7}, maxFrame)} {
		if err := writeFrame(&buf, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []int{0, 1, maxFrame} {
		p, err := readFrame(&buf)
		if err != nil || len(p) != want {
			t.Fatalf("read %d bytes, %v; want %d", len(p), err, want)
		}
	}
	if _, err := readFrame(&buf); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
	if err := writeFrame(&buf, make([]byte, maxFrame+1)); !errors.Is(err, errFrameTooLarge) || buf.Len() != 0 {
		t.Fatalf("oversize write: %v, %d bytes written", err, buf.Len())
	}
}

// Hostile length prefixes are refused before anything is allocated, and a
// frame cut short is an unexpected EOF, not a short frame.
func TestReadFrameHostile(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"4 GiB length", "\xff\xff\xff\xff", errFrameTooLarge},
		{"one over the limit", "\x00\x01\x00\x01", errFrameTooLarge},
		{"truncated length", "\x00\x00", io.ErrUnexpectedEOF},
		{"truncated body", "\x00\x00\x00\x05abc", io.ErrUnexpectedEOF},
		{"length only", "\x00\x00\x00\x01", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p []byte
			var err error
			allocs := testing.AllocsPerRun(10, func() {
				p, err = readFrame(strings.NewReader(tt.in))
			})
			if !errors.Is(err, tt.want) || p != nil {
				t.Fatalf("got %q, %v; want %v", p, err, tt.want)
			}
			if tt.want == errFrameTooLarge && allocs > 2 {
				t.Errorf("%v allocations for a refused frame", allocs)
			}
		})
	}
}
