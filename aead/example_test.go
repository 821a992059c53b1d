package aead_test

import (
	"crypto/rand"
	"fmt"

	"github.com/ratchetkit/ratchetkit/aead"
)

// A message key seals exactly one message. In ratchetkit the key comes from
// the Double Ratchet's sending chain and the associated data is the session's
// AD followed by the message header; here both are made up.
func Example() {
	mk := make([]byte, aead.KeySize)
	rand.Read(mk)
	ad := []byte("Encode(IK_A) || Encode(IK_B) || header")

	ct := aead.AES256GCM().Seal(nil, mk, []byte("hello, Bob"), ad)
	fmt.Println("sealed:", len(ct), "bytes =", len("hello, Bob"), "+", aead.Overhead)

	pt, err := aead.AES256GCM().Open(nil, mk, ct, ad)
	fmt.Printf("opened: %q, %v\n", pt, err)

	ct[0] ^= 1 // one flipped bit in transit
	pt, err = aead.AES256GCM().Open(nil, mk, ct, ad)
	fmt.Println("tampered:", pt == nil, err == aead.ErrOpen)

	// Output:
	// sealed: 26 bytes = 10 + 16
	// opened: "hello, Bob", <nil>
	// tampered: true true
}

// The two suites derive different keys from the same message key, so a
// message sealed under one never opens under the other.
func ExampleSuite() {
	mk := make([]byte, aead.KeySize)
	rand.Read(mk)
	for _, s := range []aead.Suite{aead.AES256GCM(), aead.ChaCha20Poly1305()} {
		ct := s.Seal(nil, mk, []byte("hi"), nil)
		_, errAES := aead.AES256GCM().Open(nil, mk, ct, nil)
		_, errChaCha := aead.ChaCha20Poly1305().Open(nil, mk, ct, nil)
		fmt.Printf("%s: %d bytes; opens under AES-256-GCM: %v, ChaCha20-Poly1305: %v\n",
			s.Name(), len(ct), errAES == nil, errChaCha == nil)
	}
	// Output:
	// AES-256-GCM: 18 bytes; opens under AES-256-GCM: true, ChaCha20-Poly1305: false
	// ChaCha20-Poly1305: 18 bytes; opens under AES-256-GCM: false, ChaCha20-Poly1305: true
}
