// Package depcheck holds no code, only a test that enforces ratchetkit's
// dependency policy: the library packages import nothing outside the
// standard library but golang.org/x/crypto (with the golang.org/x/sys/cpu it
// pulls in) and filippo.io/edwards25519. Store backends under store/ may
// import their database drivers and are checked only for not leaking into
// the rest; examples, commands and internal test support are not library
// packages.
package depcheck
