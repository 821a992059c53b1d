package chat_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ratchetkit/ratchetkit/examples/chat/client"
	"github.com/ratchetkit/ratchetkit/examples/chat/internal/chattest"
	"github.com/ratchetkit/ratchetkit/examples/chat/server"
	"github.com/ratchetkit/ratchetkit/senderkey"
)

// The groups end-to-end test: three users, one with two devices, and a
// group of all of them, on one server. It tracks, for every device, the
// plaintexts it should show and checks that each arrives there exactly
// once and nowhere else.

// gdev is one device of a user: its own directory and client.
type gdev struct {
	w    *gworld
	name string // the user
	key  string // "alice/2"
	dir  string
	link string // the link code it joined with, for the first open
	c    *client.Client

	mu     sync.Mutex
	got    map[string]int // plaintexts shown, and how often
	events []client.Event
	signal chan struct{}
}

type gworld struct {
	t      *testing.T
	url    string
	dbPath string
	logs   *logBuffer
	srv    *server.Server
	devs   []*gdev
	// want is what each device should show; sent is every plaintext.
	mu   sync.Mutex
	want map[string]map[string]bool
	sent []string
}

func newGWorld(t *testing.T, dbPath string) *gworld {
	w := &gworld{t: t, dbPath: dbPath, logs: &logBuffer{}, want: map[string]map[string]bool{}}
	lw := &world{logs: w.logs}
	srv, err := server.New(server.Config{DBPath: w.dbPath, Logger: lw.debugLogger(), BundleBurst: 1000, BundleRate: 100})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	w.srv, w.url = srv, hs.URL
	t.Cleanup(func() {
		for _, d := range w.devs {
			if d.c != nil {
				d.c.Close()
			}
		}
		hs.Close()
		srv.Close()
	})
	return w
}

// device opens a device of user: the first registers the name, later ones
// join with a link code from the device given.
func (w *gworld) device(user string, from *gdev) *gdev {
	w.t.Helper()
	n := 1
	for _, d := range w.devs {
		if d.name == user {
			n++
		}
	}
	d := &gdev{w: w, name: user, key: fmt.Sprintf("%s/%d", user, n), dir: filepath.Join(w.t.TempDir(), user),
		got: map[string]int{}, signal: make(chan struct{}, 1)}
	if from != nil {
		code, err := from.c.LinkCode(context.Background())
		if err != nil {
			w.t.Fatalf("%s: link code: %v", from.key, err)
		}
		d.link = code
	}
	w.devs = append(w.devs, d)
	w.want[d.key] = map[string]bool{}
	d.open()
	if got := fmt.Sprintf("%s/%d", user, d.c.Device()); got != d.key {
		w.t.Fatalf("device %s opened as %s", d.key, got)
	}
	return d
}

func (d *gdev) onEvent(ev client.Event) {
	d.mu.Lock()
	d.events = append(d.events, ev)
	if ev.Kind == client.EventMessage {
		d.got[ev.Text]++
	}
	d.mu.Unlock()
	select {
	case d.signal <- struct{}{}:
	default:
	}
}

func (d *gdev) open() {
	d.w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := client.Open(ctx, client.Config{Dir: d.dir, Server: d.w.url, Name: d.name, Link: d.link,
		OnEvent: d.onEvent, PreKeyBatch: 5, MinPreKeys: 2, DeviceListTTL: -1})
	if err != nil {
		d.w.t.Fatalf("%s: open: %v", d.key, err)
	}
	d.c = c
	if err := c.Connect(ctx); err != nil {
		d.w.t.Fatalf("%s: connect: %v", d.key, err)
	}
}

func (d *gdev) restart() {
	d.w.t.Helper()
	if err := d.c.Close(); err != nil {
		d.w.t.Fatal(err)
	}
	d.open()
}

func (d *gdev) disconnect() { d.c.Disconnect() }

func (d *gdev) connect() {
	d.w.t.Helper()
	if err := d.c.Connect(context.Background()); err != nil {
		d.w.t.Fatalf("%s: connect: %v", d.key, err)
	}
}

// expect records that text should show on the devices named.
func (w *gworld) expect(text string, on ...*gdev) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sent = append(w.sent, text)
	for _, d := range on {
		w.want[d.key][text] = true
	}
}

