package chat_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/examples/chat/client"
	"github.com/ratchetkit/ratchetkit/examples/chat/internal/chattest"
	"github.com/ratchetkit/ratchetkit/examples/chat/server"
)

// The load and fault test runs chat servers as child processes of the test
// binary (TestMain re-executes it with instanceEnv set), so that killing
// one is a real SIGKILL: no deferred function, no flush, no close frame.
// Clients reach the instances through a front end per instance, a TCP
// forwarder on loopback that plays the load balancer: it sends each new
// connection to its own instance, or, if that one does not answer, to the
// next. It also reads every byte between clients and servers, to check
// that no plaintext ever crosses.
//
// The short variant runs with the package's tests; the full one is
//
//	go test ./examples/chat -run TestLoad -load.full -v
//
// which runs 1 instance on SQLite, 1 on PostgreSQL and 3 on PostgreSQL
// (one killed mid-run) with 200 clients each, and logs the figures.

var loadFull = flag.Bool("load.full", false, "run the full load test: three setups, 200 clients each")

// instanceEnv, when set, makes the test binary a chat server instance on
// the database it names; it prints "addr <host:port>" and serves until
// SIGTERM.
const instanceEnv = "CHAT_LOAD_INSTANCE_DB"

func TestMain(m *testing.M) {
	if db := os.Getenv(instanceEnv); db != "" {
		if err := runInstance(db); err != nil {
			fmt.Fprintln(os.Stderr, "instance:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runInstance is a chat server as chatserver runs it, with the limits per
// address and per account raised: every simulated client comes from
// 127.0.0.1.
func runInstance(db string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	srv, err := server.New(server.Config{
		DBPath: db, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		RegisterBurst: 1 << 20, RegisterRate: 1000, MaxConnsPerIP: 1 << 20, BundleBurst: 1 << 10,
		RereadInterval: time.Second,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return err
	}
	fmt.Printf("addr %s\n", ln.Addr())
	err = srv.Serve(ctx, ln, "", "")
	if cerr := srv.Close(); err == nil {
		err = cerr
	}
	return err
}

// instance is a server child process.
type instance struct {
	cmd    *exec.Cmd
	addr   string
	dead   atomic.Bool
	stderr *bytes.Buffer // read only after the process has ended
}

func startInstance(t *testing.T, db string) *instance {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), instanceEnv+"="+db)
	in := &instance{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = in.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "addr ")
	if err != nil || !ok {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("instance did not start: %q %v\n%s", line, err, in.stderr)
	}
	in.addr = addr
	t.Cleanup(func() {
		if !in.dead.Load() {
			cmd.Process.Signal(syscall.SIGTERM)
		}
		cmd.Wait()
		if s := in.stderr.String(); strings.Contains(s, "level=ERROR") {
			t.Logf("instance %s logged errors:\n%s", addr, s)
		}
	})
	return in
}

// kill ends the instance with SIGKILL.
func (in *instance) kill() {
	in.dead.Store(true)
	in.cmd.Process.Signal(syscall.SIGKILL)
}

// frontEnd forwards connections on its listener to backends[home], or to
// the next live one, and scans all traffic for the plaintext marker.
type frontEnd struct {
	ln       net.Listener
	home     int
	backends []*instance
	leaks    *atomic.Int64
	patterns [][]byte
}

func (f *frontEnd) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		go f.forward(c)
	}
}

func (f *frontEnd) forward(c net.Conn) {
	defer c.Close()
	var up net.Conn
	for i := range f.backends {
		b := f.backends[(f.home+i)%len(f.backends)]
		if b.dead.Load() {
			continue
		}
		var err error
		if up, err = net.DialTimeout("tcp", b.addr, time.Second); err == nil {
			break
		}
	}
	if up == nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { f.copy(up, c); done <- struct{}{} }()
	go func() { f.copy(c, up); done <- struct{}{} }()
	<-done
}

// copy copies src to dst, counting in f.leaks every pattern seen, across
// chunk boundaries too.
func (f *frontEnd) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	var tail []byte
	for {
		n, err := src.Read(buf)
		if n > 0 {
			window := append(tail, buf[:n]...)
			for _, p := range f.patterns {
				if bytes.Contains(window, p) {
					f.leaks.Add(1)
				}
			}
			tail = append([]byte(nil), window[max(0, len(window)-64):]...)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			// A half-close would leave the peer waiting: close both.
			dst.Close()
			return
		}
	}
}

// marker starts every message's text; leakPatterns are the ways it could
// appear on the wire unencrypted: as is, and base64-encoded at each of
// the three alignments (the middle of the encoding, which does not depend
// on the bytes around it).
const marker = "PLAINTEXT-MARKER-THE-SERVER-MUST-NOT-SEE:"

func leakPatterns() [][]byte {
	ps := [][]byte{[]byte(marker)}
	for k := range 3 {
		enc := base64.StdEncoding.EncodeToString(append(make([]byte, k), marker...))
		ps = append(ps, []byte(enc[4:len(enc)-4]))
	}
	return ps
}

