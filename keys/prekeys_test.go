package keys

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"
)

// Stored prekey layouts, declared here: version 0x01, then
// signed: id u32be || created i64be (Unix seconds) || private (32) || signature (64);
// one-time: id u32be || private (32).
const (
	blobVersion      = 0x01
	signedBlobLen    = 1 + 4 + 8 + 32 + 64
	oneTimeBlobLen   = 1 + 4 + 32
	wireSignatureLen = 64
)

func newIdentity(t testing.TB) *IdentityKeyPair {
	t.Helper()
	ik, err := GenerateIdentityKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return ik
}

func TestSignedPreKeyGenerateVerify(t *testing.T) {
	ik := newIdentity(t)
	before := time.Now().Truncate(time.Second)
	spk, err := GenerateSignedPreKey(ik, 42)
	if err != nil {
		t.Fatal(err)
	}
	if spk.ID() != 42 || spk.Created().Before(before) || spk.Created().After(time.Now()) ||
		spk.Created().Nanosecond() != 0 {
		t.Fatalf("id %d, created %v", spk.ID(), spk.Created())
	}
	if err := spk.Verify(ik.PublicKey()); err != nil {
		t.Fatal(err)
	}
	sig := spk.Signature()
	if len(sig) != wireSignatureLen {
		t.Fatalf("signature of %d bytes", len(sig))
	}
	if err := VerifySignedPreKey(ik.PublicKey(), spk.PublicKey(), sig); err != nil {
		t.Fatal(err)
	}
	// The signature covers the 33-byte encoding, type byte included, and
	// nothing else.
	enc := append([]byte{wireKeyType}, spk.PublicKey().Bytes()...)
	if !ik.PublicKey().Verify(enc, sig) || ik.PublicKey().Verify(enc[1:], sig) {
		t.Fatal("signature is not over 0x05 || u")
	}
	if !spk.PublicKey().Equal(spk.PrivateKey().PublicKey()) {
		t.Fatal("PublicKey differs from PrivateKey().PublicKey()")
	}
	spk.Signature()[0] ^= 1
	if err := spk.Verify(ik.PublicKey()); err != nil {
		t.Fatal("signature changed through Signature()'s slice")
	}
}

func TestSignedPreKeyTampering(t *testing.T) {
	ik, other := newIdentity(t), newIdentity(t)
	spk, err := GenerateSignedPreKey(ik, 7)
	if err != nil {
		t.Fatal(err)
	}
	sig := spk.Signature()
	if err := spk.Verify(other.PublicKey()); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("verified under another identity: %v", err)
	}
	if err := VerifySignedPreKey(ik.PublicKey(), randomPublicKey(t), sig); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("verified over another prekey: %v", err)
	}
	for i := range 8 * len(sig) {
		bad := bytes.Clone(sig)
		bad[i/8] ^= 1 << (i % 8)
		if err := VerifySignedPreKey(ik.PublicKey(), spk.PublicKey(), bad); !errors.Is(err, ErrInvalidSignature) {
			t.Fatalf("signature bit %d flipped: %v", i, err)
		}
	}
	for _, n := range []int{0, 63, 65} {
		bad := append(bytes.Clone(sig), 0)[:n]
		if err := VerifySignedPreKey(ik.PublicKey(), spk.PublicKey(), bad); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("signature of %d bytes: %v", n, err)
		}
		if _, err := NewSignedPreKey(1, spk.PrivateKey(), bad, time.Now()); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("NewSignedPreKey with %d-byte signature: %v", n, err)
		}
	}
	// A valid signature from a different key of the prekey, re-assembled.
	forged, err := NewSignedPreKey(7, spk.PrivateKey(), other.Sign(spk.PublicKey().Encode()), spk.Created())
	if err != nil {
		t.Fatal(err)
	}
	if err := forged.Verify(ik.PublicKey()); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("another identity's signature accepted: %v", err)
	}
}

