package server_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
	"github.com/ratchetkit/ratchetkit/examples/chat/server"
)

// sendAll sends n envelopes of size bytes from w to to and returns how many
// were stored before the first refusal, and that refusal.
func sendAll(w *wsClient, to string, n, size int) (stored int, refused *api.Frame) {
	w.t.Helper()
	for i := range n {
		body := bytes.Repeat([]byte{byte(i)}, size)
		w.send(api.Frame{Type: api.FrameSend, ID: fmt.Sprint(i), To: to, Body: body})
		f := w.read()
		for f.Type == api.FramePreKeys {
			f = w.read()
		}
		switch f.Type {
		case api.FrameSent:
			stored++
		case api.FrameError:
			return stored, &f
		default:
			w.t.Fatalf("send %d: got %+v", i, f)
		}
	}
	return stored, nil
}

// One sender filling a recipient's queue with the largest envelopes is
// stopped at its share (a quarter of the recipient's bytes by default) and
// told so; another sender's envelopes to the same recipient are still
// stored and delivered, each once.
func TestQueueSenderShare(t *testing.T) { eachBackend(t, testQueueSenderShare) }

func testQueueSenderShare(t *testing.T, be backend) {
	ts := newServer(t, be, server.Config{})
	mallory := ts.register(t, "mallory", 0)
	alice := ts.register(t, "alice", 0)
	bob := ts.register(t, "bob", 0)
	wm := ts.dial(t, mallory.token)

	const wantShare = (16 << 20) / 4 / api.MaxEnvelopeSize // 85 with the defaults
	stored, refused := sendAll(wm, "bob", 200, api.MaxEnvelopeSize)
	if refused == nil || stored != wantShare || refused.Code != api.CodeShareFull {
		t.Fatalf("mallory stored %d envelopes, then %+v; want %d, then %s", stored, refused, wantShare, api.CodeShareFull)
	}
	if !strings.Contains(refused.Message, fmt.Sprint((16<<20)/4)) || refused.ID != fmt.Sprint(wantShare) {
		t.Fatalf("refusal does not name the limit or the frame: %+v", refused)
	}
	// Mallory can still send to others: the share is per recipient.
	ts.register(t, "carol", 0)
	if stored, refused := sendAll(wm, "carol", 1, 100); stored != 1 {
		t.Fatalf("mallory to carol: %+v", refused)
	}

	wa := ts.dial(t, alice.token)
	for i := range 5 {
		wa.send(api.Frame{Type: api.FrameSend, ID: fmt.Sprint(i), To: "bob", Body: fmt.Appendf(nil, "alice %d", i)})
		if f := wa.readType(api.FrameSent); f.ID != fmt.Sprint(i) {
			t.Fatalf("alice's send %d: %+v", i, f)
		}
	}
	wb := ts.dial(t, bob.token)
	got := map[string]int{}
	for range wantShare + 5 {
		f := wb.readType(api.FrameMessage)
		if f.From == "alice" {
			got[string(f.Body)]++
		}
		wb.send(api.Frame{Type: api.FrameAck, Seq: f.Seq})
	}
	for i := range 5 {
		if n := got[fmt.Sprintf("alice %d", i)]; n != 1 {
			t.Errorf("bob got alice's message %d %d times", i, n)
		}
	}
	waitFor(t, func() bool { return ts.queued(t, "bob") == 0 })
	// Collected envelopes free the share.
	if stored, refused := sendAll(wm, "bob", 1, api.MaxEnvelopeSize); stored != 1 {
		t.Fatalf("mallory after bob collected: %+v", refused)
	}
}

// A sender is limited to a burst of sends (200 by default) and then a rate,
// whoever the recipients are; the refusal names the limit.
func TestQueueSendRate(t *testing.T) { eachBackend(t, testQueueSendRate) }

func testQueueSendRate(t *testing.T, be backend) {
	// The default burst, and a rate slow enough that how fast the loop
	// runs on a loaded machine does not matter.
	ts := newServer(t, be, server.Config{SendRate: 0.5})
	mallory := ts.register(t, "mallory", 0)
	ts.register(t, "bob", 0)
	ts.register(t, "carol", 0)
	wm := ts.dial(t, mallory.token)
	stored := 0
	var refused *api.Frame
	for i := 0; refused == nil && i < 300; i++ {
		to := []string{"bob", "carol"}[i%2]
		var n int
		n, refused = sendAll(wm, to, 1, 10)
		stored += n
	}
	// A few tokens come back while the loop runs.
	if refused == nil || refused.Code != api.CodeRateLimited || stored < 200 || stored > 220 {
		t.Fatalf("stored %d, then %+v; want about 200, then %s", stored, refused, api.CodeRateLimited)
	}
	if !strings.Contains(refused.Message, "200") {
		t.Fatalf("refusal does not name the limit: %q", refused.Message)
	}
}

// The queues of all users together stop at MaxTotalQueueBytes.
func TestQueueTotalBudget(t *testing.T) { eachBackend(t, testQueueTotalBudget) }

func testQueueTotalBudget(t *testing.T, be backend) {
	ts := newServer(t, be, server.Config{MaxTotalQueueBytes: 10 << 10})
	alice := ts.register(t, "alice", 0)
	for _, name := range []string{"bob", "carol", "dave"} {
		ts.register(t, name, 0)
	}
	wa := ts.dial(t, alice.token)
	total := 0
	for _, to := range []string{"bob", "carol", "dave"} {
		n, refused := sendAll(wa, to, 2, 2<<10)
		total += n
		if refused != nil {
			if refused.Code != api.CodeServerFull || !strings.Contains(refused.Message, fmt.Sprint(10<<10)) {
				t.Fatalf("refusal %+v", refused)
			}
			break
		}
	}
	if total != 5 {
		t.Fatalf("%d envelopes of 2 KiB stored under a 10 KiB budget, want 5", total)
	}
}
