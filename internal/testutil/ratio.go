package testutil

import (
	"runtime"
	"testing"
	"time"
)

// Interleave runs floor and then op once per iteration of b.Loop, times each
// call on the thread's CPU clock, and reports their ratio as x-floor (with
// floor-cpu-ns/op and cpu-ns/op): interleaved calls see the same machine
// load, so the ratio holds where wall-clock runs of one after the other
// swing by tens of percent.
func Interleave(b *testing.B, floor, op func()) { InterleavePrepared(b, nil, floor, op) }

// InterleavePrepared is Interleave with an untimed prepare (if not nil) run
// before each floor and op pair: for operations that consume their input,
// such as a session setup that needs a fresh key each time.
func InterleavePrepared(b *testing.B, prepare, floor, op func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var tf, to time.Duration
	b.ReportAllocs()
	for b.Loop() {
		if prepare != nil {
			prepare()
		}
		t0 := ThreadCPU()
		floor()
		t1 := ThreadCPU()
		op()
		t2 := ThreadCPU()
		tf += t1 - t0
		to += t2 - t1
	}
	b.ReportMetric(float64(to)/float64(tf), "x-floor")
	b.ReportMetric(float64(tf.Nanoseconds())/float64(b.N), "floor-cpu-ns/op")
	b.ReportMetric(float64(to.Nanoseconds())/float64(b.N), "cpu-ns/op")
}
