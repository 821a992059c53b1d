// Package peerbench puts ratchetkit's XEdDSA verification beside
// crypto/ed25519.Verify and beside go.mau.fi/libsignal's, in one run. It is a
// module of its own so that ratchetkit does not depend on go.mau.fi/libsignal;
// go vet ./... and go test ./... at the repository root do not enter it.
//
// Run it from this directory:
//
//	go test -run . -bench . -count 8 > peer.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl peer.txt
package peerbench
