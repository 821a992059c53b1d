package ratchet

import "github.com/ratchetkit/ratchetkit/internal/hazmat"

// init gives internal/hazmat the one way to set the unexported key source,
// so that only ratchetkit's conformance driver and known-answer tests can
// replace crypto/rand for ratchet key pairs.
func init() {
	hazmat.SetRatchetKeySource = func(target any, src hazmat.KeySource) {
		switch t := target.(type) {
		case *Config:
			t.keySource = src
		case *Session:
			t.keySource = src
		default:
			panic("ratchet: SetRatchetKeySource target must be a *ratchet.Config or *ratchet.Session")
		}
	}
}
