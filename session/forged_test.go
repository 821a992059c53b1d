package session

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/ratchetkit/ratchetkit/ratchet"
)

// TestForgedTrials: Bob keeps the most sessions with Alice (current and
// 40 archived) and has answered on each, so each awaits a new ratchet
// key. A forged ratchet message under an unknown ratchet key is tried on
// the archived sessions only if its N is among the first of a chain; one
// under the ratchet key of one archived session is tried on that one
// alone. (Before archived sessions were filtered, every forgery was
// tried on all 41.)
func TestForgedTrials(t *testing.T) {
	ctx := context.Background()
	a, b := newFixedParty(t, "alice", Config{}), newFixedParty(t, "bob", Config{})
	var keyOf []byte // Alice's ratchet key in Bob's oldest session
	for i := range maxSessions {
		if err := a.m.StartSession(ctx, b.addr, b.bundle(0)); err != nil {
			t.Fatal(err)
		}
		m := must(t)(a.m.Encrypt(ctx, b.addr, []byte("hi")))
		if i == 0 {
			keyOf = m[1+x3dhHeaderSize+2 : 1+x3dhHeaderSize+34]
		}
		must(t)(b.m.Decrypt(ctx, a.addr, m))
		must(t)(a.m.Decrypt(ctx, b.addr, must(t)(b.m.Encrypt(ctx, a.addr, []byte("ok")))))
	}
	s := newState(a.addr, nil)
	defer s.free()
	if err := s.load(ctx, b.st); err != nil {
		t.Fatal(err)
	}
	if s.rec.n != maxSessions {
		t.Fatalf("%d sessions, want %d", s.rec.n, maxSessions)
	}
	forged := func(pub []byte, n uint32) []byte {
		m := make([]byte, minMessageSize+100)
		m[0], m[1] = typeRatchet, 0x05
		copy(m[2:34], pub)
		binary.BigEndian.PutUint32(m[38:], n)
		return m
	}
	unknown := fixedKey("forged ratchet key").PublicKey().Bytes()
	for _, c := range []struct {
		name  string
		msg   []byte
		tried int
	}{
		{"unknown key, N=500", forged(unknown, 500), 1},
		{"unknown key, N=31", forged(unknown, maxArchivedStep-1), maxSessions},
		{"unknown key, N=32", forged(unknown, maxArchivedStep), 1},
		{"oldest session's key, N=500", forged(keyOf, 500), 2},
	} {
		pm, err := parseMessage(c.msg)
		if err != nil {
			t.Fatal(err)
		}
		d := decryption{m: b.m, msg: pm}
		if _, err := d.tryAll(s); err != ratchet.ErrAuthentication {
			t.Errorf("%s: %v, want ratchet.ErrAuthentication", c.name, err)
		}
		if d.tried != c.tried {
			t.Errorf("%s: tried on %d sessions, want %d", c.name, d.tried, c.tried)
		}
	}
}
