//go:build race

package x3dh_test

// raceEnabled reports whether the race detector, which adds allocations,
// is on.
const raceEnabled = true
