package server_test

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
	"github.com/ratchetkit/ratchetkit/examples/chat/server"
)

// link registers a fresh link code, with the provisioning message
// "provision:" and the code, with the token of an existing device.
func (ts *testServer) link(t *testing.T, token string) string {
	t.Helper()
	var b [32]byte
	rand.Read(b[:])
	code := hex.EncodeToString(b[:])
	var l api.LinkResponse
	ts.mustDo(t, "POST", "/v1/devices/link", token, api.LinkRequest{Code: code, Provision: []byte("provision:" + code)}, http.StatusCreated, &l)
	if l.Expires < time.Now().Unix()+api.LinkTTL-60 {
		t.Fatalf("link code %+v", l)
	}
	return code
}

// deviceRequest is a device registration for name with code and fresh keys.
func deviceRequest(t *testing.T, name, code string, nOPK int) api.DeviceRequest {
	ik, spk, opks := newKeys(t, 100, nOPK)
	return api.DeviceRequest{Name: name, LinkCode: code, IdentityKey: ik.PublicKey().Encode(),
		SignedPreKey: api.NewSignedPreKey(spk), OneTimePreKeys: api.NewPreKeys(opks)}
}

func (ts *testServer) devices(t *testing.T, token, name string) []uint32 {
	t.Helper()
	var d api.Devices
	ts.mustDo(t, "GET", "/v1/users/"+name+"/devices", token, nil, http.StatusOK, &d)
	if d.Name != name {
		t.Fatalf("device list names %q, want %q", d.Name, name)
	}
	return d.Devices
}

// A second device joins an account only with a link code from an existing
// device, once; it has its own token, keys, bundle and queue, and the
// device list shows it.
func TestDevices(t *testing.T) { eachBackend(t, testDevices) }

