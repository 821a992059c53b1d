package session_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/ratchetkit/ratchetkit/ratchet"
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

// TestSignalAnswerOnArchivedAfterSPQRIndex: Alice's first session never
// got an answer and she started a second one, which has received Bob's
// messages since. Bob then reads her first session's late message and
// answers on that session. The answer's SPQR index is one Alice's current
// session has used already (its SPQR counts the messages of another
// session), which ratchet reports as a duplicate for that session; as
// libsignal does (an SPQR error is an invalid message for that state
// only), Decrypt goes on to the archived first session, which reads it
// and becomes current. True duplicates, of the answer and of a message
// of the now archived second session, are then ratchet.ErrDuplicate, and
// a refused copy with a bad tag changes nothing. Stopping at the SPQR
// error, as Decrypt did before, refused the answer.
func TestSignalAnswerOnArchivedAfterSPQRIndex(t *testing.T) {
	alice := newSignalDevice(t, memory.New(), "alice", 1, nil)
	bob := newSignalDevice(t, memory.New(), "bob", 2, nil)
	alice.start(bob, 0, 0)
	lost := alice.encrypt(bob.device, "lost on the first session")
	alice.start(bob, 1, 1)
	bob.decrypt(alice.device, alice.encrypt(bob.device, "second session"), "second session")
	var onSecond []byte
	for i := range 3 {
		onSecond = bob.encrypt(alice.device, fmt.Sprint("bob ", i))
		alice.decrypt(bob.device, onSecond, fmt.Sprint("bob ", i))
		bob.decrypt(alice.device, alice.encrypt(bob.device, fmt.Sprint("alice ", i)), fmt.Sprint("alice ", i))
	}
	bob.decrypt(alice.device, lost, "lost on the first session") // the first session is current at Bob
	answer := bob.encrypt(alice.device, "answer on the first session")
	bad := bytes.Clone(answer)
	bad[len(bad)-1] ^= 1 // in the MAC
	alice.refused(bob, bad, nil)
	alice.decrypt(bob.device, answer, "answer on the first session")
	alice.refused(bob, answer, ratchet.ErrDuplicate)
	// A replay of a message the now archived second session read.
	alice.refused(bob, onSecond, ratchet.ErrDuplicate)
	// Alice answers on the first session: no PreKeySignalMessage.
	if m := alice.encrypt(bob.device, "back on the first"); isPreKey(t, m) {
		t.Fatal("Alice did not make the first session current")
	} else {
		bob.decrypt(alice.device, m, "back on the first")
	}
}
