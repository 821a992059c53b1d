package memory_test

import (
	"testing"

	"github.com/ratchetkit/ratchetkit/store/memory"
	"github.com/ratchetkit/ratchetkit/store/storetest"
)

// FuzzScript runs fuzzer-chosen transactions on the memory store and on
// storetest's reference store and compares every result: it exercises the
// interplay of pending and committed writes that example tests sample.
func FuzzScript(f *testing.F) {
	for _, seed := range storetest.ScriptSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		storetest.RunScript(t, memory.New(), script)
	})
}