func testDevices(t *testing.T, be backend) {
	ts := newServer(t, be, server.Config{MaxDevices: 3, RegisterBurst: 100, LinkBurst: 100})
	alice := ts.register(t, "alice", 2)
	bob := ts.register(t, "bob", 0)

	ts.wantError(t, "POST", "/v1/devices/link", "", nil, http.StatusUnauthorized, api.CodeUnauthorized)
	for _, bad := range []api.LinkRequest{
		{Code: strings.Repeat("a", 63), Provision: []byte("x")},
		{Code: strings.Repeat("A", 64), Provision: []byte("x")},
		{Code: strings.Repeat("a", 64)},
	} {
		ts.wantError(t, "POST", "/v1/devices/link", alice.token, bad, http.StatusBadRequest, api.CodeBadRequest)
	}
	ts.wantError(t, "POST", "/v1/devices/link", alice.token,
		api.LinkRequest{Code: strings.Repeat("a", 64), Provision: make([]byte, api.MaxProvisionSize+1)}, http.StatusRequestEntityTooLarge, api.CodeTooLarge)
	ts.wantError(t, "POST", "/v1/devices", "", deviceRequest(t, "alice", "", 1), http.StatusForbidden, api.CodeLink)
	ts.wantError(t, "POST", "/v1/devices", "", deviceRequest(t, "alice", strings.Repeat("a", 26), 1), http.StatusForbidden, api.CodeLink)
	code := ts.link(t, alice.token)
	// Bob's link code is for Bob's account, not Alice's.
	bobCode := ts.link(t, bob.token)
	ts.wantError(t, "POST", "/v1/devices", "", deviceRequest(t, "alice", bobCode, 1), http.StatusForbidden, api.CodeLink)
	// The new device fetches the provisioning message of alice's code,
	// not of bob's; it does not use the code up.
	var p api.Provision
	ts.mustDo(t, "POST", "/v1/devices/provision", "", api.ProvisionRequest{Name: "alice", LinkCode: code}, http.StatusOK, &p)
	if string(p.Provision) != "provision:"+code {
		t.Fatalf("provisioning message %q", p.Provision)
	}
	ts.wantError(t, "POST", "/v1/devices/provision", "", api.ProvisionRequest{Name: "alice", LinkCode: bobCode}, http.StatusForbidden, api.CodeLink)
	ts.wantError(t, "POST", "/v1/devices/provision", "", api.ProvisionRequest{Name: "bob", LinkCode: code}, http.StatusForbidden, api.CodeLink)
	// Bob's identity key cannot be a device of alice's.
	dup := deviceRequest(t, "alice", code, 0)
	dup.IdentityKey = bob.ik.PublicKey().Encode()
	dup.SignedPreKey = api.NewSignedPreKey(bob.spk)
	ts.wantError(t, "POST", "/v1/devices", "", dup, http.StatusConflict, api.CodeKeyTaken)

	var d2 api.RegisterResponse
	ts.mustDo(t, "POST", "/v1/devices", "", deviceRequest(t, "alice", code, 3), http.StatusCreated, &d2)
	if d2.Device != 2 || d2.OneTimePreKeys != 3 || d2.Token == "" {
		t.Fatalf("second device: %+v", d2)
	}
	// The code was used up.
	ts.wantError(t, "POST", "/v1/devices", "", deviceRequest(t, "alice", code, 1), http.StatusForbidden, api.CodeLink)
	// A new code voids the previous one.
	old := ts.link(t, d2.Token)
	newer := ts.link(t, alice.token)
	ts.wantError(t, "POST", "/v1/devices", "", deviceRequest(t, "alice", old, 1), http.StatusForbidden, api.CodeLink)

	if got := ts.devices(t, bob.token, "alice"); !slices.Equal(got, []uint32{1, 2}) {
		t.Fatalf("alice's devices: %v", got)
	}
	ts.wantError(t, "GET", "/v1/users/nobody/devices", bob.token, nil, http.StatusNotFound, api.CodeUnknownUser)
	if n := ts.count(t, d2.Token); n != 3 {
		t.Fatalf("device 2 has %d one-time prekeys, want 3", n)
	}
	if n := ts.count(t, alice.token); n != 2 {
		t.Fatalf("device 1 has %d one-time prekeys, want 2", n)
	}
	var b api.Bundle
	ts.mustDo(t, "GET", "/v1/users/alice/devices/2/bundle", bob.token, nil, http.StatusOK, &b)
	if b.Name != "alice" || b.Device != 2 || b.OneTimePreKey == nil {
		t.Fatalf("device 2's bundle: %+v", b)
	}
	if b1 := ts.bundle(t, bob.token, "alice"); b1.Device != 1 || !slices.Equal(b1.IdentityKey, alice.ik.PublicKey().Encode()) {
		t.Fatalf("device 1's bundle: %+v", b1)
	}
	for _, p := range []string{"3", "0", "01", "-1", "x", "99999999999"} {
		ts.wantError(t, "GET", "/v1/users/alice/devices/"+p+"/bundle", bob.token, nil, http.StatusNotFound, api.CodeUnknownDevice)
	}

	// Envelopes go to one device: Bob writes to device 2 alone, device 2
	// to its own device 1; nobody writes to itself or to a missing device.
	w1 := ts.dial(t, alice.token)
	w2 := ts.dial(t, d2.Token)
	wb := ts.dial(t, bob.token)
	wb.send(api.Frame{Type: api.FrameSend, ID: "1", To: "alice", Device: 2, Body: []byte("for device 2")})
	if f := wb.readType(api.FrameSent); f.ID != "1" {
		t.Fatalf("bob's send: %+v", f)
	}
	if f := w2.readType(api.FrameMessage); f.From != "bob" || f.FromDevice != 1 || string(f.Body) != "for device 2" {
		t.Fatalf("device 2 got %+v", f)
	}
	w2.send(api.Frame{Type: api.FrameSend, ID: "2", To: "alice", Device: 1, Body: []byte("sync")})
	w2.readType(api.FrameSent)
	if f := w1.readType(api.FrameMessage); f.From != "alice" || f.FromDevice != 2 || string(f.Body) != "sync" {
		t.Fatalf("device 1 got %+v", f)
	}
	w1.send(api.Frame{Type: api.FrameSend, ID: "3", To: "alice", Device: 1, Body: []byte("loop")})
	if f := w1.readType(api.FrameError); f.ID != "3" || f.Code != api.CodeBadRequest {
		t.Fatalf("send to itself: %+v", f)
	}
	wb.send(api.Frame{Type: api.FrameSend, ID: "4", To: "alice", Device: 7, Body: []byte("x")})
	if f := wb.readType(api.FrameError); f.ID != "4" || f.Code != api.CodeUnknownDevice {
		t.Fatalf("send to a missing device: %+v", f)
	}

	// MaxDevices is 3: the third joins, then no code is given out.
	// A device may have the account's identity key (clients share it).
	same := deviceRequest(t, "alice", newer, 0)
	same.IdentityKey = alice.ik.PublicKey().Encode()
	same.SignedPreKey = api.NewSignedPreKey(alice.spk)
	var d3 api.RegisterResponse
	ts.mustDo(t, "POST", "/v1/devices", "", same, http.StatusCreated, &d3)
	if d3.Device != 3 {
		t.Fatalf("third device: %+v", d3)
	}
	ts.wantError(t, "POST", "/v1/devices/link", alice.token, api.LinkRequest{Code: strings.Repeat("a", 64), Provision: []byte("p")},
		http.StatusConflict, api.CodeTooManyDevices)
}

// A database made by the first schema (one device per user) is migrated:
// the user's token, keys, one-time prekeys and queued envelopes belong to
// device 1 afterwards.
func TestMigrateOneDeviceDatabase(t *testing.T) { eachBackend(t, testMigrateOneDeviceDatabase) }

