package senderkey_test

import (
	"errors"
	"fmt"

	"github.com/ratchetkit/ratchetkit/senderkey"
)

// A group of three: Alice sends, Bob and Carol read. The distribution
// message would travel to each member inside a pairwise session; here only
// bytes pass between the blocks. Then Carol leaves: Alice rotates, and
// only Bob gets the new chain.
func Example() {
	group := senderkey.NewDistributionID()
	var alice senderkey.Record // Alice's own sending record for the group
	dm, _ := alice.DistributionMessage(group)
	wire := dm.Bytes()

	members := map[string]*senderkey.Record{}
	for _, name := range []string{"bob", "carol"} {
		m, err := senderkey.ParseDistributionMessage(wire)
		if err != nil {
			panic(err)
		}
		r := new(senderkey.Record)
		r.Process(m)
		members[name] = r
	}

	first, _ := alice.Encrypt(group, []byte("hello, group"))
	second, _ := alice.Encrypt(group, []byte("a second message"))
	for _, name := range []string{"bob", "carol"} {
		for _, msg := range [][]byte{second, first} { // out of order
			pt, err := members[name].Decrypt(msg)
			fmt.Printf("%s: %q %v\n", name, pt, err)
		}
	}
	_, err := members["bob"].Decrypt(first)
	fmt.Println("replay:", errors.Is(err, senderkey.ErrDuplicate))

	// Carol leaves: Alice drops her record and distributes a new chain to
	// Bob alone.
	alice = senderkey.Record{}
	dm, _ = alice.DistributionMessage(group)
	m, _ := senderkey.ParseDistributionMessage(dm.Bytes())
	members["bob"].Process(m)
	later, _ := alice.Encrypt(group, []byte("carol has left"))
	pt, _ := members["bob"].Decrypt(later)
	fmt.Printf("bob: %q\n", pt)
	_, err = members["carol"].Decrypt(later)
	fmt.Println("carol:", errors.Is(err, senderkey.ErrNoState))
	// Output:
	// bob: "a second message" <nil>
	// bob: "hello, group" <nil>
	// carol: "a second message" <nil>
	// carol: "hello, group" <nil>
	// replay: true
	// bob: "carol has left"
	// carol: true
}
