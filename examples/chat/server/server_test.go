package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
	"github.com/ratchetkit/ratchetkit/examples/chat/server"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// A bundle hands out one one-time prekey per fetch, lowest id first, each
// exactly once; then the signed prekey alone, flagged as exhausted. Every
// bundle verifies and starts an X3DH agreement that the owner can answer.
func TestBundleHandsOutEachPreKeyOnce(t *testing.T) { eachBackend(t, testBundleHandsOutEachPreKeyOnce) }

func testBundleHandsOutEachPreKeyOnce(t *testing.T, be backend) {
	ts := newServer(t, be, server.Config{})
	bob := ts.register(t, "bob", 3)
	alice := ts.register(t, "alice", 0)

	for i, want := range bob.opks {
		b := ts.bundle(t, alice.token, "bob")
		if b.Exhausted || b.OneTimePreKey == nil {
			t.Fatalf("fetch %d: no one-time prekey: %+v", i, b)
		}
		if b.OneTimePreKey.ID != want.ID() || !bytes.Equal(b.OneTimePreKey.Key, want.PublicKey().Encode()) {
			t.Fatalf("fetch %d: got prekey %d, want %d", i, b.OneTimePreKey.ID, want.ID())
		}
		checkAgreement(t, alice, bob, b, want)
		if got := ts.count(t, bob.token); got != len(bob.opks)-i-1 {
			t.Fatalf("after fetch %d: %d prekeys left, want %d", i, got, len(bob.opks)-i-1)
		}
	}
	b := ts.bundle(t, alice.token, "bob")
	if !b.Exhausted || b.OneTimePreKey != nil {
		t.Fatalf("empty server: got %+v, want the signed prekey alone", b)
	}
	checkAgreement(t, alice, bob, b, nil)
	// The raw JSON says so too, for clients in other languages.
	_, raw, _ := ts.do(t, "GET", "/v1/users/bob/bundle", alice.token, nil)
	if !bytes.Contains(raw, []byte(`"one_time_prekeys_exhausted":true`)) || bytes.Contains(raw, []byte(`"one_time_prekey"`)) {
		t.Errorf("exhausted bundle JSON: %s", raw)
	}

	// Topping up makes bundles carry one-time prekeys again.
	_, _, more := newKeys(t, 200, 2)
	var c api.PreKeyCount
	ts.mustDo(t, "POST", "/v1/keys/one-time", bob.token, api.PreKeysRequest{OneTimePreKeys: api.NewPreKeys(more)}, http.StatusOK, &c)
	if c.OneTimePreKeys != 2 {
		t.Fatalf("after upload: count %d, want 2", c.OneTimePreKeys)
	}
	if b := ts.bundle(t, alice.token, "bob"); b.OneTimePreKey == nil || b.OneTimePreKey.ID != 200 {
		t.Fatalf("after upload: got %+v, want prekey 200", b.OneTimePreKey)
	}
}

