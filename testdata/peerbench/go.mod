module github.com/ratchetkit/ratchetkit/testdata/peerbench

go 1.26.0

require (
	filippo.io/edwards25519 v1.2.0
	github.com/ratchetkit/ratchetkit v0.0.0-00010101000000-000000000000
	go.mau.fi/libsignal v0.2.1
)

require golang.org/x/crypto v0.59.0 // indirect

replace github.com/ratchetkit/ratchetkit => ../..
