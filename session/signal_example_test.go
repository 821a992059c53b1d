package session_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// Example_signal is Example under the Signal protocol (libsignal 0.103's
// PQXDH and Double Ratchet): the same Manager methods, configured with
// Config.Protocol. Bob's upload carries Kyber prekeys besides the EC
// ones, and Alice starts from a pqxdh.Bundle with StartSignalSession.
func Example_signal() {
	ctx := context.Background()
	check := func(err error) {
		if err != nil {
			log.Fatal(err)
		}
	}
	aliceAddr := store.Address{Name: "alice", DeviceID: 1}
	bobAddr := store.Address{Name: "bob", DeviceID: 1}
	cfg := &session.Config{Protocol: ratchet.Signal}

	alice, err := session.New(memory.New(), cfg)
	check(err)
	check(alice.Init(ctx, aliceAddr.DeviceID))
	bob, err := session.New(memory.New(), cfg)
	check(err)
	check(bob.Init(ctx, bobAddr.DeviceID))

	upload, err := bob.Upkeep(ctx)
	check(err)
	fmt.Println("Bob uploads", len(upload.OneTimePreKeys), "one-time EC prekeys,",
		len(upload.KyberOneTimePreKeys), "one-time Kyber prekeys and a last-resort one")

	// The server hands Alice a bundle with one of each.
	bundle := upload.SignalBundle(&upload.OneTimePreKeys[0], &upload.KyberOneTimePreKeys[0])
	check(alice.StartSignalSession(ctx, bobAddr, bundle))

	// Until Bob answers, Alice sends PreKeySignalMessages (about 1.8 KB:
	// they carry the Kyber ciphertext).
	m1, err := alice.Encrypt(ctx, bobAddr, []byte("Hello, Bob!"))
	check(err)
	fmt.Printf("Alice sends a PreKeySignalMessage: %v, version byte %#x\n",
		session.SignalMessageType(m1) == session.SignalTypePreKey, m1[0])

	pt, err := bob.Decrypt(ctx, aliceAddr, m1)
	check(err)
	fmt.Printf("Bob reads %q\n", pt)

	// A replay is refused, and changes nothing.
	_, err = bob.Decrypt(ctx, aliceAddr, m1)
	fmt.Println("replay refused:", errors.Is(err, ratchet.ErrDuplicate))

	// Bob's answer is a SignalMessage; after reading it, so are Alice's.
	r, err := bob.Encrypt(ctx, aliceAddr, []byte("Hi Alice."))
	check(err)
	pt, err = alice.Decrypt(ctx, bobAddr, r)
	check(err)
	fmt.Printf("Alice reads %q\n", pt)
	m2, err := alice.Encrypt(ctx, bobAddr, []byte("Post-quantum hello."))
	check(err)
	fmt.Println("Alice now sends SignalMessages:", session.SignalMessageType(m2) == session.SignalTypeWhisper)
	pt, err = bob.Decrypt(ctx, aliceAddr, m2)
	check(err)
	fmt.Printf("Bob reads %q\n", pt)

	// Output:
	// Bob uploads 100 one-time EC prekeys, 100 one-time Kyber prekeys and a last-resort one
	// Alice sends a PreKeySignalMessage: true, version byte 0x44
	// Bob reads "Hello, Bob!"
	// replay refused: true
	// Alice reads "Hi Alice."
	// Alice now sends SignalMessages: true
	// Bob reads "Post-quantum hello."
}
