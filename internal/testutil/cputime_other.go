//go:build !linux

package testutil

import "time"

var start = time.Now()

// ThreadCPU falls back to the wall clock where no per-thread CPU clock is
// wired up.
func ThreadCPU() time.Duration { return time.Since(start) }
