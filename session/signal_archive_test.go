package session_test

import (
	"fmt"
	"testing"

	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// TestSignalArchivePromotedKept: Bob's record is full (the current
// session and 40 archived) when a message on his oldest session promotes
// it, and then Alice starts one more session. As libsignal does (see
// TestLiveSignalArchivePromotedDropped), the state archived longest goes:
// the promoted oldest session still decrypts, the second oldest is gone.
// Dropping the oldest created, the rule before, kept the second oldest.
func TestSignalArchivePromotedKept(t *testing.T) {
	alice := newSignalDevice(t, memory.New(), "alice", 1, nil)
	bob := newSignalDevice(t, memory.New(), "bob", 2, nil)
	alice.start(bob, -1, -1)
	bob.decrypt(alice.device, alice.encrypt(bob.device, "oldest"), "oldest")
	oldA := alice.encrypt(bob.device, "oldest, first held")
	oldB := alice.encrypt(bob.device, "oldest, second held")
	var second []byte
	for i := 1; i <= session.DefaultMaxArchived; i++ {
		alice.start(bob, -1, -1)
		bob.decrypt(alice.device, alice.encrypt(bob.device, fmt.Sprint("session ", i)), fmt.Sprint("session ", i))
		if i == 1 {
			second = alice.encrypt(bob.device, "second oldest, held")
		}
	}
	bob.decrypt(alice.device, oldA, "oldest, first held") // promotes the oldest
	alice.start(bob, -1, -1)
	bob.decrypt(alice.device, alice.encrypt(bob.device, "one more"), "one more")
	bob.decrypt(alice.device, oldB, "oldest, second held")
	bob.refused(alice, second, nil)
}