func testMigrateOneDeviceDatabase(t *testing.T, be backend) {
	dbPath := be.newDB(t)
	dialect, driver, dsn := "sqlite", "sqlite", "file:"+dbPath
	if be.name == "postgres" {
		dialect, driver, dsn = "postgres", "pgx", dbPath
	}
	schema, err := os.ReadFile("migrations/" + dialect + "/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	ik, spk, opks := newKeys(t, 7, 1)
	token := "an-old-token-of-alice-0123456789"
	for _, q := range append(strings.Split(string(schema), ";\n"),
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY)`, `INSERT INTO schema_migrations VALUES (1)`) {
		if strings.TrimSpace(q) == "" {
			continue
		}
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	h := sha256Sum(token)
	for _, name := range []string{"alice", "bob"} {
		k := ik.PublicKey().Encode()
		if name == "bob" {
			bik, _, _ := newKeys(t, 1, 0)
			k = bik.PublicKey().Encode()
			h = sha256Sum(token + "b")
		}
		if _, err := db.Exec(`INSERT INTO users (name, token_hash, identity_key, spk_id, spk, spk_sig, created) VALUES ($1, $2, $3, $4, $5, $6, 1)`,
			name, h, k, spk.ID(), spk.PublicKey().Encode(), spk.Signature()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO prekeys ("user", id, key) VALUES ('alice', 7, $1)`, opks[0].PublicKey().Encode()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO queue (recipient, sender, body, created) VALUES ('alice', 'bob', 'queued before', 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	ts := &testServer{logs: &syncBuffer{}, dbPath: dbPath}
	srv, err := server.New(server.Config{DBPath: dbPath, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ts.srv, ts.Server = srv, httptestServer(srv)
	t.Cleanup(func() { ts.Server.Close(); srv.Close() })
	if n := ts.count(t, token); n != 1 {
		t.Fatalf("alice's one-time prekeys after the migration: %d, want 1", n)
	}
	if got := ts.devices(t, token, "alice"); !slices.Equal(got, []uint32{1}) {
		t.Fatalf("alice's devices: %v", got)
	}
	b := ts.bundle(t, token+"b", "alice")
	if b.Device != 1 || b.OneTimePreKey == nil || b.OneTimePreKey.ID != 7 || !slices.Equal(b.IdentityKey, ik.PublicKey().Encode()) {
		t.Fatalf("alice's bundle after the migration: %+v", b)
	}
	w := ts.dial(t, token)
	if f := w.readType(api.FrameMessage); f.From != "bob" || f.FromDevice != 1 || string(f.Body) != "queued before" {
		t.Fatalf("queued envelope after the migration: %+v", f)
	}
	// New devices and sends work on the migrated schema.
	var d2 api.RegisterResponse
	ts.mustDo(t, "POST", "/v1/devices", "", deviceRequest(t, "alice", ts.link(t, token), 0), http.StatusCreated, &d2)
	if d2.Device != 2 {
		t.Fatalf("device after the migration: %+v", d2)
	}
}

// Guessing link codes costs registrations: a device registration, valid
// or not, spends the client address's registration allowance, and a link
// code costs the account one of its LinkBurst.
func TestDeviceRegistrationLimits(t *testing.T) { eachBackend(t, testDeviceRegistrationLimits) }

func testDeviceRegistrationLimits(t *testing.T, be backend) {
	ts := newServer(t, be, server.Config{RegisterBurst: 3, LinkBurst: 2})
	alice := ts.register(t, "alice", 0)
	ts.wantError(t, "POST", "/v1/devices", "", deviceRequest(t, "alice", strings.Repeat("b", 26), 0), http.StatusForbidden, api.CodeLink)
	ts.wantError(t, "POST", "/v1/devices", "", deviceRequest(t, "alice", strings.Repeat("c", 26), 0), http.StatusForbidden, api.CodeLink)
	code := ts.link(t, alice.token)
	ts.wantError(t, "POST", "/v1/devices", "", deviceRequest(t, "alice", code, 0), http.StatusTooManyRequests, api.CodeRateLimited)
	ts.link(t, alice.token)
	ts.wantError(t, "POST", "/v1/devices/link", alice.token, api.LinkRequest{Code: strings.Repeat("a", 64), Provision: []byte("p")},
		http.StatusTooManyRequests, api.CodeRateLimited)
}

// Every identity reset claims its new key for the account for good (see
// checkIdentityFree), so resets are limited per account like link codes:
// past LinkBurst, one is refused before anything is stored.
func TestResetRateLimited(t *testing.T) { eachBackend(t, testResetRateLimited) }

func testResetRateLimited(t *testing.T, be backend) {
	ts := newServer(t, be, server.Config{LinkBurst: 3})
	bob := ts.register(t, "bob", 0)
	reset := func() api.KeysRequest {
		ik, spk, _ := newKeys(t, 500, 0)
		return api.KeysRequest{IdentityKey: ik.PublicKey().Encode(), SignedPreKey: api.NewSignedPreKey(spk)}
	}
	for range 3 {
		ts.mustDo(t, "PUT", "/v1/keys", bob.token, reset(), http.StatusOK, nil)
	}
	ts.wantError(t, "PUT", "/v1/keys", bob.token, reset(), http.StatusTooManyRequests, api.CodeRateLimited)
}
