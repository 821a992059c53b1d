package ratchet

import "github.com/ratchetkit/ratchetkit/internal/hazmat"

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
