package ratchet

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ratchetkit/ratchetkit/aead"
	"github.com/ratchetkit/ratchetkit/internal/hazmat"
	"github.com/ratchetkit/ratchetkit/keys"
)

// Wire constants, declared here rather than taken from the package.
const (
	wireHeaderSize = 42
	wireMinMessage = 58
)

// tb is the part of testing.TB the helpers need, so that fixtures built
// outside a test can use them too.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// panicTB fails by panicking, for fixtures built outside a test.
type panicTB struct{}

func (panicTB) Helper()                           {}
func (panicTB) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (panicTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

func newPair(t testing.TB, cfg *Config) (alice, bob *Session) {
	t.Helper()
	return benchPair(t, cfg)
}

func mustEncrypt(t tb, s *Session, pt string) []byte {
	t.Helper()
	m, err := s.Encrypt([]byte(pt))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustDecrypt(t tb, s *Session, msg []byte, want string) {
	t.Helper()
	pt, err := s.Decrypt(msg)
	if err != nil {
		t.Fatalf("Decrypt(%q): %v", want, err)
	}
	if string(pt) != want {
		t.Fatalf("Decrypt = %q, want %q", pt, want)
	}
}

func state(t tb, s *Session) []byte {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decryptFails checks that Decrypt fails with want (matched by errors.Is)
// and leaves the state unchanged.
func decryptFails(t testing.TB, s *Session, msg []byte, want error) {
	t.Helper()
	before := state(t, s)
	pt, err := s.Decrypt(msg)
	if !errors.Is(err, want) {
		t.Fatalf("Decrypt error = %v, want %v", err, want)
	}
	if pt != nil {
		t.Fatalf("Decrypt returned plaintext with error %v", err)
	}
	if after := state(t, s); !bytes.Equal(before, after) {
		t.Fatalf("failed Decrypt (%v) changed the state", err)
	}
}

func TestConversation(t *testing.T) {
	for _, suite := range []aead.Suite{nil, aead.AES256GCM(), aead.ChaCha20Poly1305()} {
		t.Run(fmt.Sprint(suite), func(t *testing.T) {
			alice, bob := newPair(t, &Config{Suite: suite})
			if alice.HasReceived() || bob.HasReceived() {
				t.Fatal("HasReceived before any message")
			}
			m1 := mustEncrypt(t, alice, "one")
			m2 := mustEncrypt(t, alice, "two")
			m3 := mustEncrypt(t, alice, "three")
			if len(m1) != wireMinMessage+3 || m1[0] != 0x01 || m1[1] != 0x05 {
				t.Fatalf("message layout: %x", m1)
			}
			if !bytes.Equal(m1[2:34], alice.RatchetKey().Bytes()) {
				t.Fatal("header does not carry the sender's ratchet key")
			}
			mustDecrypt(t, bob, m3, "three")
			mustDecrypt(t, bob, m1, "one")
			if !bob.HasReceived() {
				t.Fatal("HasReceived false after a decryption")
			}
			oldBobKey := bob.RatchetKey()
			r1 := mustEncrypt(t, bob, "reply")
			if oldBobKey.Equal(alice.RatchetKey()) || !bytes.Equal(r1[2:34], oldBobKey.Bytes()) {
				t.Fatal("reply does not carry Bob's new ratchet key")
			}
			mustDecrypt(t, alice, r1, "reply")
			m4 := mustEncrypt(t, alice, "four")
			if pn := binary.BigEndian.Uint32(m4[34:38]); pn != 3 {
				t.Fatalf("PN = %d, want 3", pn)
			}
			mustDecrypt(t, bob, m4, "four")
			mustDecrypt(t, bob, m2, "two")
			decryptFails(t, bob, m2, ErrAuthentication) // old chain, key used
		})
	}
}

func TestSuitesDoNotInteroperate(t *testing.T) {
	sk := make([]byte, 32)
	spk, _ := keys.GeneratePrivateKey()
	alice, err := NewInitiator(sk, nil, spk.PublicKey(), &Config{Suite: aead.ChaCha20Poly1305()})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := NewResponder(sk, nil, spk, nil)
	if err != nil {
		t.Fatal(err)
	}
	decryptFails(t, bob, mustEncrypt(t, alice, "x"), ErrAuthentication)
}

func TestWrongAD(t *testing.T) {
	sk := make([]byte, 32)
	rand.Read(sk)
	spk, _ := keys.GeneratePrivateKey()
	alice, _ := NewInitiator(sk, []byte("ad one"), spk.PublicKey(), nil)
	bob, _ := NewResponder(sk, []byte("ad two"), spk, nil)
	decryptFails(t, bob, mustEncrypt(t, alice, "x"), ErrAuthentication)
	sk[0] ^= 1
	bob, _ = NewResponder(sk, []byte("ad one"), spk, nil)
	decryptFails(t, bob, mustEncrypt(t, alice, "x"), ErrAuthentication)
}

func TestDecryptErrors(t *testing.T) {
	alice, bob := newPair(t, nil)
	mustDecrypt(t, bob, mustEncrypt(t, alice, "a0"), "a0")
	mustDecrypt(t, alice, mustEncrypt(t, bob, "b0"), "b0")
	a1 := mustEncrypt(t, alice, "a1")
	a2 := mustEncrypt(t, alice, "a2")
	mustDecrypt(t, bob, a1, "a1")

	set := func(f func(m []byte)) []byte {
		m := bytes.Clone(a2)
		f(m)
		return m
	}
	pLE, _ := hex.DecodeString("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	stranger, _ := keys.GeneratePrivateKey()
	cases := []struct {
		name string
		msg  []byte
		want error
	}{
		{"nil", nil, ErrMalformed},
		{"empty", []byte{}, ErrMalformed},
		{"one byte", []byte{0x01}, ErrMalformed},
		{"57 bytes", a2[:wireMinMessage-1], ErrMalformed},
		{"header only", a2[:wireHeaderSize], ErrMalformed},
		{"short prekey-typed", []byte{0x02, 0x00}, ErrMalformed},
		{"type 0x00", set(func(m []byte) { m[0] = 0 }), ErrUnknownType},
		{"type 0x02", set(func(m []byte) { m[0] = 2 }), ErrUnknownType},
		{"type 0xff", set(func(m []byte) { m[0] = 0xff }), ErrUnknownType},
		{"key type 0x00", set(func(m []byte) { m[1] = 0 }), keys.ErrInvalidPublicKey},
		{"key u = p", set(func(m []byte) { copy(m[2:34], pLE) }), keys.ErrInvalidPublicKey},
		{"key bit 255", set(func(m []byte) { m[33] |= 0x80 }), keys.ErrInvalidPublicKey},
		{"key u = 0", set(func(m []byte) { clear(m[2:34]) }), keys.ErrSmallOrder},
		{"key u = 1", set(func(m []byte) { clear(m[2:34]); m[2] = 1 }), keys.ErrSmallOrder},
		{"N = 2^32-1", set(func(m []byte) { binary.BigEndian.PutUint32(m[38:], 1<<32-1) }), ErrCounterOverflow},
		{"PN = 2^32-1", set(func(m []byte) { binary.BigEndian.PutUint32(m[34:], 1<<32-1) }), ErrCounterOverflow},
		{"N = 2^32-2", set(func(m []byte) { binary.BigEndian.PutUint32(m[38:], 1<<32-2) }), ErrTooManySkipped},
		{"gap 1001", set(func(m []byte) { binary.BigEndian.PutUint32(m[38:], 1+1001) }), ErrTooManySkipped},
		{"gap 1000, forged", set(func(m []byte) { binary.BigEndian.PutUint32(m[38:], 1+1000) }), ErrAuthentication},
		{"PN changed", set(func(m []byte) { m[37] ^= 1 }), ErrAuthentication},
		{"N changed", set(func(m []byte) { m[41] ^= 2 }), ErrAuthentication},
		{"ciphertext", set(func(m []byte) { m[wireHeaderSize] ^= 1 }), ErrAuthentication},
		{"tag", set(func(m []byte) { m[len(m)-1] ^= 0x80 }), ErrAuthentication},
		{"truncated tag", a2[:len(a2)-1], ErrAuthentication},
		{"appended byte", append(bytes.Clone(a2), 0), ErrAuthentication},
		{"stranger key", set(func(m []byte) { copy(m[2:34], stranger.PublicKey().Bytes()) }), ErrAuthentication},
		{"stranger key, new-chain gap", set(func(m []byte) {
			copy(m[2:34], stranger.PublicKey().Bytes())
			binary.BigEndian.PutUint32(m[38:], 1001)
		}), ErrTooManySkipped},
		{"stranger key, old-chain gap", set(func(m []byte) {
			copy(m[2:34], stranger.PublicKey().Bytes())
			binary.BigEndian.PutUint32(m[34:], 1+1001)
		}), ErrTooManySkipped},
		{"duplicate", a1, ErrDuplicate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { decryptFails(t, bob, c.msg, c.want) })
	}
	mustDecrypt(t, bob, a2, "a2")
	decryptFails(t, bob, a2, ErrDuplicate)
}

func TestInitiatorRejectsPrekeyAsRatchetKey(t *testing.T) {
	sk := make([]byte, 32)
	spk, _ := keys.GeneratePrivateKey()
	alice, _ := NewInitiator(sk, nil, spk.PublicKey(), nil)
	m := mustEncrypt(t, alice, "x")
	copy(m[2:34], spk.PublicKey().Bytes())
	decryptFails(t, alice, m, ErrAuthentication)
}

func TestResponderCannotSendFirst(t *testing.T) {
	_, bob := newPair(t, nil)
	before := state(t, bob)
	if _, err := bob.Encrypt([]byte("x")); !errors.Is(err, ErrNoSendingChain) {
		t.Fatalf("Encrypt = %v, want ErrNoSendingChain", err)
	}
	if !bytes.Equal(before, state(t, bob)) {
		t.Fatal("failed Encrypt changed the state")
	}
}

func TestSmallOrderInitiator(t *testing.T) {
	zero, _ := keys.NewPublicKey(make([]byte, 32))
	if _, err := NewInitiator(make([]byte, 32), nil, zero, nil); !errors.Is(err, keys.ErrSmallOrder) {
		t.Fatalf("NewInitiator with u = 0: %v", err)
	}
}

func TestConstructorErrors(t *testing.T) {
	spk, _ := keys.GeneratePrivateKey()
	pub := spk.PublicKey()
	sk := make([]byte, 32)
	for _, c := range []struct {
		name string
		sk   []byte
		ad   []byte
		cfg  *Config
	}{
		{"short sk", sk[:31], nil, nil},
		{"long sk", make([]byte, 33), nil, nil},
		{"long ad", sk, make([]byte, MaxADSize+1), nil},
		{"MaxSkip", sk, nil, &Config{MaxSkip: MaxLimit + 1}},
		{"MaxSkippedKeys", sk, nil, &Config{MaxSkippedKeys: MaxLimit + 1}},
		// The sealed interface leaves only one way to pass a foreign suite:
		// embedding one of package aead's.
		{"suite", sk, nil, &Config{Suite: wrappedSuite{aead.AES256GCM()}}},
	} {
		if _, err := NewInitiator(c.sk, c.ad, pub, c.cfg); err == nil {
			t.Errorf("%s: NewInitiator succeeded", c.name)
		}
		if _, err := NewResponder(c.sk, c.ad, spk, c.cfg); err == nil {
			t.Errorf("%s: NewResponder succeeded", c.name)
		}
		if err := c.cfg.Validate(); (err == nil) != (c.cfg == nil) {
			t.Errorf("%s: Validate = %v", c.name, err)
		}
	}
	for _, cfg := range []*Config{{MaxSkip: MaxLimit, MaxSkippedKeys: -1, Suite: aead.ChaCha20Poly1305()}, {}} {
		if err := cfg.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", *cfg, err)
		}
	}
	if _, err := NewInitiator(sk, nil, nil, nil); err == nil {
		t.Error("nil peer key accepted")
	}
	if _, err := NewResponder(sk, nil, nil, nil); err == nil {
		t.Error("nil ratchet key accepted")
	}
	s, err := NewInitiator(sk, make([]byte, MaxADSize), pub, &Config{MaxSkip: MaxLimit, MaxSkippedKeys: -5})
	if err != nil {
		t.Fatal(err)
	}
	if s.maxSkip != MaxLimit || s.maxKeys != 0 {
		t.Fatalf("limits %d, %d", s.maxSkip, s.maxKeys)
	}
	s, _ = NewInitiator(sk, nil, pub, &Config{MaxSkip: -1})
	if s.maxSkip != 0 || s.maxKeys != DefaultMaxSkippedKeys {
		t.Fatalf("limits %d, %d", s.maxSkip, s.maxKeys)
	}
}

// wrappedSuite is a foreign type that satisfies aead.Suite by embedding.
type wrappedSuite struct{ aead.Suite }

func TestMaxSkipZero(t *testing.T) {
	alice, bob := newPair(t, &Config{MaxSkip: -1})
	a0 := mustEncrypt(t, alice, "a0")
	a1 := mustEncrypt(t, alice, "a1")
	decryptFails(t, bob, a1, ErrTooManySkipped)
	mustDecrypt(t, bob, a0, "a0")
	mustDecrypt(t, bob, a1, "a1")
}

func TestMaxSkippedKeysZero(t *testing.T) {
	alice, bob := newPair(t, &Config{MaxSkippedKeys: -1})
	a0 := mustEncrypt(t, alice, "a0")
	a1 := mustEncrypt(t, alice, "a1")
	mustDecrypt(t, bob, a1, "a1")
	decryptFails(t, bob, a0, ErrDuplicate) // skipped, but not kept
	if bob.skipped.live != 0 || len(bob.skipped.ring) != 0 {
		t.Fatal("keys stored with MaxSkippedKeys = 0")
	}
}

// TestCounterLimits walks a chain to the end of its numbers: the largest
// N a sender uses is 2^32-3, after which Encrypt fails, and the next chain
// announces PN = 2^32-2.
func TestCounterLimits(t *testing.T) {
	alice, bob := newPair(t, nil)
	mustDecrypt(t, bob, mustEncrypt(t, alice, "a0"), "a0")
	mustDecrypt(t, alice, mustEncrypt(t, bob, "b0"), "b0")
	mustDecrypt(t, bob, mustEncrypt(t, alice, "a1"), "a1")
	// Relabel the chain positions: the keys do not depend on the numbers.
	alice.ns, bob.nr = 1<<32-3, 1<<32-3
	m := mustEncrypt(t, alice, "last")
	if n := binary.BigEndian.Uint32(m[38:]); n != 1<<32-3 {
		t.Fatalf("N = %d", n)
	}
	mustDecrypt(t, bob, m, "last")
	before := state(t, alice)
	if _, err := alice.Encrypt([]byte("x")); !errors.Is(err, ErrCounterOverflow) {
		t.Fatalf("Encrypt past the last number: %v", err)
	}
	if !bytes.Equal(before, state(t, alice)) {
		t.Fatal("failed Encrypt changed the state")
	}
	// The chain ends; a reply starts a new one with PN = 2^32-2.
	mustDecrypt(t, alice, mustEncrypt(t, bob, "b1"), "b1")
	m = mustEncrypt(t, alice, "next chain")
	if pn := binary.BigEndian.Uint32(m[34:]); pn != 1<<32-2 {
		t.Fatalf("PN = %d", pn)
	}
	mustDecrypt(t, bob, m, "next chain")
	// The state with these extremes survives a round trip.
	for _, s := range []*Session{alice, bob} {
		b := state(t, s)
		p, err := ParseSession(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(state(t, p), b) {
			t.Fatal("round trip")
		}
	}
}

func TestRatchetKeySource(t *testing.T) {
	k1, _ := keys.GeneratePrivateKey()
	k2, _ := keys.GeneratePrivateKey()
	spk, _ := keys.GeneratePrivateKey()
	cfg := &Config{}
	hazmat.SetRatchetKeySource(cfg, hazmat.Keys(k1))
	sk := make([]byte, 32)
	alice, err := NewInitiator(sk, nil, spk.PublicKey(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !alice.RatchetKey().Equal(k1.PublicKey()) {
		t.Fatal("initiator ignored the key source")
	}
	if _, err := NewInitiator(sk, nil, spk.PublicKey(), cfg); err == nil {
		t.Fatal("exhausted key source: NewInitiator succeeded")
	}
	bob, _ := NewResponder(sk, nil, spk, nil)
	hazmat.SetRatchetKeySource(bob, hazmat.Keys())
	a0 := mustEncrypt(t, alice, "a0")
	before := state(t, bob)
	if _, err := bob.Decrypt(a0); err == nil || errorKind(err) != "unexpected: "+err.Error() {
		t.Fatalf("Decrypt with a failing key source: %v", err)
	}
	if !bytes.Equal(before, state(t, bob)) {
		t.Fatal("Decrypt that failed to make a key pair changed the state")
	}
	hazmat.SetRatchetKeySource(bob, hazmat.Keys(k2))
	mustDecrypt(t, bob, a0, "a0")
	if !bob.RatchetKey().Equal(k2.PublicKey()) {
		t.Fatal("DH step ignored the key source")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("SetRatchetKeySource accepted a wrong target")
		}
	}()
	hazmat.SetRatchetKeySource(new(int), nil)
}

func TestAppendVariants(t *testing.T) {
	alice, bob := newPair(t, nil)
	prefix := []byte("prefix")
	m, err := alice.AppendEncrypt(bytes.Clone(prefix), []byte("hello"))
	if err != nil || !bytes.HasPrefix(m, prefix) {
		t.Fatal(err)
	}
	out, err := bob.AppendDecrypt(bytes.Clone(prefix), m[len(prefix):])
	if err != nil || string(out) != "prefixhello" {
		t.Fatalf("%q %v", out, err)
	}
	out, err = bob.AppendDecrypt(bytes.Clone(prefix), m[len(prefix):])
	if out != nil || !errors.Is(err, ErrDuplicate) {
		t.Fatalf("%q %v", out, err)
	}
}

func TestRedacted(t *testing.T) {
	alice, bob := newPair(t, nil)
	mustDecrypt(t, bob, mustEncrypt(t, alice, "x"), "x")
	for _, s := range []*Session{alice, bob} {
		secrets := [][]byte{s.rk[:], s.dhsPriv[:], s.cks[:], s.ckr[:]}
		for _, out := range []string{
			fmt.Sprintf("%v", s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), fmt.Sprintf("%s", s),
			fmt.Sprintf("%v", *s), fmt.Sprintf("%+v", *s), fmt.Sprintf("%#v", *s), fmt.Sprintf("%x", *s),
			fmt.Sprint(s), s.String(), s.GoString(),
		} {
			if !strings.Contains(out, "REDACTED") {
				t.Errorf("formatted session %q", out)
			}
			for _, k := range secrets {
				if strings.Contains(out, hex.EncodeToString(k)) || strings.Contains(out, fmt.Sprint(k)) {
					t.Errorf("formatted session contains key material: %q", out)
				}
			}
		}
	}
}

func TestClear(t *testing.T) {
	alice, bob := newPair(t, &Config{})
	mustEncrypt(t, alice, "lost")
	mustDecrypt(t, bob, mustEncrypt(t, alice, "x"), "x")
	if bob.skipped.live != 1 {
		t.Fatal("setup")
	}
	entries := bob.skipped.ring
	bob.Clear()
	var zero [32]byte
	if bob.rk != zero || bob.dhsPriv != zero || bob.cks != zero || bob.ckr != zero {
		t.Fatal("Clear left chain keys")
	}
	for _, e := range entries {
		if e.mk != zero {
			t.Fatal("Clear left a skipped key")
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("cleared session usable")
		}
	}()
	bob.Encrypt(nil)
}

func TestZeroSessionPanics(t *testing.T) {
	for name, f := range map[string]func(s *Session){
		"Encrypt":       func(s *Session) { s.Encrypt(nil) },
		"Decrypt":       func(s *Session) { s.Decrypt(nil) },
		"MarshalBinary": func(s *Session) { s.MarshalBinary() },
		"RatchetKey":    func(s *Session) { s.RatchetKey() },
		"HasReceived":   func(s *Session) { s.HasReceived() },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s on a zero Session did not panic", name)
				}
			}()
			f(new(Session))
		}()
	}
}
