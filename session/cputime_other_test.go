//go:build !linux

package session_test

import "time"

var start = time.Now()

// threadCPU falls back to the wall clock where no per-thread CPU clock is
// wired up.
func threadCPU() time.Duration { return time.Since(start) }