func TestSignedPreKeyMarshal(t *testing.T) {
	ik := newIdentity(t)
	for _, id := range []uint32{0, 1, 0x01020304, math.MaxUint32} {
		spk, err := GenerateSignedPreKey(ik, id)
		if err != nil {
			t.Fatal(err)
		}
		b, err := spk.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != signedBlobLen || b[0] != blobVersion || binary.BigEndian.Uint32(b[1:]) != id ||
			int64(binary.BigEndian.Uint64(b[5:])) != spk.Created().Unix() ||
			!bytes.Equal(b[13:45], spk.PrivateKey().Bytes()) || !bytes.Equal(b[45:], spk.Signature()) {
			t.Fatalf("blob %x does not follow the layout", b)
		}
		got, err := ParseSignedPreKey(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID() != id || !got.Created().Equal(spk.Created()) || !got.PrivateKey().Equal(spk.PrivateKey()) ||
			!bytes.Equal(got.Signature(), spk.Signature()) || !got.PublicKey().Equal(spk.PublicKey()) {
			t.Fatalf("round trip changed the prekey")
		}
		if err := got.Verify(ik.PublicKey()); err != nil {
			t.Fatal(err)
		}
		again, _ := got.MarshalBinary()
		if !bytes.Equal(again, b) {
			t.Fatal("re-marshalled blob differs")
		}

		// Corrupted key or signature bytes still parse; Verify catches them.
		// (0x10 avoids the bits that clamping overrides.)
		for _, i := range []int{13, 44, 45, signedBlobLen - 1} {
			bad := bytes.Clone(b)
			bad[i] ^= 0x10
			p, err := ParseSignedPreKey(bad)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Verify(ik.PublicKey()); !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("byte %d corrupted: %v", i, err)
			}
		}
	}
}

func TestSignedPreKeyCreated(t *testing.T) {
	ik := newIdentity(t)
	spk, _ := GenerateSignedPreKey(ik, 1)
	for _, created := range []time.Time{
		time.Unix(0, 0), time.Unix(-1, 0), time.Date(1969, 7, 20, 20, 17, 40, 999, time.UTC),
		time.Date(2106, 2, 7, 6, 28, 16, 0, time.UTC), {},
	} {
		p, err := NewSignedPreKey(1, spk.PrivateKey(), spk.Signature(), created)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := p.MarshalBinary()
		got, err := ParseSignedPreKey(b)
		if err != nil || !got.Created().Equal(created.Truncate(time.Second)) {
			t.Errorf("created %v came back as %v (%v)", created, got.Created(), err)
		}
	}
}

func TestParseSignedPreKeyInvalid(t *testing.T) {
	spk, _ := GenerateSignedPreKey(newIdentity(t), 1)
	b, _ := spk.MarshalBinary()
	for n := 0; n <= signedBlobLen+8; n++ {
		in := append(bytes.Clone(b), make([]byte, 8)...)[:n]
		_, err := ParseSignedPreKey(in)
		if n == signedBlobLen {
			if err != nil {
				t.Errorf("length %d: %v", n, err)
			}
		} else if !errors.Is(err, ErrInvalidEncoding) {
			t.Errorf("length %d: error %v, want ErrInvalidEncoding", n, err)
		}
	}
	for v := range 256 {
		in := bytes.Clone(b)
		in[0] = byte(v)
		if _, err := ParseSignedPreKey(in); (err == nil) != (v == blobVersion) {
			t.Errorf("version byte 0x%02x: %v", v, err)
		}
	}
}

func TestOneTimePreKeys(t *testing.T) {
	keys, err := GenerateOneTimePreKeys(100, 50)
	if err != nil || len(keys) != 50 {
		t.Fatalf("%d keys, %v", len(keys), err)
	}
	seen := map[string]bool{}
	for i, k := range keys {
		if k.ID() != 100+uint32(i) {
			t.Errorf("key %d has id %d", i, k.ID())
		}
		pub := string(k.PublicKey().Encode())
		if seen[pub] {
			t.Fatal("duplicate key in a batch")
		}
		seen[pub] = true
		if !k.PublicKey().Equal(k.PrivateKey().PublicKey()) {
			t.Fatal("PublicKey differs from PrivateKey().PublicKey()")
		}
	}

	none, err := GenerateOneTimePreKeys(5, 0)
	if err != nil || len(none) != 0 {
		t.Errorf("n = 0: %d keys, %v", len(none), err)
	}
	if _, err := GenerateOneTimePreKeys(5, -1); err == nil {
		t.Error("n = -1 accepted")
	}
}

// TestOneTimePreKeysIDSpace checks the top of the u32 id space: a batch may
// end at 2^32 − 1 but never wrap past it.
func TestOneTimePreKeysIDSpace(t *testing.T) {
	for _, c := range []struct {
		first uint32
		n     int
		ok    bool
	}{
		{math.MaxUint32, 1, true},
		{math.MaxUint32, 2, false},
		{math.MaxUint32 - 9, 10, true},
		{math.MaxUint32 - 9, 11, false},
		{math.MaxUint32, 0, true},
		{0, 1, true},
		{math.MaxUint32 - 1<<20, 1<<20 + 2, false},
		{1 << 31, math.MaxInt, false},
	} {
		keys, err := GenerateOneTimePreKeys(c.first, c.n)
		if c.ok != (err == nil) {
			t.Errorf("first %d, n %d: error %v", c.first, c.n, err)
			continue
		}
		if c.ok && c.n > 0 && keys[len(keys)-1].ID() != c.first+uint32(c.n-1) {
			t.Errorf("first %d, n %d: last id %d", c.first, c.n, keys[len(keys)-1].ID())
		}
	}
}

