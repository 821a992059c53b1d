package chat_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
	"github.com/ratchetkit/ratchetkit/examples/chat/client"
)

// The client-side abuse test plays two hostile contacts of Bob's against
// his client, on loopback, while Alice and Carol write to him:
//
//   - Mallory resets her identity key, writes once (so that Bob holds her
//     envelopes until he approves the new key), then floods him with large
//     forged envelopes. Bob's held envelopes stay within his bounds, the
//     rest stay unacknowledged in the server's queue, and after he
//     approves they come in again and are dealt with.
//   - Eve floods him with forged ratchet messages, each of which costs a
//     trial decryption on every session Bob keeps with her. After her
//     allowance, they are dropped without one.
//
// Alice and Carol get every message through exactly once.

// Bob's limits in this test: small, so that a short flood crosses them.
const (
	abuseMaxHeld      = 10
	abuseMaxHeldBytes = 5 * api.MaxEnvelopeSize
	abuseBurst        = 5
	abuseRate         = 0.5
	malloryFlood      = 40 // envelopes of api.MaxEnvelopeSize
	eveFlood          = 100
)

// openLimited is user.open with Bob's limits.
func (u *user) openLimited() {
	u.w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := client.Open(ctx, client.Config{
		Dir: u.dir, Server: u.w.url, Name: u.name, OnEvent: u.onEvent,
		PreKeyBatch: u.batch, MinPreKeys: u.batch,
		MaxHeld: abuseMaxHeld, MaxHeldBytes: abuseMaxHeldBytes,
		FailedDecryptBurst: abuseBurst, FailedDecryptRate: abuseRate,
	})
	if err != nil {
		u.w.t.Fatalf("%s: open: %v", u.name, err)
	}
	u.c = c
	if err := c.Connect(ctx); err != nil {
		u.w.t.Fatalf("%s: connect: %v", u.name, err)
	}
}

// raw connects to the relay as u, with u's client disconnected, to send
// what no client would.
func (u *user) raw(ctx context.Context) (*websocket.Conn, error) {
	u.c.Disconnect()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(u.dir, "chat.db")+"?mode=ro")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var token string
	if err := db.QueryRowContext(ctx, `SELECT token FROM account`).Scan(&token); err != nil {
		return nil, err
	}
	ws, _, err := websocket.Dial(ctx, "ws"+u.w.url[len("http"):]+"/v1/ws", &websocket.DialOptions{
		HTTPHeader: map[string][]string{"Authorization": {"Bearer " + token}},
	})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(api.MaxFrameSize)
	return ws, nil
}

// flood sends n envelopes made by body to "to", each after the server
// answered the one before, and returns how many the server stored.
func flood(ctx context.Context, ws *websocket.Conn, to string, n int, body func() []byte) (int, error) {
	stored := 0
	for i := range n {
		id := fmt.Sprint(i)
		b, err := json.Marshal(&api.Frame{Type: api.FrameSend, ID: id, To: to, Body: body()})
		if err != nil {
			return stored, err
		}
		if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
			return stored, err
		}
		for {
			_, data, err := ws.Read(ctx)
			if err != nil {
				return stored, err
			}
			var f api.Frame
			if err := json.Unmarshal(data, &f); err != nil {
				return stored, err
			}
			if f.ID != id {
				continue
			}
			if f.Type == api.FrameSent {
				stored++
			}
			break
		}
	}
	return stored, ws.Close(websocket.StatusNormalClosure, "")
}

// forgedRatchet is a ratchet message that every session tries and fails:
// a fresh ratchet key, a counter far ahead, random ciphertext.
func forgedRatchet() []byte {
	k, _ := ecdh.X25519().GenerateKey(rand.Reader)
	m := append([]byte{0x01, 0x05}, k.PublicKey().Bytes()...)
	m = binary.BigEndian.AppendUint32(m, 0)
	m = binary.BigEndian.AppendUint32(m, 1000)
	tail := make([]byte, 116)
	rand.Read(tail)
	return append(m, tail...)
}

// heldFrom reads, from u's chat.db, how many envelopes of sender are held
// and their bytes.
func (u *user) heldFrom(sender string) (n int, size int64) {
	u.w.t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(u.dir, "chat.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		u.w.t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT count(*), coalesce(sum(length(body)), 0) FROM held WHERE sender = ?`, sender).Scan(&n, &size); err != nil {
		u.w.t.Fatal(err)
	}
	return n, size
}

// countFrom counts the events of kind about peer.
func countFrom(events []client.Event, kind client.EventKind, peer string) int {
	n := 0
	for _, e := range events {
		if e.Kind == kind && e.Peer == peer {
			n++
		}
	}
	return n
}

func (u *user) eventsFrom(kind client.EventKind, peer string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return countFrom(u.events, kind, peer)
}

