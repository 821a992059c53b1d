package sqlstore_test

import (
	"testing"

	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/storetest"
)

func TestConformance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		storetest.Run(t, func(t *testing.T) store.Store {
			return mustOpen(t, b.fresh(t)(t), b.dialect)
		})
	})
}
