// Package ratchet implements the Double Ratchet.
package ratchet
