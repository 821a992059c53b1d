package client

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// The benchmarks here measure what a hostile contact costs the client per
// envelope, through receive (what the relay connection calls), on SQLite
// with synchronous=FULL as in real use. BenchmarkFloorGCMOpen, the
// standard library's AES-256-GCM refusing a forged 100-byte message, is
// the floor: no client can reject a forgery for less.

// peerSessions makes bob hold n sessions with "alice", each started by a
// prekey message from a raw session.Manager, and returns that Manager
// (whose current session is the last one bob accepted). The next sequence
// number to use is returned too.
func peerSessions(tb testing.TB, bob *Client, n int) (*session.Manager, int64) {
	tb.Helper()
	c := context.Background()
	alice, err := session.New(memory.New(), nil)
	if err == nil {
		err = alice.Init(c, deviceID)
	}
	if err != nil {
		tb.Fatal(err)
	}
	up, err := bob.mgr.PreKeyUpload(c)
	if err != nil {
		tb.Fatal(err)
	}
	seq := int64(1)
	for range n {
		if err := alice.DeleteSession(c, addr("bob")); err != nil {
			tb.Fatal(err)
		}
		if err := alice.StartSession(c, addr("bob"), up.Bundle(nil)); err != nil {
			tb.Fatal(err)
		}
		body, err := alice.Encrypt(c, addr("bob"), []byte("hello"))
		if err != nil {
			tb.Fatal(err)
		}
		if err := bob.receive(c, seq, "alice", body); err != nil {
			tb.Fatal(err)
		}
		seq++
	}
	return alice, seq
}

// forgedRatchetMessage is a ratchet message no session can open that costs
// each session the most work: a new ratchet key (a DH ratchet step) and a
// counter MaxSkip ahead (MaxSkip chain-key steps) before the tag fails.
func forgedRatchetMessage(tb testing.TB) []byte {
	tb.Helper()
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	m := []byte{0x01, 0x05}
	m = append(m, k.PublicKey().Bytes()...)
	m = binary.BigEndian.AppendUint32(m, 0)
	m = binary.BigEndian.AppendUint32(m, ratchet.DefaultMaxSkip)
	tail := make([]byte, 100+16)
	rand.Read(tail)
	return append(m, tail...)
}

// BenchmarkReceive measures one envelope from a contact with whom bob
// holds 41 sessions (the most the session layer keeps): a real message,
// and a forged one in a flood of them (after 64 forgeries already
// received, so that a per-peer limit, if any, is in force).
func BenchmarkReceive(b *testing.B) {
	ts := newServer(b)
	var rb recorder
	bob := ts.open(b, b.TempDir(), "bob", &rb)
	alice, seq := peerSessions(b, bob, session.DefaultMaxArchived+1)
	c := context.Background()

	b.Run("real", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			body, err := alice.Encrypt(c, addr("bob"), []byte("a real message of about the usual length"))
			if err != nil {
				b.Fatal(err)
			}
			if err := bob.receive(c, seq, "alice", body); err != nil {
				b.Fatal(err)
			}
			seq++
		}
	})
	forged := forgedRatchetMessage(b)
	for range 64 {
		if err := bob.receive(c, seq, "alice", forged); err != nil {
			b.Fatal(err)
		}
		seq++
	}
	b.Run("forged-flood", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := bob.receive(c, seq, "alice", forged); err != nil {
				b.Fatal(err)
			}
			seq++
		}
	})
}

// BenchmarkReceiveForgedTried measures a forged message that the client
// does try, on 41 sessions: the cost each of a peer's allowance of failed
// decryptions buys (the whole of each forgery's cost without the limit).
func BenchmarkReceiveForgedTried(b *testing.B) {
	ts := newServer(b)
	var rb recorder
	bob := ts.openWith(b, b.TempDir(), "bob", &rb, func(c *Config) { c.FailedDecryptBurst = 1 << 30 })
	_, seq := peerSessions(b, bob, session.DefaultMaxArchived+1)
	forged := forgedRatchetMessage(b)
	c := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := bob.receive(c, seq, "alice", forged); err != nil {
			b.Fatal(err)
		}
		seq++
	}
	if n := rb.count(EventUndecryptable); n != b.N {
		b.Fatalf("%d of %d forgeries tried", n, b.N)
	}
}

// BenchmarkReceiveHeld measures one large envelope from a contact whose
// identity key changed, so that its envelopes are held until the user
// approves, after 200 such envelopes of 48 KiB arrived already.
func BenchmarkReceiveHeld(b *testing.B) {
	ts := newServer(b)
	var ra, rb recorder
	alice := ts.open(b, b.TempDir(), "alice", &ra)
	bob := ts.open(b, b.TempDir(), "bob", &rb)
	seq := heldFrom(b, alice, bob)
	c := context.Background()
	big := make([]byte, api.MaxEnvelopeSize)
	rand.Read(big)
	// Past the bound, receive leaves the envelope on the server
	// (errLeft) rather than holding it.
	for range 200 {
		if err := bob.receive(c, seq, "alice", big); err != nil && !errors.Is(err, errLeft) {
			b.Fatal(err)
		}
		seq++
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := bob.receive(c, seq, "alice", big); err != nil && !errors.Is(err, errLeft) {
			b.Fatal(err)
		}
		seq++
	}
}

// heldFrom makes bob trust alice, then has alice reset her identity and
// write again, so that bob holds her envelopes. It returns the next
// sequence number.
func heldFrom(tb testing.TB, alice, bob *Client) int64 {
	tb.Helper()
	c := context.Background()
	if err := bob.receive(c, 1, "alice", queued(tb, alice, "hi")); err != nil {
		tb.Fatal(err)
	}
	if err := alice.ResetIdentity(c); err != nil {
		tb.Fatal(err)
	}
	if err := bob.receive(c, 2, "alice", queued(tb, alice, "hi")); err != nil {
		tb.Fatal(err)
	}
	return 3
}

func BenchmarkFloorGCMOpen(b *testing.B) {
	key := make([]byte, 32)
	rand.Read(key)
	blk, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(blk)
	nonce := make([]byte, g.NonceSize())
	ct := make([]byte, 100+16)
	rand.Read(ct)
	buf := make([]byte, 0, 100)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Open(buf, nonce, ct, nil); err == nil {
			b.Fatal("forgery accepted")
		}
	}
}
