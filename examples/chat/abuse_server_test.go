package chat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
	"github.com/ratchetkit/ratchetkit/examples/chat/internal/chattest"
	"github.com/ratchetkit/ratchetkit/examples/chat/server"
)

// The server abuse test plays, on loopback, each attack on the server from
// issue 10 against one running chatserver, with legitimate users of the
// client package talking throughout. Each attack must be refused or
// bounded, and the legitimate users must get every message exactly once.
// Everything is bounded in count, and every wait in time.
//
// Its helpers are named hostile…: raw HTTP and WebSocket clients that do
// what the client package never would.

// hostileWorld starts a server on 127.0.0.1 through Serve (so that its
// timeouts and connection caps apply) and returns a world for the
// end-to-end test's users.
func hostileWorld(t *testing.T, cfg server.Config) *world {
	t.Helper()
	w := emptyWorld(t)
	cfg.DBPath, cfg.Logger = w.dbPath, w.debugLogger()
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	w.srv, w.url = srv, "http://"+chattest.Serve(t, srv)
	t.Cleanup(func() {
		for _, u := range w.users {
			if u.c != nil {
				u.c.Close()
			}
		}
	})
	return w
}

// hostile is an account driven by hand.
type hostile struct {
	t     *testing.T
	base  string
	name  string
	token string
	ik    []byte
	ws    *websocket.Conn
}

// hostileDo sends a JSON request and returns the status and body.
func hostileDo(t *testing.T, base, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// hostileRegister registers name with fresh keys and n one-time prekeys,
// returning nil and the status if the server refuses.
func hostileRegister(t *testing.T, base, name string, n int) (*hostile, int) {
	t.Helper()
	ik, spk, opks := chattest.NewKeys(t, 1, n)
	status, b := hostileDo(t, base, "POST", "/v1/register", "", api.RegisterRequest{
		Name: name, IdentityKey: ik.PublicKey().Encode(), SignedPreKey: api.NewSignedPreKey(spk), OneTimePreKeys: api.NewPreKeys(opks),
	})
	if status != http.StatusCreated {
		return nil, status
	}
	var resp api.RegisterResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	return &hostile{t: t, base: base, name: name, token: resp.Token, ik: ik.PublicKey().Encode()}, status
}

func (h *hostile) dial() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer "+h.token)
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.base, "http")+"/v1/ws", &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		h.t.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	h.t.Cleanup(func() { c.CloseNow() })
	h.ws = c
}

func (h *hostile) write(b []byte) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.ws.Write(ctx, websocket.MessageText, b); err != nil {
		h.t.Fatal(err)
	}
}

// next returns the next frame that is not a prekey report.
func (h *hostile) next() api.Frame {
	h.t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, b, err := h.ws.Read(ctx)
		cancel()
		if err != nil {
			h.t.Fatal(err)
		}
		var f api.Frame
		if err := json.Unmarshal(b, &f); err != nil {
			h.t.Fatal(err)
		}
		if f.Type != api.FramePreKeys {
			return f
		}
	}
}

