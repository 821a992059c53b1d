package store_test

import (
	"math"
	"testing"

	"github.com/ratchetkit/ratchetkit/store"
)

func TestAddressString(t *testing.T) {
	for _, tc := range []struct {
		a    store.Address
		want string
	}{
		{store.Address{Name: "alice", DeviceID: 1}, `"alice".1`},
		{store.Address{Name: "", DeviceID: 0}, `"".0`},
		{store.Address{Name: "a.b", DeviceID: math.MaxUint32}, `"a.b".4294967295`},
		// Control characters and invalid UTF-8 come out escaped.
		{store.Address{Name: "x\n\x1b[31m\xff", DeviceID: 2}, `"x\n\x1b[31m\xff".2`},
		{store.Address{Name: `q"uote`, DeviceID: 3}, `"q\"uote".3`},
	} {
		if got := tc.a.String(); got != tc.want {
			t.Errorf("%#v.String() = %s, want %s", tc.a, got, tc.want)
		}
	}
}

func TestAddressComparable(t *testing.T) {
	m := map[store.Address]int{
		{Name: "a", DeviceID: 1}:     1,
		{Name: "a", DeviceID: 2}:     2,
		{Name: "a\x00", DeviceID: 1}: 3,
	}
	if len(m) != 3 || m[store.Address{Name: "a", DeviceID: 2}] != 2 {
		t.Errorf("addresses as map keys: %v", m)
	}
}