func TestOneTimePreKeyMarshal(t *testing.T) {
	keys, _ := GenerateOneTimePreKeys(math.MaxUint32-1, 2)
	for _, k := range keys {
		b, err := k.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != oneTimeBlobLen || b[0] != blobVersion || binary.BigEndian.Uint32(b[1:]) != k.ID() ||
			!bytes.Equal(b[5:], k.PrivateKey().Bytes()) {
			t.Fatalf("blob %x does not follow the layout", b)
		}
		got, err := ParseOneTimePreKey(b)
		if err != nil || got.ID() != k.ID() || !got.PrivateKey().Equal(k.PrivateKey()) || !got.PublicKey().Equal(k.PublicKey()) {
			t.Fatalf("round trip: %v", err)
		}
		for n := 0; n <= oneTimeBlobLen+8; n++ {
			in := append(bytes.Clone(b), make([]byte, 8)...)[:n]
			if _, err := ParseOneTimePreKey(in); (err == nil) != (n == oneTimeBlobLen) ||
				(err != nil && !errors.Is(err, ErrInvalidEncoding)) {
				t.Errorf("length %d: %v", n, err)
			}
		}
		for v := range 256 {
			in := bytes.Clone(b)
			in[0] = byte(v)
			if _, err := ParseOneTimePreKey(in); (err == nil) != (v == blobVersion) {
				t.Errorf("version byte 0x%02x: %v", v, err)
			}
		}
	}
	p, _ := GeneratePrivateKey()
	if o := NewOneTimePreKey(9, p); o.ID() != 9 || o.PrivateKey() != p {
		t.Error("NewOneTimePreKey")
	}
}

func TestIdentityKeyPair(t *testing.T) {
	ik := newIdentity(t)
	loaded, err := NewIdentityKeyPair(ik.PrivateKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.PublicKey().Equal(ik.PublicKey()) || !loaded.PrivateKey().Equal(ik.PrivateKey()) {
		t.Fatal("reloaded identity differs")
	}
	msg := []byte("identity")
	s1, s2 := ik.Sign(msg), loaded.Sign(msg)
	if len(s1) != wireSignatureLen || bytes.Equal(s1, s2) {
		t.Fatal("signatures are not 64 random-nonce bytes")
	}
	if !ik.PublicKey().Verify(msg, s2) || !loaded.PublicKey().Verify(msg, s1) {
		t.Fatal("signature rejected")
	}
	// Spec-exact signatures never set the sign bit in sig[63].
	for range 64 {
		if s := ik.Sign(msg); s[63]&0x80 != 0 {
			t.Fatal("sig[63] bit 7 set")
		}
	}
	for n := 0; n <= 40; n++ {
		if _, err := NewIdentityKeyPair(make([]byte, n)); (err == nil) != (n == 32) {
			t.Errorf("length %d: %v", n, err)
		}
	}
	ik.Clear()
	if !bytes.Equal(ik.PrivateKey().Bytes(), make([]byte, 32)) {
		t.Fatal("Clear left the private key")
	}
}

func TestSignAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	ik := newIdentity(t)
	msg := make([]byte, 100)
	sig := ik.Sign(msg)
	pub := ik.PublicKey()
	pub.Verify(msg, sig) // fills the cache
	if n := testing.AllocsPerRun(20, func() { ik.Sign(msg) }); n != 1 {
		t.Errorf("Sign: %v allocations, want 1 (the returned signature)", n)
	}
	if n := testing.AllocsPerRun(20, func() { pub.Verify(msg, sig) }); n != 0 {
		t.Errorf("Verify: %v allocations, want 0", n)
	}
	spk, _ := GenerateSignedPreKey(ik, 1)
	if n := testing.AllocsPerRun(20, func() { spk.Verify(pub) }); n != 0 {
		t.Errorf("SignedPreKey.Verify: %v allocations, want 0", n)
	}
}

// TestBytesIntoArray pins what ratchetkit's own packages rely on since the
// exported Array accessors went away: Bytes inlines, so copying its result
// into a fixed-size array allocates nothing.
func TestBytesIntoArray(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	p, _ := GeneratePrivateKey()
	pub := p.PublicKey()
	var a, b [32]byte
	if n := testing.AllocsPerRun(20, func() {
		copy(a[:], pub.Bytes())
		copy(b[:], p.Bytes())
	}); n != 0 {
		t.Errorf("copying Bytes into arrays: %v allocations, want 0", n)
	}
	if !bytes.Equal(a[:], pub.Bytes()) || !bytes.Equal(b[:], p.Bytes()) {
		t.Error("the copies differ from the keys")
	}
}