// checkAgreement runs X3DH on a fetched bundle as the fetcher and as its
// owner, and checks both sides get the same secret.
func checkAgreement(t *testing.T, from, to *user, b *api.Bundle, opk *keys.OneTimePreKey) {
	t.Helper()
	xb, err := b.X3DH()
	if err != nil {
		t.Fatal(err)
	}
	in, err := x3dh.Initiate(from.ik, xb, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := x3dh.Respond(to.ik, to.spk, opk, &in.Header, nil)
	if err != nil {
		t.Fatal(err)
	}
	if in.SK != resp.SK {
		t.Fatal("X3DH secrets differ")
	}
}

// Concurrent fetches never get the same one-time prekey: the handout and
// the delete are one transaction.
func TestConcurrentFetchesGetDistinctPreKeys(t *testing.T) {
	eachBackend(t, testConcurrentFetchesGetDistinctPreKeys)
}

func testConcurrentFetchesGetDistinctPreKeys(t *testing.T, be backend) {
	const n = 40
	ts := newServer(t, be, server.Config{BundleBurst: 2 * n, PreKeyBurst: 2 * n, MaxConnsPerUser: 2 * n})
	ts.register(t, "bob", n)
	alice := ts.register(t, "alice", 0)
	fetchEachOnce(t, []*testServer{ts}, alice.token, "bob", n, 5)
}

// fetchEachOnce fetches owner's bundle stock+extra times at once, in turn
// from each of servers, and checks that the stock's one-time prekeys were
// handed out once each and the extra fetches got none.
func fetchEachOnce(t *testing.T, servers []*testServer, token, owner string, stock, extra int) {
	t.Helper()
	var mu sync.Mutex
	seen := map[uint32]int{}
	exhausted := 0
	var wg sync.WaitGroup
	for i := range stock + extra {
		ts := servers[i%len(servers)]
		wg.Go(func() {
			status, body, _ := ts.do(t, "GET", "/v1/users/"+owner+"/bundle", token, nil)
			var b api.Bundle
			if status != http.StatusOK || json.Unmarshal(body, &b) != nil {
				t.Errorf("fetch: %d %s", status, body)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if b.OneTimePreKey == nil {
				exhausted++
			} else {
				seen[b.OneTimePreKey.ID]++
			}
		})
	}
	wg.Wait()
	for id, c := range seen {
		if c != 1 {
			t.Errorf("prekey %d handed out %d times", id, c)
		}
	}
	if len(seen) != stock || exhausted != extra {
		t.Fatalf("%d distinct prekeys and %d bundles without one, want %d and %d", len(seen), exhausted, stock, extra)
	}
}

// Every malformed or unacceptable request gets its own status and error code,
// stores nothing, and the server keeps serving.
func TestRequestValidation(t *testing.T) { eachBackend(t, testRequestValidation) }

func testRequestValidation(t *testing.T, be backend) {
	ts := newServer(t, be, server.Config{RegisterBurst: 1000})
	bob := ts.register(t, "bob", 2)

	ik, spk, opks := newKeys(t, 1, 2)
	good := func() api.RegisterRequest {
		return api.RegisterRequest{
			Name:           "carol",
			IdentityKey:    ik.PublicKey().Encode(),
			SignedPreKey:   api.NewSignedPreKey(spk),
			OneTimePreKeys: api.NewPreKeys(opks),
		}
	}
	smallOrder := append([]byte{0x05}, make([]byte, 32)...) // u = 0
	badType := append([]byte{0x06}, ik.PublicKey().Bytes()...)
	flipped := func(b []byte) []byte {
		c := bytes.Clone(b)
		c[10] ^= 1
		return c
	}
	otherIK, _, _ := newKeys(t, 0, 0)
	otherSPK, err := keys.GenerateSignedPreKey(otherIK, 1)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"not JSON", "{name: carol", http.StatusBadRequest, api.CodeBadRequest},
		{"empty body", "", http.StatusBadRequest, api.CodeBadRequest},
		{"trailing data", `{"name":"carol"} {}`, http.StatusBadRequest, api.CodeBadRequest},
		{"unknown field", `{"name":"carol","admin":true}`, http.StatusBadRequest, api.CodeBadRequest},
		{"wrong type", `{"name":7}`, http.StatusBadRequest, api.CodeBadRequest},
		{"oversize body", `{"name":"` + strings.Repeat("a", api.MaxBodySize) + `"}`, http.StatusRequestEntityTooLarge, api.CodeTooLarge},
		{"empty name", func() any { r := good(); r.Name = ""; return r }(), http.StatusBadRequest, api.CodeBadRequest},
		{"upper-case name", func() any { r := good(); r.Name = "Carol"; return r }(), http.StatusBadRequest, api.CodeBadRequest},
		{"name with escape", func() any { r := good(); r.Name = "carol\x1b[2J"; return r }(), http.StatusBadRequest, api.CodeBadRequest},
		{"long name", func() any { r := good(); r.Name = strings.Repeat("c", api.MaxNameLen+1); return r }(), http.StatusBadRequest, api.CodeBadRequest},
		{"name taken", func() any { r := good(); r.Name = "bob"; return r }(), http.StatusConflict, api.CodeNameTaken},
		{"missing identity key", func() any { r := good(); r.IdentityKey = nil; return r }(), http.StatusBadRequest, api.CodeBadKey},
		{"identity key type byte", func() any { r := good(); r.IdentityKey = badType; return r }(), http.StatusBadRequest, api.CodeBadKey},
		{"identity key 32 bytes", func() any { r := good(); r.IdentityKey = ik.PublicKey().Bytes(); return r }(), http.StatusBadRequest, api.CodeBadKey},
		{"small-order identity key", func() any { r := good(); r.IdentityKey = smallOrder; return r }(), http.StatusBadRequest, api.CodeBadKey},
		{"small-order signed prekey", func() any { r := good(); r.SignedPreKey.Key = smallOrder; return r }(), http.StatusBadRequest, api.CodeBadKey},
		{"flipped signature", func() any { r := good(); r.SignedPreKey.Signature = flipped(r.SignedPreKey.Signature); return r }(), http.StatusBadRequest, api.CodeBadSignature},
		{"short signature", func() any { r := good(); r.SignedPreKey.Signature = r.SignedPreKey.Signature[:63]; return r }(), http.StatusBadRequest, api.CodeBadSignature},
		{"signature by another key", func() any { r := good(); r.SignedPreKey = api.NewSignedPreKey(otherSPK); return r }(), http.StatusBadRequest, api.CodeBadSignature},
		{"other signed prekey", func() any { r := good(); r.SignedPreKey.Key = otherSPK.PublicKey().Encode(); return r }(), http.StatusBadRequest, api.CodeBadSignature},
		{"one-time prekey undecodable", func() any { r := good(); r.OneTimePreKeys[1].Key = badType; return r }(), http.StatusBadRequest, api.CodeBadKey},
		{"one-time prekey small order", func() any { r := good(); r.OneTimePreKeys[0].Key = smallOrder; return r }(), http.StatusBadRequest, api.CodeBadKey},
		{"one-time prekey id repeated", func() any { r := good(); r.OneTimePreKeys[1].ID = r.OneTimePreKeys[0].ID; return r }(), http.StatusConflict, api.CodePreKeyExists},
		{"too many one-time prekeys", func() any {
			r := good()
			r.OneTimePreKeys = make([]api.PreKey, api.MaxPreKeysPerRequest+1)
			return r
		}(), http.StatusRequestEntityTooLarge, api.CodeTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts.wantError(t, "POST", "/v1/register", "", tt.body, tt.status, tt.code)
		})
	}

	// Nothing above stored anything: the name is still free, and bob's
	// prekeys are untouched.
	var resp api.RegisterResponse
	ts.mustDo(t, "POST", "/v1/register", "", good(), http.StatusCreated, &resp)
	if got := ts.count(t, bob.token); got != 2 {
		t.Fatalf("bob has %d prekeys, want 2", got)
	}

	// Authenticated endpoints.
	ts.wantError(t, "GET", "/v1/keys/count", "", nil, http.StatusUnauthorized, api.CodeUnauthorized)
	ts.wantError(t, "GET", "/v1/keys/count", "not-a-token", nil, http.StatusUnauthorized, api.CodeUnauthorized)
	ts.wantError(t, "GET", "/v1/users/bob/bundle", "", nil, http.StatusUnauthorized, api.CodeUnauthorized)
	ts.wantError(t, "GET", "/v1/ws", "", nil, http.StatusUnauthorized, api.CodeUnauthorized)
	ts.wantError(t, "GET", "/v1/users/nobody/bundle", resp.Token, nil, http.StatusNotFound, api.CodeUnknownUser)
	ts.wantError(t, "GET", "/v1/users/NoSuch%20User/bundle", resp.Token, nil, http.StatusNotFound, api.CodeUnknownUser)
	ts.wantError(t, "GET", "/v1/nothing", "", nil, http.StatusNotFound, api.CodeNotFound)

	// One-time prekey uploads are checked against the stored bundle.
	ts.wantError(t, "POST", "/v1/keys/one-time", bob.token,
		api.PreKeysRequest{OneTimePreKeys: api.NewPreKeys(bob.opks[:1])}, http.StatusConflict, api.CodePreKeyExists)
	ts.wantError(t, "POST", "/v1/keys/one-time", bob.token,
		api.PreKeysRequest{OneTimePreKeys: []api.PreKey{{ID: 7, Key: smallOrder}}}, http.StatusBadRequest, api.CodeBadKey)
	ts.wantError(t, "POST", "/v1/keys/one-time", bob.token, `{"one_time_prekeys":[{"id":-1}]}`, http.StatusBadRequest, api.CodeBadRequest)
	// A batch with one bad key stores none of its good ones.
	_, _, batch := newKeys(t, 300, 3)
	bad := api.NewPreKeys(batch)
	bad[2].Key = badType
	ts.wantError(t, "POST", "/v1/keys/one-time", bob.token, api.PreKeysRequest{OneTimePreKeys: bad}, http.StatusBadRequest, api.CodeBadKey)
	if got := ts.count(t, bob.token); got != 2 {
		t.Fatalf("bob has %d prekeys after rejected uploads, want 2", got)
	}
	// Signed prekey rotation: the signature must be by the stored identity.
	ts.wantError(t, "PUT", "/v1/keys/signed", bob.token, api.NewSignedPreKey(otherSPK), http.StatusBadRequest, api.CodeBadSignature)
	spk2, err := keys.GenerateSignedPreKey(bob.ik, 2)
	if err != nil {
		t.Fatal(err)
	}
	ts.mustDo(t, "PUT", "/v1/keys/signed", bob.token, api.NewSignedPreKey(spk2), http.StatusOK, nil)
	if b := ts.bundle(t, resp.Token, "bob"); b.SignedPreKey.ID != 2 || !bytes.Equal(b.SignedPreKey.Key, spk2.PublicKey().Encode()) {
		t.Fatalf("bundle after rotation has signed prekey %d", b.SignedPreKey.ID)
	}

	// The log has a line per failure and no request bodies.
	logs := ts.logs.String()
	for _, code := range []string{api.CodeBadRequest, api.CodeBadSignature, api.CodeBadKey, api.CodeTooLarge, api.CodeUnauthorized} {
		if !strings.Contains(logs, `"error":"`+code+`"`) {
			t.Errorf("no log line for %s", code)
		}
	}
	if strings.Contains(logs, "admin") || strings.Contains(logs, "identity_key") || strings.Contains(logs, "[2J") {
		t.Errorf("request bodies reached the log")
	}
}

