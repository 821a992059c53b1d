package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
	"github.com/ratchetkit/ratchetkit/examples/chat/internal/chattest"
	"github.com/ratchetkit/ratchetkit/examples/chat/server"
	"github.com/ratchetkit/ratchetkit/keys"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// backend is a storage backend the server tests run on.
type backend struct {
	name string
	// newDB returns the DBPath of a fresh, empty database.
	newDB func(t *testing.T) string
}

var (
	sqliteBackend   = backend{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "server.db") }}
	postgresBackend = backend{"postgres", func(t *testing.T) string { return chattest.PostgresDB(t) }}
)

// eachBackend runs test as a subtest on each backend: SQLite, and
// PostgreSQL, which skips without RATCHETKIT_POSTGRES_DSN.
func eachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	for _, b := range []backend{sqliteBackend, postgresBackend} {
		t.Run(b.name, func(t *testing.T) { test(t, b) })
	}
}

type testServer struct {
	*httptest.Server
	srv    *server.Server
	logs   *syncBuffer
	dbPath string
}

// newServer starts a server on a fresh database of backend b, on loopback,
// with debug logging into a buffer. cfg's DBPath and Logger are filled in.
func newServer(t *testing.T, b backend, cfg server.Config) *testServer {
	t.Helper()
	ts := &testServer{logs: &syncBuffer{}, dbPath: b.newDB(t)}
	cfg.DBPath = ts.dbPath
	cfg.Logger = slog.New(slog.NewJSONHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.srv = srv
	ts.Server = httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Server.Close()
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	return ts
}

// quietServer opens a server on a fresh database of backend b that logs
// nowhere and closes when the test ends. cfg's DBPath and Logger are
// filled in.
func quietServer(t *testing.T, b backend, cfg server.Config) *server.Server {
	t.Helper()
	cfg.DBPath = b.newDB(t)
	cfg.Logger = quietLogger()
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// quietLogger logs nowhere.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// user is a registered test user with its private keys.
type user struct {
	name  string
	token string
	ik    *keys.IdentityKeyPair
	spk   *keys.SignedPreKey
	opks  []*keys.OneTimePreKey
}

func newKeys(t *testing.T, firstOPK uint32, n int) (*keys.IdentityKeyPair, *keys.SignedPreKey, []*keys.OneTimePreKey) {
	t.Helper()
	return chattest.NewKeys(t, firstOPK, n)
}

func (ts *testServer) register(t *testing.T, name string, nOPK int) *user {
	t.Helper()
	ik, spk, opks := newKeys(t, 100, nOPK)
	var resp api.RegisterResponse
	ts.mustDo(t, "POST", "/v1/register", "", api.RegisterRequest{
		Name:           name,
		IdentityKey:    ik.PublicKey().Encode(),
		SignedPreKey:   api.NewSignedPreKey(spk),
		OneTimePreKeys: api.NewPreKeys(opks),
	}, http.StatusCreated, &resp)
	if resp.OneTimePreKeys != nOPK || resp.Token == "" {
		t.Fatalf("register %s: %+v", name, resp)
	}
	return &user{name: name, token: resp.Token, ik: ik, spk: spk, opks: opks}
}

// do sends a request with a JSON body (a string or []byte is sent as it
// is) and returns the status and body.
func (ts *testServer) do(t *testing.T, method, path, token string, body any) (int, []byte, http.Header) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, ts.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	hc := ts.Client()
	if hc == nil { // a testServer around a server that Serve runs
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out, resp.Header
}

func (ts *testServer) mustDo(t *testing.T, method, path, token string, body any, wantStatus int, out any) {
	t.Helper()
	status, b, _ := ts.do(t, method, path, token, body)
	if status != wantStatus {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, status, wantStatus, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v; body %s", method, path, err, b)
		}
	}
}

// wantError checks a failed request's status and error code.
func (ts *testServer) wantError(t *testing.T, method, path, token string, body any, status int, code string) {
	t.Helper()
	got, b, _ := ts.do(t, method, path, token, body)
	var e api.ErrorResponse
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("%s %s: error body is not JSON: %q", method, path, b)
	}
	if got != status || e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("%s %s: got %d %+v, want %d %s", method, path, got, e.Error, status, code)
	}
}

func (ts *testServer) bundle(t *testing.T, token, name string) *api.Bundle {
	t.Helper()
	var b api.Bundle
	ts.mustDo(t, "GET", "/v1/users/"+name+"/bundle", token, nil, http.StatusOK, &b)
	return &b
}

func (ts *testServer) count(t *testing.T, token string) int {
	t.Helper()
	var c api.PreKeyCount
	ts.mustDo(t, "GET", "/v1/keys/count", token, nil, http.StatusOK, &c)
	return c.OneTimePreKeys
}

// wsClient is a raw WebSocket connection to the relay.
type wsClient struct {
	t *testing.T
	c *websocket.Conn
}

func (ts *testServer) dial(t *testing.T, token string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/v1/ws", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return &wsClient{t: t, c: c}
}

func (w *wsClient) send(f api.Frame) {
	w.t.Helper()
	b, err := json.Marshal(f)
	if err != nil {
		w.t.Fatal(err)
	}
	w.sendRaw(websocket.MessageText, b)
}

func (w *wsClient) sendRaw(typ websocket.MessageType, b []byte) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, typ, b); err != nil {
		w.t.Fatal(err)
	}
}

// read returns the next frame, failing the test after 10 seconds.
func (w *wsClient) read() api.Frame {
	w.t.Helper()
	f, err := w.readErr(10 * time.Second)
	if err != nil {
		w.t.Fatal(err)
	}
	return f
}

func (w *wsClient) readErr(d time.Duration) (api.Frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var f api.Frame
	_, b, err := w.c.Read(ctx)
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(b, &f); err != nil {
		w.t.Fatalf("frame is not JSON: %q", b)
	}
	return f, nil
}

// readType skips prekey reports and returns the next frame of another type,
// checking it is typ.
func (w *wsClient) readType(typ string) api.Frame {
	w.t.Helper()
	for {
		f := w.read()
		if f.Type == api.FramePreKeys && typ != api.FramePreKeys {
			continue
		}
		if f.Type != typ {
			w.t.Fatalf("got frame %+v, want type %s", f, typ)
		}
		return f
	}
}

func sha256Sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func httptestServer(srv *server.Server) *httptest.Server { return httptest.NewServer(srv.Handler()) }
