package sqlstore_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ratchetkit/ratchetkit/store/storetest"
)

// TestScript runs storetest's seed scripts and seeded random transaction
// scripts on each backend and on storetest's reference store, comparing
// every result.
func TestScript(t *testing.T) {
	scripts := 12
	if testing.Short() {
		scripts = 3
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for i, script := range storetest.ScriptSeeds() {
			t.Run(fmt.Sprint("seed", i), func(t *testing.T) {
				storetest.RunScript(t, mustOpen(t, b.fresh(t)(t), b.dialect), script)
			})
		}
		for i := range scripts {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(i), 0x5c))
				script := make([]byte, 100+rng.IntN(400))
				for j := range script {
					script[j] = byte(rng.Uint32())
				}
				storetest.RunScript(t, mustOpen(t, b.fresh(t)(t), b.dialect), script)
			})
		}
	})
}