// Resetting an identity replaces every key: bundles carry the new identity
// key, and the old identity's one-time prekeys are gone.
func TestResetIdentity(t *testing.T) { eachBackend(t, testResetIdentity) }

func testResetIdentity(t *testing.T, be backend) {
	ts := newServer(t, be, server.Config{})
	bob := ts.register(t, "bob", 3)
	alice := ts.register(t, "alice", 0)

	ik, spk, opks := newKeys(t, 500, 2)
	// The new keys are checked like a registration's.
	bad := api.KeysRequest{IdentityKey: ik.PublicKey().Encode(), SignedPreKey: api.NewSignedPreKey(bob.spk)}
	ts.wantError(t, "PUT", "/v1/keys", bob.token, bad, http.StatusBadRequest, api.CodeBadSignature)

	var c api.PreKeyCount
	ts.mustDo(t, "PUT", "/v1/keys", bob.token, api.KeysRequest{
		IdentityKey:    ik.PublicKey().Encode(),
		SignedPreKey:   api.NewSignedPreKey(spk),
		OneTimePreKeys: api.NewPreKeys(opks),
	}, http.StatusOK, &c)
	if c.OneTimePreKeys != 2 {
		t.Fatalf("count %d, want 2", c.OneTimePreKeys)
	}
	b := ts.bundle(t, alice.token, "bob")
	if !bytes.Equal(b.IdentityKey, ik.PublicKey().Encode()) || b.OneTimePreKey == nil || b.OneTimePreKey.ID != 500 {
		t.Fatalf("bundle after reset: %+v", b)
	}
	checkAgreement(t, alice, &user{ik: ik, spk: spk}, b, opks[0])
}