func TestAbuseOfClient(t *testing.T) {
	w := newWorld(t)
	bob := &user{w: w, name: "bob", dir: filepath.Join(t.TempDir(), "bob"), batch: 5,
		got: map[string][]string{}, signal: make(chan struct{}, 1)}
	w.users["bob"] = bob
	bob.openLimited()
	alice, carol := w.newUser("alice", 5), w.newUser("carol", 5)
	mallory, eve := w.newUser("mallory", 5), w.newUser("eve", 5)
	for _, u := range []*user{alice, carol, mallory, eve} {
		u.send("bob", msg(u.name, "bob", 0))
		bob.waitMessages(u.name)
	}
	if err := mallory.c.ResetIdentity(context.Background()); err != nil {
		t.Fatal(err)
	}
	mallory.send("bob", msg("mallory", "bob", 1))
	bob.waitFor("mallory's identity change", func() bool {
		return countFrom(bob.events, client.EventIdentityChanged, "mallory") > 0
	})

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	type result struct {
		stored int
		err    error
	}
	start := time.Now()
	attack := func(u *user, n int, body func() []byte) chan result {
		ws, err := u.raw(ctx)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan result, 1)
		go func() {
			n, err := flood(ctx, ws, "bob", n, body)
			done <- result{n, err}
		}()
		return done
	}
	mDone := attack(mallory, malloryFlood, func() []byte {
		b := make([]byte, api.MaxEnvelopeSize)
		rand.Read(b)
		return b
	})
	eDone := attack(eve, eveFlood, forgedRatchet)
	// The legitimate users talk meanwhile.
	for i := range 10 {
		alice.send("bob", msg("alice", "bob", 10+i))
		carol.send("bob", msg("carol", "bob", 10+i))
		if i%3 == 0 {
			bob.send("alice", msg("bob", "alice", i))
		}
	}
	m, e := <-mDone, <-eDone
	if m.err != nil || e.err != nil {
		t.Fatalf("floods: %v, %v", m.err, e.err)
	}
	t.Logf("the server stored %d of mallory's %d envelopes and %d of eve's %d", m.stored, malloryFlood, e.stored, eveFlood)
	alice.waitMessages("bob")
	bob.waitMessages("alice")
	bob.waitMessages("carol")

	// Mallory: what Bob holds stays within his bounds; what did not fit
	// stays in the server's queue, so it made no room there for more.
	// Eve: her forgeries are all acknowledged, and few were tried.
	var held int
	var heldBytes int64
	full := m.stored*api.MaxEnvelopeSize > abuseMaxHeldBytes // the flood crossed the bound
	bob.waitFor("bob to deal with both floods", func() bool {
		if full && countFrom(bob.events, client.EventHeldFull, "mallory") == 0 {
			return false
		}
		held, heldBytes = bob.heldFrom("mallory")
		return w.queued("bob") == m.stored+1-held
	})
	if held > abuseMaxHeld || heldBytes > abuseMaxHeldBytes {
		t.Fatalf("bob holds %d envelopes (%d bytes) of mallory's, over his bounds of %d and %d", held, heldBytes, abuseMaxHeld, abuseMaxHeldBytes)
	}
	tried := bob.eventsFrom(client.EventUndecryptable, "eve")
	if limit := abuseBurst + int(time.Since(start).Seconds()*abuseRate) + 1; tried > limit {
		t.Fatalf("bob tried %d of eve's forgeries, more than the %d her allowance gives", tried, limit)
	}
	t.Logf("bob holds %d of mallory's envelopes (%d bytes), %d left on the server; tried %d of eve's %d forgeries in %v",
		held, heldBytes, w.queued("bob"), tried, e.stored, time.Since(start).Round(time.Millisecond))

	// Bob approves mallory's new key: what he held comes in, then the
	// rest from the server, all acknowledged; mallory's one real message
	// among them is reported once.
	if err := bob.c.ApproveIdentity(ctx, "mallory"); err != nil {
		t.Fatal(err)
	}
	bob.waitFor("an empty queue", func() bool { return w.queued("bob") == 0 })
	bob.waitMessages("mallory")
	if n, _ := bob.heldFrom("mallory"); n != 0 {
		t.Fatalf("%d envelopes still held after approval", n)
	}

	// Everyone else still gets everything, once.
	for i := range 3 {
		alice.send("bob", msg("alice", "bob", 30+i))
		carol.send("bob", msg("carol", "bob", 30+i))
		bob.send("carol", msg("bob", "carol", 30+i))
	}
	bob.waitMessages("alice")
	bob.waitMessages("carol")
	carol.waitMessages("bob")
	for _, peer := range []string{"alice", "carol"} {
		if n := bob.eventsFrom(client.EventUndecryptable, peer); n != 0 {
			t.Fatalf("%d of %s's envelopes undecryptable", n, peer)
		}
	}
}