// send sends a pairwise message from d to peer; on names the devices that
// should show it (the peer's, and d's user's other devices).
func (d *gdev) send(peer, text string, on ...*gdev) {
	d.w.t.Helper()
	d.w.expect(text, on...)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := d.c.Send(ctx, peer, text); err != nil {
		d.w.t.Fatalf("%s → %s: %v", d.key, peer, err)
	}
}

// sendGroup sends a group message from d; on names the devices that
// should show it.
func (d *gdev) sendGroup(group, text string, on ...*gdev) {
	d.w.t.Helper()
	d.w.expect(text, on...)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := d.c.SendGroup(ctx, group, text); err != nil {
		d.w.t.Fatalf("%s → group %s: %v", d.key, group, err)
	}
}

func (d *gdev) waitFor(what string, cond func() bool) {
	d.w.t.Helper()
	waitUntil(&d.mu, d.signal, cond, func() {
		d.w.t.Fatalf("%s: timed out waiting for %s; got %v; events %+v", d.key, what, d.got, d.events)
	})
}

// settle waits until every connected device shows what it should so far.
func (w *gworld) settle(devs ...*gdev) {
	w.t.Helper()
	for _, d := range devs {
		w.mu.Lock()
		want := maps.Clone(w.want[d.key])
		w.mu.Unlock()
		d.waitFor(fmt.Sprintf("%d messages", len(want)), func() bool {
			for text := range want {
				if d.got[text] == 0 {
					return false
				}
			}
			return true
		})
	}
}

// groupEvent waits until the latest EventGroup on d about group says its
// member list is members.
func (d *gdev) groupEvent(group string, members ...string) {
	d.w.t.Helper()
	slices.Sort(members)
	d.waitFor(fmt.Sprintf("group %s with %v", group, members), func() bool {
		for _, e := range slices.Backward(d.events) {
			if e.Kind == client.EventGroup && e.Group == group {
				return slices.Equal(slices.Sorted(slices.Values(e.Members)), members)
			}
		}
		return false
	})
}

func (d *gdev) undecryptable() []client.Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []client.Event
	for _, e := range d.events {
		if e.Kind == client.EventUndecryptable || e.Kind == client.EventSendFailed || e.Kind == client.EventError {
			out = append(out, e)
		}
	}
	return out
}

// groupBodies returns the Sender Key envelopes queued for one device.
func (w *gworld) groupBodies(recipient string, device int) (bodies [][]byte, senders [][2]any) {
	w.t.Helper()
	db := w.openDB()
	defer db.Close()
	rows, err := db.Query(`SELECT sender, sender_device, body FROM queue WHERE recipient = $1 AND device = $2 ORDER BY seq`, recipient, device)
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var from string
		var dev int
		var body []byte
		if err := rows.Scan(&from, &dev, &body); err != nil {
			w.t.Fatal(err)
		}
		if len(body) > 0 && body[0] == 0x33 {
			bodies = append(bodies, body)
			senders = append(senders, [2]any{from, dev})
		}
	}
	return bodies, senders
}

// forward plays a server that hands envelopes to a device they were not
// for: it queues bodies for recipient's device 1 as if sent by senders.
func (w *gworld) forward(recipient string, bodies [][]byte, senders [][2]any) {
	w.t.Helper()
	db := w.openDB()
	defer db.Close()
	for i, b := range bodies {
		if _, err := db.Exec(`INSERT INTO queue (recipient, device, sender, sender_device, body, created) VALUES ($1, 1, $2, $3, $4, 0)`,
			recipient, senders[i][0], senders[i][1], b); err != nil {
			w.t.Fatal(err)
		}
	}
}

// openDB opens the server's database for writing, as a hostile operator
// would.
func (w *gworld) openDB() *sql.DB {
	w.t.Helper()
	driver, dsn := "sqlite", "file:"+w.dbPath+"?_pragma=busy_timeout(5000)"
	if w.postgres() {
		driver, dsn = "pgx", w.dbPath
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		w.t.Fatal(err)
	}
	return db
}

func (w *gworld) postgres() bool { return strings.HasPrefix(w.dbPath, "postgres") }