// Bundle fetches are limited per user, registrations per address; a
// limited request says when to retry and changes nothing.
func TestRateLimits(t *testing.T) { eachBackend(t, testRateLimits) }

func testRateLimits(t *testing.T, be backend) {
	ts := newServer(t, be, server.Config{BundleBurst: 3, BundleRate: 1e-6, RegisterBurst: 4, RegisterRate: 1e-6})
	ts.register(t, "bob", 10)
	alice := ts.register(t, "alice", 0)
	carol := ts.register(t, "carol", 0)

	for range 3 {
		ts.bundle(t, alice.token, "bob")
	}
	status, body, h := ts.do(t, "GET", "/v1/users/bob/bundle", alice.token, nil)
	if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !bytes.Contains(body, []byte(api.CodeRateLimited)) {
		t.Fatalf("4th fetch: %d %q Retry-After %q", status, body, h.Get("Retry-After"))
	}
	// The refused fetch consumed no prekey; another user is not limited.
	if b := ts.bundle(t, carol.token, "bob"); b.OneTimePreKey == nil || b.OneTimePreKey.ID != 103 {
		t.Fatalf("carol's fetch: %+v", b.OneTimePreKey)
	}
	// Three registrations so far; the fourth passes, the fifth is refused.
	ts.register(t, "dave", 0)
	ik, spk, _ := newKeys(t, 0, 0)
	ts.wantError(t, "POST", "/v1/register", "", api.RegisterRequest{
		Name: "erin", IdentityKey: ik.PublicKey().Encode(), SignedPreKey: api.NewSignedPreKey(spk),
	}, http.StatusTooManyRequests, api.CodeRateLimited)
}