// sendTimeout bounds one Send: a message not stored by then counts as not
// acknowledged (it may still be delivered, and then must be so once).
const sendTimeout = 20 * time.Second

// loadSetup is one configuration of the load test.
type loadSetup struct {
	name      string
	instances int
	postgres  bool
	clients   int
	messages  int  // per client
	kill      bool // SIGKILL instance 0 after a third of the messages
}

// loadResult is what a run measured.
type loadResult struct {
	acked, delivered int
	failed           int           // Sends that returned an error
	slowest          time.Duration // the longest Send, error or not
	elapsed          time.Duration
	p50, p99         time.Duration
	recovery         time.Duration
}

// simClient is one simulated user.
type simClient struct {
	name     string
	home     int
	c        *client.Client
	lastConn atomic.Int64 // UnixNano of the latest EventConnected
}

// loadRun holds what the clients report.
type loadRun struct {
	mu        sync.Mutex
	acked     map[string]string // message key (sender/index) to recipient
	got       map[string]int    // message key to deliveries
	last      map[string]int    // recipient/sender to the last index delivered
	misorder  int
	latencies []time.Duration
	lastRecv  time.Time
	errs      []string
	failed    int
	stuck     []string // Sends that hit sendTimeout: who, and the error
	firstFail string   // the first Send error that was not a timeout
	slowest   time.Duration
	slowWho   string // the slowest Send's client, its instance and outcome
}

func (r *loadRun) onEvent(recipient string) func(client.Event) {
	return func(ev client.Event) {
		switch ev.Kind {
		case client.EventMessage:
		case client.EventUndecryptable, client.EventSendFailed:
			r.mu.Lock()
			r.errs = append(r.errs, fmt.Sprintf("%s: event %d from %s: %v", recipient, ev.Kind, ev.Peer, ev.Err))
			r.mu.Unlock()
			return
		default:
			return
		}
		now := time.Now()
		rest, ok := strings.CutPrefix(ev.Text, marker)
		f := strings.Split(rest, "|")
		if !ok || len(f) != 3 {
			return
		}
		idx, _ := strconv.Atoi(f[1])
		sentAt, _ := strconv.ParseInt(f[2], 10, 64)
		r.mu.Lock()
		defer r.mu.Unlock()
		key := f[0] + "/" + f[1]
		r.got[key]++
		pair := recipient + "/" + f[0]
		if prev, ok := r.last[pair]; ok && idx <= prev {
			r.misorder++
		}
		r.last[pair] = idx
		r.latencies = append(r.latencies, now.Sub(time.Unix(0, sentAt)))
		r.lastRecv = now
	}
}

