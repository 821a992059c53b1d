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
	// Kyber prekeys (operations 1, 8, 9 and 12 carry them, see
	// storetest.RunScript): a signed prekey, a last-resort and a one-time
	// Kyber prekey, a triple used twice, the one-time prekey used, the
	// signed prekey removed and the triple accepted again; a failing Update
	// that adds, uses and removes one, and a View that tries to write; an
	// add, remove and re-add in one transaction.
	f.Add([]byte{0, 7, 10, 0, 0, 1, 0, 8, 0, 1, 0x21, 0x02, 9, 6, 0, 1, 1, 9, 6, 0, 1, 1, 12, 6, 0, 2, 0, 13, 0, 0, 1, 0, 1, 6, 0, 1, 1})
	f.Add([]byte{1, 3, 8, 0, 0, 0x25, 0, 9, 7, 0x04, 5, 0x04, 12, 2, 0, 5, 0, 2, 2, 1, 0, 0, 3, 0, 8, 6, 0, 0, 0})
	f.Add([]byte{0, 4, 8, 0, 0, 7, 0, 9, 2, 0, 7, 0, 9, 0, 1, 0x27, 0x06, 8, 5, 0, 0, 0, 2, 2, 1, 3, 0, 0, 0, 8, 4, 0, 0, 0})
	f.Fuzz(func(t *testing.T, script []byte) {
		storetest.RunScript(t, memory.New(), script)
	})
}
