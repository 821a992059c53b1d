// Command conformance is ratchetkit's conformance driver: it speaks the
// JSON-lines protocol of PROTOCOL.md section 9, so that a test harness can
// drive the Go implementation of profile v1 through a pipe and compare it,
// byte for byte and error for error, with another implementation.
//
//	go run ./internal/cmd/conformance < requests.jsonl > answers.jsonl
//
// It reads one JSON object per line on standard input and writes one JSON
// object per line on standard output, in order, until standard input ends.
// Every operation is built on the public packages: keys, x3dh and ratchet
// for the primitives and bare ratchet sessions, and for session_initiate
// and session_respond a session.Manager over its own store/memory store
// per id. Known-answer runs inject the keys that the library would
// otherwise draw from crypto/rand through internal/hazmat, which only
// ratchetkit's own tools can import, and xeddsa_sign takes its random
// bytes from the request through internal/xeddsa. testdata/crosscheck runs
// the JavaScript implementation against it.
//
// No input line stops the driver or makes it answer anything but a JSON
// object: a request it cannot use is {"error":"malformed"}. An answer
// {"error":"internal"} would mean a bug in the driver or the library, and
// a description of it goes to standard error.
//
// This is a test tool. It holds every session's secrets in memory for the
// whole run and takes private keys on its input; never point it at real
// keys.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "conformance: %v\n", err)
		os.Exit(1)
	}
}

// run answers every line of in on out until in ends. A final line without a
// newline is answered too, and so is an empty line (as malformed).
func run(in io.Reader, out, log io.Writer) error {
	d := newDriver(log)
	r := bufio.NewReaderSize(in, 64<<10)
	w := bufio.NewWriterSize(out, 64<<10)
	for {
		line, rerr := r.ReadBytes('\n')
		if len(line) > 0 {
			w.Write(d.handleLine(bytes.TrimSuffix(line, []byte("\n"))))
			w.WriteByte('\n')
			// A harness waits for each answer before sending the next
			// request; one that pipes a whole file gets batched writes.
			if r.Buffered() == 0 {
				if err := w.Flush(); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			return w.Flush()
		}
		if rerr != nil {
			return rerr
		}
	}
}