func TestPreKeyLimits(t *testing.T) { eachBackend(t, testPreKeyLimits) }

func testPreKeyLimits(t *testing.T, be backend) {
	const max = api.MaxPreKeysPerRequest + 20
	ts := newServer(t, be, server.Config{MaxPreKeys: max})
	bob := ts.register(t, "bob", api.MaxPreKeysPerRequest)
	_, _, more := newKeys(t, 1000, max-api.MaxPreKeysPerRequest+1)
	// One over the limit stores nothing; up to the limit is fine.
	ts.wantError(t, "POST", "/v1/keys/one-time", bob.token, api.PreKeysRequest{OneTimePreKeys: api.NewPreKeys(more)}, http.StatusConflict, api.CodeTooMany)
	ts.mustDo(t, "POST", "/v1/keys/one-time", bob.token, api.PreKeysRequest{OneTimePreKeys: api.NewPreKeys(more[1:])}, http.StatusOK, nil)
	if got := ts.count(t, bob.token); got != max {
		t.Fatalf("count %d, want %d", got, max)
	}
	ts.wantError(t, "POST", "/v1/keys/one-time", bob.token, api.PreKeysRequest{OneTimePreKeys: api.NewPreKeys(more[:1])}, http.StatusConflict, api.CodeTooMany)
}

func ExampleServer() {
	srv, err := server.New(server.Config{DBPath: "chat.db"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	http.ListenAndServe("127.0.0.1:8080", srv.Handler())
}