// flood sends n envelopes made by body to to, without waiting for each
// answer, and returns how many were stored before the first refusal and
// that refusal.
func (h *hostile) flood(to string, n int, body func(i int) []byte) (int, *api.Frame) {
	h.t.Helper()
	frames := make([][]byte, n)
	for i := range n {
		frames[i], _ = json.Marshal(api.Frame{Type: api.FrameSend, ID: fmt.Sprint(i), To: to, Body: body(i)})
	}
	werr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, b := range frames {
			if err := h.ws.Write(ctx, websocket.MessageText, b); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	stored := 0
	var refused *api.Frame
	for range n {
		switch f := h.next(); f.Type {
		case api.FrameSent:
			if refused == nil {
				stored++
			}
		case api.FrameError:
			if refused == nil {
				refused = &f
			}
		default:
			h.t.Fatalf("%s: frame %+v while sending", h.name, f)
		}
	}
	if err := <-werr; err != nil {
		h.t.Fatal(err)
	}
	return stored, refused
}

// hostileBody is a maximal envelope that names itself in every block, so
// that a scan of the server's files can find any piece of it.
func hostileBody(i int) []byte {
	block := fmt.Appendf(nil, "[hostile envelope %04d]", i)
	return bytes.Repeat(block, api.MaxEnvelopeSize/len(block))
}

func TestServerUnderAbuse(t *testing.T) {
	const readTimeout = time.Second
	w := hostileWorld(t, server.Config{
		RegisterBurst:      16,
		SendBurst:          50,
		MaxQueueBytes:      4 << 20,
		MaxTotalQueueBytes: 1536 << 10,
		ReadTimeout:        readTimeout,
		CheckpointInterval: 100 * time.Millisecond,
	})
	registrations := 0
	alice := w.newUser("alice", 5)
	bob := w.newUser("bob", 5)
	registrations += 2
	for i := range 2 {
		alice.send("bob", msg("alice", "bob", i))
		bob.send("alice", msg("bob", "alice", i))
	}
	alice.waitMessages("bob")
	bob.waitMessages("alice")

	mallory, _ := hostileRegister(t, w.url, "mallory", 0)
	eve, _ := hostileRegister(t, w.url, "eve", 0)
	victim, _ := hostileRegister(t, w.url, "victim", 0)
	registrations += 3
	mallory.dial()
	eve.dial()

	// Finding 2: one sender fills a recipient's queue. Mallory's share of
	// bob's queue (a quarter of its 4 MiB here; 16 MiB by default) ends
	// her flood; alice's messages to bob are still stored.
	bob.c.Disconnect()
	start := time.Now()
	stored, refused := mallory.flood("bob", 30, hostileBody)
	mallorySends := 30
	if refused == nil || refused.Code != api.CodeShareFull || stored != (4<<20)/4/api.MaxEnvelopeSize {
		t.Fatalf("mallory's flood of bob: %d stored, then %+v", stored, refused)
	}
	t.Logf("finding 2: %d envelopes of 48 KiB from one sender to offline bob: refused after %d, in %v, with %s: %q",
		mallorySends, stored, time.Since(start).Round(time.Millisecond), refused.Code, refused.Message)
	for i := range 3 {
		alice.send("bob", msg("alice", "bob", 10+i))
	}
	// The total budget: eve's flood of victim stops when the server holds
	// 1.5 MiB (1 GiB by default), whoever the recipients are.
	stored, refused = eve.flood("victim", 20, func(i int) []byte { return hostileBody(1000 + i) })
	if refused == nil || refused.Code != api.CodeServerFull {
		t.Fatalf("eve's flood of victim: %d stored, then %+v", stored, refused)
	}
	eveStored := stored
	t.Logf("finding 2: a second sender to another recipient stored %d more, then %s: %q", stored, refused.Code, refused.Message)
	// The send rate: mallory's next small sends stop at her burst (50
	// here, 200 by default) plus what 10 per second earned her since her
	// first send. Her refused sends counted too.
	stored, refused = mallory.flood("alice", 80, func(int) []byte { return []byte("x") })
	mallorySends += stored
	if earned := 50 + int(10*time.Since(start).Seconds()); refused == nil || refused.Code != api.CodeRateLimited || mallorySends < 50 || mallorySends > earned+1 {
		t.Fatalf("mallory's small sends: %d sends stored (at most %d earned), then %+v", mallorySends, earned, refused)
	}
	t.Logf("finding 2: send rate: refused after %d sends in %v with %s: %q", mallorySends, time.Since(start).Round(time.Millisecond), refused.Code, refused.Message)

	// Bob comes back and collects; the budget frees up, alice goes on.
	if err := bob.c.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	bob.waitMessages("alice")
	victim.dial()
	for range eveStored {
		f := victim.next()
		if f.Type != api.FrameMessage {
			t.Fatalf("victim got %+v", f)
		}
		b, _ := json.Marshal(api.Frame{Type: api.FrameAck, Seq: f.Seq})
		victim.write(b)
		if !bytes.HasPrefix(f.Body, []byte("[hostile envelope")) {
			t.Fatalf("victim got %q", f.Body[:20])
		}
	}
	bob.waitFor("an empty queue", func() bool { return w.queued("bob") == 0 && w.queued("victim") == 0 })
	for i := range 3 {
		alice.send("bob", msg("alice", "bob", 20+i))
	}
	bob.waitMessages("alice")

	// Finding 5: the delivered floods are gone from the database files,
	// the write-ahead log included, within a few checkpoint intervals.
	markers := [][]byte{[]byte("[hostile envelope 0000]"), []byte("[hostile envelope 0020]"), []byte("[hostile envelope 1000]"), []byte("[hostile envelope 1009]")}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var in []string
		for _, suffix := range []string{"", "-wal", "-shm"} {
			b, err := os.ReadFile(w.dbPath + suffix)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			for _, m := range markers {
				if bytes.Contains(b, m) {
					in = append(in, "db"+suffix+": "+string(m))
				}
			}
			if fi, err := os.Stat(w.dbPath + suffix); err == nil && fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("db%s has mode %v", suffix, fi.Mode().Perm())
			}
		}
		if len(in) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivered envelopes still in the files 5 s later: %v", in)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("finding 5: delivered floods gone from db, -wal and -shm; files owner-only")

	// Carol registers now, while the address may.
	carol := w.newUser("carol", 5)
	registrations++

	// Finding 3: ten more accounts from this one address (the last the
	// registration limit lets through) fetch bob's bundle as often as each
	// may. Bob's stock is topped up by his client as it goes, but the
	// fetchers together get only his allowance of one-time prekeys.
	var drainers []*hostile
	for i := 0; ; i++ {
		d, status := hostileRegister(t, w.url, fmt.Sprintf("drain%02d", i), 0)
		if d == nil {
			if status != http.StatusTooManyRequests || registrations != 16 {
				t.Fatalf("registration %d from one address: status %d", registrations+1, status)
			}
			break
		}
		registrations++
		drainers = append(drainers, d)
	}
	start = time.Now()
	taken, fetches := 0, 0
	for _, d := range drainers {
		for range 20 {
			status, b := hostileDo(t, w.url, "GET", "/v1/users/bob/bundle", d.token, nil)
			var bundle api.Bundle
			if status != http.StatusOK || json.Unmarshal(b, &bundle) != nil {
				t.Fatalf("drain fetch: %d %s", status, b)
			}
			fetches++
			if bundle.OneTimePreKey != nil {
				taken++
			}
		}
	}
	if taken > 11 {
		t.Fatalf("%d fetches from %d accounts took %d of bob's one-time prekeys, want at most 11", fetches, len(drainers), taken)
	}
	t.Logf("finding 3: %d accounts from one address (then 429), %d fetches of bob's bundle in %v took %d one-time prekeys",
		len(drainers), fetches, time.Since(start).Round(time.Millisecond), taken)
	// Carol reaches bob all the same, from his signed prekey.
	carol.send("bob", msg("carol", "bob", 0))
	bob.waitMessages("carol")
	bob.send("carol", msg("bob", "carol", 0))
	carol.waitMessages("bob")

	// Finding 4: an account with bob's identity key.
	status, b := hostileDo(t, w.url, "GET", "/v1/users/bob/bundle", mallory.token, nil)
	var bundle api.Bundle
	if status != http.StatusOK || json.Unmarshal(b, &bundle) != nil {
		t.Fatalf("bundle: %d", status)
	}
	status, b = hostileDo(t, w.url, "PUT", "/v1/keys", mallory.token, api.KeysRequest{IdentityKey: bundle.IdentityKey, SignedPreKey: bundle.SignedPreKey})
	if status != http.StatusConflict || !bytes.Contains(b, []byte(api.CodeKeyTaken)) {
		t.Fatalf("mallory taking bob's identity key: %d %s", status, b)
	}
	t.Logf("finding 4: bob's identity key under another name: %d %s", status, bytes.TrimSpace(b))

	// Info: a frame with two recipients, a path with "..".
	mallory.write([]byte(`{"type":"send","id":"dup","to":"victim","to":"alice","body":"eA=="}`))
	if f := mallory.next(); f.Type != api.FrameError || f.Code != api.CodeBadRequest {
		t.Fatalf("duplicate key: %+v", f)
	}
	req, _ := http.NewRequest("GET", w.url+"/v1/users/alice/../bob/bundle", nil)
	req.URL.Opaque = "/v1/users/alice/../bob/bundle"
	req.Header.Set("Authorization", "Bearer "+mallory.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("path with ..: status %d", resp.StatusCode)
	}

	// Finding 7: forty connections from this address trickle request
	// bodies, and mallory trickles a WebSocket frame. The per-address cap
	// (32, the legitimate clients' connections included) refuses the rest
	// at once; the read timeout ends every one. Legitimate clients keep
	// their connections and talk on afterwards.
	stop := make(chan struct{})
	defer close(stop)
	addr := strings.TrimPrefix(w.url, "http://")
	var lives []<-chan time.Duration
	lives = append(lives, chattest.Trickle(t, addr, chattest.WebSocketUpgrade(eve.token), stop))
	for range 40 {
		lives = append(lives, chattest.Trickle(t, addr, "POST /v1/register HTTP/1.1\r\nHost: chat\r\nContent-Length: 10000\r\n\r\n{", stop))
	}
	lived := chattest.Lifetimes(lives, readTimeout+2*time.Second)
	if len(lived) != len(lives) {
		t.Fatalf("%d of %d slow connections still open %v after they began", len(lives)-len(lived), len(lives), readTimeout+2*time.Second)
	}
	refusedAtOnce := 0
	for _, d := range lived {
		if d < readTimeout/2 {
			refusedAtOnce++
		}
	}
	if refusedAtOnce < 8 {
		t.Fatalf("only %d of 41 slow connections refused at once: %v", refusedAtOnce, lived)
	}
	t.Logf("finding 7: 41 slow connections from one address: %d refused at once, all closed within %v",
		refusedAtOnce, lived[len(lived)-1].Round(10*time.Millisecond))
	for i := range 2 {
		alice.send("bob", msg("alice", "bob", 30+i))
		bob.send("alice", msg("bob", "alice", 30+i))
		carol.send("alice", msg("carol", "alice", i))
	}
	alice.waitMessages("bob")
	alice.waitMessages("carol")
	bob.waitMessages("alice")
	bob.waitMessages("carol")
	carol.waitMessages("bob")
	total := 0
	for _, texts := range w.sent {
		total += len(texts)
	}
	t.Logf("legitimate users: %d messages, each delivered exactly once", total)
}