func runLoad(t *testing.T, s loadSetup, seed uint64) loadResult {
	t.Helper()
	db := filepath.Join(t.TempDir(), "server.db")
	if s.postgres {
		db = chattest.PostgresDB(t)
	}
	var backends []*instance
	for range s.instances {
		backends = append(backends, startInstance(t, db))
	}
	leaks := &atomic.Int64{}
	var urls []string
	for i := range s.instances {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		fe := &frontEnd{ln: ln, home: i, backends: backends, leaks: leaks, patterns: leakPatterns()}
		go fe.serve()
		urls = append(urls, "http://"+ln.Addr().String())
	}

	run := &loadRun{acked: map[string]string{}, got: map[string]int{}, last: map[string]int{}}
	clients := make([]*simClient, s.clients)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range clients {
		sc := &simClient{name: fmt.Sprintf("u%03d", i), home: i % s.instances}
		clients[i] = sc
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			onMsg := run.onEvent(sc.name)
			c, err := client.Open(ctx, client.Config{
				Dir: t.TempDir(), Server: urls[sc.home], Name: sc.name, PreKeyBatch: 5, MinPreKeys: 2,
				OnEvent: func(ev client.Event) {
					if ev.Kind == client.EventConnected {
						sc.lastConn.Store(time.Now().UnixNano())
					}
					onMsg(ev)
				},
			})
			if err == nil {
				err = c.Connect(ctx)
			}
			if err != nil {
				t.Errorf("%s: %v", sc.name, err)
				return
			}
			sc.c = c
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	defer func() {
		for _, sc := range clients {
			sc.c.Close()
		}
	}()

	total := s.clients * s.messages
	var sentCount atomic.Int64
	killed := make(chan time.Time, 1)
	start := time.Now()
	for i, sc := range clients {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		wg.Go(func() {
			for m := range s.messages {
				peer := clients[rng.IntN(len(clients))]
				if peer == sc {
					peer = clients[(slices.Index(clients, sc)+1)%len(clients)]
				}
				text := fmt.Sprintf("%s%s|%d|%d", marker, sc.name, m, time.Now().UnixNano())
				ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
				began := time.Now()
				err := sc.c.Send(ctx, peer.name, text)
				took := time.Since(began)
				cancel()
				run.mu.Lock()
				if err == nil {
					run.acked[sc.name+"/"+strconv.Itoa(m)] = peer.name
				} else {
					run.failed++
					who := fmt.Sprintf("%s on instance %d, to %s, message %d: %v", sc.name, sc.home, peer.name, m, err)
					switch {
					case errors.Is(err, context.DeadlineExceeded):
						run.stuck = append(run.stuck, who)
					case run.firstFail == "":
						run.firstFail = who
					}
				}
				if took > run.slowest {
					run.slowest = took
					run.slowWho = fmt.Sprintf("%s on instance %d, to %s on instance %d, message %d: %v", sc.name, sc.home, peer.name, peer.home, m, err)
				}
				run.mu.Unlock()
				if n := sentCount.Add(1); s.kill && n == int64(total/3) {
					backends[0].kill()
					killed <- time.Now()
				}
			}
		})
	}
	wg.Wait()
	sendDone := time.Now()

	res := loadResult{}
	if s.kill {
		at := <-killed
		// Recovery: until every client homed on the killed instance is
		// connected again (to another one).
		deadline := time.Now().Add(30 * time.Second)
		for {
			var latest int64
			all := true
			for _, sc := range clients {
				if sc.home == 0 {
					if lc := sc.lastConn.Load(); lc < at.UnixNano() {
						all = false
					} else {
						latest = max(latest, lc)
					}
				}
			}
			if all {
				res.recovery = time.Unix(0, latest).Sub(at)
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("clients of the killed instance did not all reconnect within 30 s")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Wait for every acknowledged message to arrive.
	deadline := sendDone.Add(60 * time.Second)
	for {
		run.mu.Lock()
		missing := 0
		for k := range run.acked {
			if run.got[k] == 0 {
				missing++
			}
		}
		run.mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%d acknowledged messages never delivered", missing)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	run.mu.Lock()
	defer run.mu.Unlock()
	for k, n := range run.got {
		if n > 1 {
			t.Errorf("message %s delivered %d times", k, n)
		}
	}
	if run.misorder > 0 {
		t.Errorf("%d messages delivered out of their sender's order", run.misorder)
	}
	if n := leaks.Load(); n > 0 {
		t.Errorf("a plaintext crossed the wire to or from the servers %d times", n)
	}
	if len(run.errs) > 0 {
		t.Logf("%d client events of note, the first: %s", len(run.errs), run.errs[0])
	}
	// A Send returns once the server has answered, on whichever
	// connection: a send still waiting after sendTimeout is one whose
	// answer was lost (see the client's settle).
	if len(run.stuck) > 0 {
		t.Errorf("%d sends got no answer within %v, the first: %s", len(run.stuck), sendTimeout, run.stuck[0])
	}
	if run.firstFail != "" {
		t.Logf("the first failed send: %s", run.firstFail)
	}
	if len(run.acked) < total*9/10 {
		t.Errorf("only %d of %d messages were acknowledged", len(run.acked), total)
	}
	res.acked, res.delivered = len(run.acked), len(run.got)
	res.failed, res.slowest = run.failed, run.slowest
	t.Logf("the slowest send: %s", run.slowWho)
	res.elapsed = run.lastRecv.Sub(start)
	slices.Sort(run.latencies)
	if n := len(run.latencies); n > 0 {
		res.p50, res.p99 = run.latencies[n/2], run.latencies[n*99/100]
	}
	return res
}

func (r loadResult) String() string {
	s := fmt.Sprintf("%d acked (%d sends failed, the slowest took %v), %d delivered in %v: %.0f msgs/s, latency p50 %v p99 %v",
		r.acked, r.failed, r.slowest.Round(time.Millisecond), r.delivered, r.elapsed.Round(time.Millisecond), float64(r.delivered)/r.elapsed.Seconds(),
		r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond))
	if r.recovery > 0 {
		s += fmt.Sprintf(", all clients of the killed instance reconnected %v after the kill", r.recovery.Round(time.Millisecond))
	}
	return s
}

// TestLoad runs simulated clients, with the real client library and real
// encryption, against server instances on one database, kills one
// instance mid-run where there are several, and checks that every message
// the server acknowledged reaches its recipient's application exactly
// once and in its sender's order, and that no plaintext crosses the wire.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped in -short mode")
	}
	const seed = 15
	setups := []loadSetup{{name: "3 PostgreSQL instances, one killed", instances: 3, postgres: true, clients: 30, messages: 6, kill: true}}
	if *loadFull {
		setups = []loadSetup{
			{name: "1 SQLite instance", instances: 1, clients: 200, messages: 10},
			{name: "1 PostgreSQL instance", instances: 1, postgres: true, clients: 200, messages: 10},
			{name: "3 PostgreSQL instances, one killed", instances: 3, postgres: true, clients: 200, messages: 10, kill: true},
		}
	}
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			r := runLoad(t, s, seed)
			t.Logf("%s, %d clients × %d messages: %v", s.name, s.clients, s.messages, r)
		})
	}
}
