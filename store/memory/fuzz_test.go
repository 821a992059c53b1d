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
	// Seeds: a committed session save and delete; an add, remove and re-add
	// of prekeys in one transaction; a failing Update over every area; a
	// View that tries to write.
	f.Add([]byte{0, 2, 14, 0, 3, 0, 0, 1, 2, 3, 16, 0, 0, 0, 0})
	f.Add([]byte{0, 5, 5, 0, 1, 3, 4, 7, 0, 0, 3, 0, 5, 0, 0, 3, 4, 8, 0, 0, 0, 0, 9, 0, 0, 0, 0})
	f.Add([]byte{1, 7, 0, 0, 1, 2, 0, 2, 1, 2, 0, 0, 5, 0, 0, 6, 0, 10, 0, 1, 2, 9, 14, 3, 5, 1, 2, 3, 4, 5, 4, 1, 0, 0, 0, 17, 1, 0, 0, 0})
	f.Add([]byte{2, 3, 14, 0, 1, 0, 0, 9, 15, 0, 0, 0, 0, 12, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, script []byte) {
		storetest.RunScript(t, memory.New(), script)
	})
}