// serverFiles returns what the server keeps: its SQLite files, or every
// row of every table of its PostgreSQL schema, as text (bytea in hex).
func (w *gworld) serverFiles() [][]byte {
	w.t.Helper()
	if !w.postgres() {
		var files [][]byte
		for _, suffix := range []string{"", "-wal", "-shm"} {
			b, err := os.ReadFile(w.dbPath + suffix)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				w.t.Fatal(err)
			}
			files = append(files, b)
		}
		return files
	}
	db := w.openDB()
	defer db.Close()
	rows, err := db.Query(`SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)
	if err != nil {
		w.t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			w.t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	var all []byte
	for _, tbl := range tables {
		rows, err := db.Query(`SELECT t::text FROM ` + tbl + ` t`)
		if err != nil {
			w.t.Fatal(err)
		}
		for rows.Next() {
			var row string
			if err := rows.Scan(&row); err != nil {
				w.t.Fatal(err)
			}
			all = append(all, row...)
		}
		rows.Close()
	}
	if !bytes.Contains(all, []byte("alice")) {
		w.t.Fatal("the dump of the server's tables has no user names: is it read?")
	}
	return [][]byte{all}
}

func TestEndToEndGroups(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testEndToEndGroups(t, filepath.Join(t.TempDir(), "server.db")) })
	t.Run("postgres", func(t *testing.T) { testEndToEndGroups(t, chattest.PostgresDB(t)) })
}

func testEndToEndGroups(t *testing.T, dbPath string) {
	w := newGWorld(t, dbPath)
	a1 := w.device("alice", nil)
	a2 := w.device("alice", a1)
	b1 := w.device("bob", nil)
	c1 := w.device("carol", nil)

	// Pairwise, online: each message reaches every device of the peer,
	// and the sender's other device shows it as sent.
	a1.send("bob", "pairwise 1 from alice's laptop", b1, a2)
	b1.send("alice", "pairwise 2 from bob", a1, a2)
	a2.send("carol", "pairwise 3 from alice's phone", c1, a1)
	w.settle(a1, a2, b1, c1)
	a1.mu.Lock()
	for _, e := range a1.events {
		if e.Kind == client.EventMessage && e.Text == "pairwise 3 from alice's phone" && (e.Peer != "alice" || e.Device != 2 || e.To != "carol") {
			t.Errorf("alice's laptop shows her phone's message as %+v", e)
		}
	}
	a1.mu.Unlock()
	// Offline: alice's phone is away while carol writes.
	a2.disconnect()
	c1.send("alice", "pairwise 4 from carol while the phone is off", a1, a2)
	w.settle(a1)
	a2.connect()
	w.settle(a2)

	// A group of everyone.
	if err := a1.c.CreateGroup(context.Background(), "team", "bob", "carol"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*gdev{a2, b1, c1} {
		d.groupEvent("team", "alice", "bob", "carol")
	}
	a1.sendGroup("team", "group 1 from alice's laptop", a2, b1, c1)
	b1.sendGroup("team", "group 2 from bob", a1, a2, c1)
	c1.sendGroup("team", "group 3 from carol", a1, a2, b1)
	a2.sendGroup("team", "group 4 from alice's phone", a1, b1, c1)
	w.settle(a1, a2, b1, c1)
	// Offline, and across a restart: bob's client is closed while carol
	// writes twice, and comes back from its files.
	b1.disconnect()
	c1.sendGroup("team", "group 5 from carol, bob offline", a1, a2, b1)
	b1.restart()
	c1.sendGroup("team", "group 6 from carol, bob back", a1, a2, b1)
	w.settle(a1, a2, b1, c1)

	// Carol is removed. Everyone hears of it, and every remaining device
	// starts a new sender chain before its next message.
	if err := b1.c.RemoveMember(context.Background(), "team", "carol"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*gdev{a1, a2} {
		d.groupEvent("team", "alice", "bob")
	}
	c1.waitFor("her removal", func() bool {
		for _, e := range c1.events {
			if e.Kind == client.EventGroup && !slices.Contains(e.Members, "carol") {
				return true
			}
		}
		return false
	})
	if gs, err := c1.c.Groups(context.Background()); err != nil || len(gs) != 1 || gs[0].Member {
		t.Fatalf("carol's groups after her removal: %+v, %v", gs, err)
	}
	// With alice's phone offline, the messages after the removal wait in
	// its queue; a server that hands them to carol gains nothing.
	a2.disconnect()
	a1.sendGroup("team", "group 7 from alice's laptop, carol removed", a2, b1)
	b1.sendGroup("team", "group 8 from bob, carol removed", a1, a2)
	w.settle(a1, b1)
	bodies, senders := w.groupBodies("alice", 2)
	if len(bodies) != 2 {
		t.Fatalf("%d group envelopes queued for alice's phone, want 2", len(bodies))
	}
	c1.disconnect()
	w.forward("carol", bodies, senders)
	c1.connect()
	c1.waitFor("the forwarded envelopes to fail", func() bool {
		n := 0
		for _, e := range c1.events {
			if e.Kind == client.EventUndecryptable && e.Group == "team" {
				n++
			}
		}
		return n >= 2
	})
	for _, e := range c1.undecryptable() {
		if !errors.Is(e.Err, senderkey.ErrNoState) {
			t.Errorf("carol: %+v, want a failure for want of the sender's new chain (%v)", e, senderkey.ErrNoState)
		}
	}
	a2.connect()
	a2.sendGroup("team", "group 9 from alice's phone, carol removed", a1, b1)
	w.settle(a1, a2, b1)

	// Bob adds a device late: it gets what is sent from now on, pairwise
	// and in the group, and nothing from before.
	b2 := w.device("bob", b1)
	a1.send("bob", "pairwise 5 from alice after bob's new device", b1, b2, a2)
	b2.send("alice", "pairwise 6 from bob's new device", a1, a2, b1)
	a1.sendGroup("team", "group 10 from alice's laptop, bob has two devices", a2, b1, b2)
	b2.waitFor("group 10", func() bool { return b2.got["group 10 from alice's laptop, bob has two devices"] > 0 })
	b2.sendGroup("team", "group 11 from bob's new device", a1, a2, b1)
	b1.sendGroup("team", "group 12 from bob's first device", a1, a2, b2)
	w.settle(a1, a2, b1, b2)

	// Carol is added back: she reads what is sent from now on, on the
	// chains everyone distributes to her at their next message.
	if err := b2.c.AddMember(context.Background(), "team", "carol"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*gdev{a1, a2, b1, c1} {
		d.groupEvent("team", "alice", "bob", "carol")
	}
	a2.sendGroup("team", "group 13 from alice's phone, carol back", a1, b1, b2, c1)
	c1.sendGroup("team", "group 14 from carol, back", a1, a2, b1, b2)
	b2.sendGroup("team", "group 15 from bob's new device, carol back", a1, a2, b1, c1)
	w.settle(a1, a2, b1, b2, c1)

	// Everything arrived exactly once, where it should and nowhere else.
	for _, d := range w.devs {
		if d == c1 {
			continue
		}
		d.disconnect()
		if ev := d.undecryptable(); len(ev) != 0 {
			t.Errorf("%s: %+v", d.key, ev)
		}
	}
	c1.disconnect()
	total := 0
	for _, d := range w.devs {
		d.mu.Lock()
		for text, n := range d.got {
			if n != 1 || !w.want[d.key][text] {
				t.Errorf("%s shows %q %d times; want %v", d.key, text, n, w.want[d.key][text])
			}
		}
		for text := range w.want[d.key] {
			if d.got[text] == 0 {
				t.Errorf("%s never showed %q", d.key, text)
			}
		}
		total += len(d.got)
		d.mu.Unlock()
	}

	// The server's files and logs hold no plaintext.
	for _, d := range w.devs {
		d.c.Close()
		d.c = nil
	}
	w.srv.Close()
	files := w.serverFiles()
	logs := w.logs.Bytes()
	if !bytes.Contains(logs, []byte(`"msg":"queued"`)) {
		t.Fatal("the server's debug log has no relay events: is it captured?")
	}
	files = append(files, logs)
	for _, text := range append(w.sent, "team") {
		for _, enc := range []string{text, base64.StdEncoding.EncodeToString([]byte(text)), fmt.Sprintf("%x", text)} {
			for i, f := range files {
				if bytes.Contains(f, []byte(enc)) {
					t.Errorf("server file %d contains %q", i, strings.TrimSpace(text))
				}
			}
		}
	}
	t.Logf("%d plaintexts, %d deliveries to %d devices", len(w.sent), total, len(w.devs))
}
