package testutil

import (
	"bytes"
	"encoding/json"
	"runtime"
	"testing"
	"time"
)

func TestHex(t *testing.T) {
	type rec struct {
		A, B Hex
		C, D HexOrNull
	}
	j, err := json.Marshal(rec{A: Hex{0xab, 0x01}, C: HexOrNull{0xcd}})
	if err != nil || string(j) != `{"A":"ab01","B":"","C":"cd","D":null}` {
		t.Fatalf("Marshal = %s, %v", j, err)
	}
	var r rec
	if err := json.Unmarshal([]byte(`{"A":"AB01","B":null,"C":"CD","D":null}`), &r); err != nil ||
		!bytes.Equal(r.A, []byte{0xab, 1}) || r.B != nil || !bytes.Equal(r.C, []byte{0xcd}) || r.D != nil {
		t.Fatalf("Unmarshal = %+v, %v", r, err)
	}
	for _, bad := range []string{`{"A":"abc"}`, `{"A":"zz"}`, `{"A":12}`, `{"C":"zz"}`} {
		if err := json.Unmarshal([]byte(bad), &r); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", bad)
		}
	}
	if err := json.Unmarshal([]byte(`{"A":""}`), &r); err != nil || r.A == nil || len(r.A) != 0 {
		t.Errorf(`"" decodes to %#v, %v; want an empty, non-nil Hex`, r.A, err)
	}
}

// TestThreadCPU checks that the clock advances with work and, on Linux,
// not while the thread sleeps.
func TestThreadCPU(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0 := ThreadCPU()
	x := 0
	for i := range 20_000_000 {
		x += i ^ x
	}
	t1 := ThreadCPU()
	if t1 <= t0 {
		t.Fatalf("no CPU time counted for a busy loop (%d)", x)
	}
	if runtime.GOOS == "linux" {
		time.Sleep(50 * time.Millisecond)
		if d := ThreadCPU() - t1; d > 25*time.Millisecond {
			t.Errorf("a 50 ms sleep counted %v of CPU time", d)
		}
	}
}
