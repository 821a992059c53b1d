package signalsuite

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/keys"
)

func testKeys(t testing.TB) (mk *MessageKeys, a, b *keys.PublicKey) {
	seed := [KeySize]byte{1, 2, 3}
	mk = DeriveMessageKeys(&seed, bytes.Repeat([]byte{9}, 32))
	ka, _ := keys.NewPrivateKey(bytes.Repeat([]byte{4}, 32))
	kb, _ := keys.NewPrivateKey(bytes.Repeat([]byte{5}, 32))
	return mk, ka.PublicKey(), kb.PublicKey()
}

// seal builds a whole SignalMessage the way libsignal does, for tests.
func seal(t testing.TB, mk *MessageKeys, from, to *keys.PublicKey, pt []byte) []byte {
	m := &signalwire.SignalMessage{RatchetKey: from, Counter: 3, PreviousCounter: 1,
		Ciphertext: Encrypt(mk, pt), PQRatchet: []byte{1, 1, 4, 0}}
	body, err := m.AppendBody(nil)
	if err != nil {
		t.Fatal(err)
	}
	tag := Tag(mk, from, to, body)
	return append(body, tag[:]...)
}

func openWire(mk *MessageKeys, from, to *keys.PublicKey, wire []byte) ([]byte, error) {
	m, body, mac, err := signalwire.ParseSignalMessage(wire)
	if err != nil {
		return nil, err
	}
	return Open(mk, from, to, body, mac, m.Ciphertext)
}

func TestSealOpen(t *testing.T) {
	mk, a, b := testKeys(t)
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 100} {
		pt := bytes.Repeat([]byte{byte(n)}, n)
		wire := seal(t, mk, a, b, pt)
		got, err := openWire(mk, a, b, wire)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%d bytes: %v", n, err)
		}
		// The tag binds the direction: swapping the identities fails.
		if _, err := openWire(mk, b, a, wire); !errors.Is(err, ErrOpen) {
			t.Fatalf("%d bytes, swapped identities: %v", n, err)
		}
		for i := range wire {
			bad := bytes.Clone(wire)
			bad[i] ^= 0x20
			if _, err := openWire(mk, a, b, bad); err == nil {
				t.Fatalf("%d bytes: flipping byte %d still opens", n, i)
			}
		}
	}
	// An 18-byte plaintext takes 32 bytes, a 12-byte one 16.
	if len(Encrypt(mk, make([]byte, 18))) != 32 || len(Encrypt(mk, make([]byte, 12))) != 16 {
		t.Fatal("PKCS#7 sizes")
	}
}

// TestBadPadding: a correctly tagged ciphertext whose padding is wrong is
// refused, with no plaintext.
func TestBadPadding(t *testing.T) {
	mk, a, b := testKeys(t)
	block, _ := aes.NewCipher(mk.CipherKey[:])
	for _, last := range [][]byte{
		bytes.Repeat([]byte{0}, 16),                  // pad 0
		append(bytes.Repeat([]byte{0}, 15), 17),      // pad > 16
		append(bytes.Repeat([]byte{3}, 14), 1, 2),    // inconsistent
		append(bytes.Repeat([]byte{0}, 13), 0, 3, 3), // one byte short
	} {
		ct := make([]byte, 16)
		cipher.NewCBCEncrypter(block, mk.IV[:]).CryptBlocks(ct, last)
		m := &signalwire.SignalMessage{RatchetKey: a, Ciphertext: ct}
		body, _ := m.AppendBody(nil)
		tag := Tag(mk, a, b, body)
		if pt, err := Open(mk, a, b, body, tag[:], ct); !errors.Is(err, ErrOpen) || pt != nil {
			t.Errorf("padding %x: %x, %v", last, pt, err)
		}
	}
	for _, n := range []int{0, 15, 17} {
		ct := make([]byte, n)
		m := &signalwire.SignalMessage{RatchetKey: a, Ciphertext: ct}
		body, _ := m.AppendBody(nil)
		tag := Tag(mk, a, b, body)
		if _, err := Open(mk, a, b, body, tag[:], ct); !errors.Is(err, ErrOpen) {
			t.Errorf("%d-byte ciphertext: %v", n, err)
		}
	}
	if _, err := Open(mk, a, b, nil, make([]byte, 7), nil); !errors.Is(err, ErrOpen) {
		t.Errorf("7-byte tag: %v", err)
	}
}

// TestSaltMatters: the SPQR salt and its absence give different keys.
func TestSaltMatters(t *testing.T) {
	seed := [KeySize]byte{7}
	a, b := DeriveMessageKeys(&seed, nil), DeriveMessageKeys(&seed, make([]byte, 32))
	if *a != *b {
		t.Fatal("a nil salt is not the all-zero salt (RFC 5869)")
	}
	c := DeriveMessageKeys(&seed, bytes.Repeat([]byte{1}, 32))
	if *a == *c {
		t.Fatal("the salt is ignored")
	}
	ck := [KeySize]byte{8}
	s1, n1 := ChainStep(&ck)
	if s1 == n1 || s1 == ck || n1 == ck {
		t.Fatal("chain step outputs coincide")
	}
	r1, c1 := RootStep(&ck, []byte{1})
	r2, _ := RootStep(&ck, []byte{2})
	if r1 == r2 || r1 == c1 {
		t.Fatal("root step ignores its input")
	}
}

func TestMessageKeysRedacted(t *testing.T) {
	mk, _, _ := testKeys(t)
	sec := fmt.Sprintf("%x", mk.CipherKey[:8])
	for _, verb := range []string{"%v", "%+v", "%#v", "%x", "%s"} {
		for _, arg := range []any{mk, *mk, struct{ K *MessageKeys }{mk}} {
			if out := fmt.Sprintf(verb, arg); strings.Contains(out, sec) {
				t.Fatalf("Sprintf(%q) shows a key: %s", verb, out)
			}
		}
	}
	mk.Clear()
	if *mk != (MessageKeys{}) {
		t.Fatal("Clear left key bytes")
	}
}
