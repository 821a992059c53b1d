package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
	"github.com/ratchetkit/ratchetkit/examples/chat/server"
)

// A JSON object with a key twice is refused, in bodies and in frames, also
// when the two differ only in case (encoding/json maps both to one field),
// and also inside nested objects. Error messages never repeat the
// request's field names.
func TestDuplicateKeysRefused(t *testing.T) { eachBackend(t, testDuplicateKeysRefused) }

func testDuplicateKeysRefused(t *testing.T, be backend) {
	ts := newServer(t, be, server.Config{RegisterBurst: 100})
	alice := ts.register(t, "alice", 0)
	ts.register(t, "bob", 0)

	ik, spk, _ := newKeys(t, 0, 0)
	good, err := json.Marshal(api.RegisterRequest{Name: "carol", IdentityKey: ik.PublicKey().Encode(), SignedPreKey: api.NewSignedPreKey(spk)})
	if err != nil {
		t.Fatal(err)
	}
	body := string(good)
	for name, b := range map[string]string{
		"same key":       strings.Replace(body, `{"name":"carol"`, `{"name":"carol","name":"carol"`, 1),
		"case variant":   strings.Replace(body, `{"name":"carol"`, `{"name":"carol","NAME":"dave"`, 1),
		"unicode fold":   strings.Replace(body, `"signed_prekey":{"id":1`, `"signed_prekey":{"id":1,"\u017fignature":"AA=="`, 1), // long s folds to s
		"nested":         strings.Replace(body, `"signed_prekey":{"id":1`, `"signed_prekey":{"id":1,"id":2`, 1),
		"nested in list": `{"one_time_prekeys":[{"id":1,"key":"BQ==","id":2}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			status, resp, _ := ts.do(t, "POST", "/v1/register", "", b)
			var e api.ErrorResponse
			if json.Unmarshal(resp, &e) != nil || status != http.StatusBadRequest || e.Error.Code != api.CodeBadRequest {
				t.Fatalf("got %d %s", status, resp)
			}
			if !strings.Contains(e.Error.Message, "same field twice") {
				t.Fatalf("message %q does not name the duplicate", e.Error.Message)
			}
		})
	}
	// The two-key check does not reject what differs: the good body
	// registers.
	ts.mustDo(t, "POST", "/v1/register", "", body, http.StatusCreated, nil)

	// Field names and values of a refused request are not echoed.
	for _, b := range []string{
		`{"name":"x","zq_echo_marker":1}`,
		`{"name":{"zq_echo_marker":1}}`,
		`{"zq_echo_marker`,
		`{"signed_prekey":{"id":"zq_echo_marker"}}`,
	} {
		status, resp, _ := ts.do(t, "POST", "/v1/register", "", b)
		if status != http.StatusBadRequest || bytes.Contains(resp, []byte("zq_echo_marker")) {
			t.Errorf("%s: got %d %s", b, status, resp)
		}
	}

	// The same on the WebSocket: a send with two recipients is refused.
	wa := ts.dial(t, alice.token)
	wa.sendRaw(websocket.MessageText, []byte(`{"type":"send","id":"d1","to":"bob","To":"alice","body":"eA=="}`))
	if f := wa.readType(api.FrameError); f.Code != api.CodeBadRequest || !strings.Contains(f.Message, "same field twice") {
		t.Fatalf("duplicate key in a frame: %+v", f)
	}
	wa.sendRaw(websocket.MessageText, []byte(`{"type":"send","zq_echo_marker":1}`))
	if f := wa.readType(api.FrameError); strings.Contains(f.Message, "zq_echo_marker") {
		t.Fatalf("frame error echoes the field name: %+v", f)
	}
	if n := ts.queued(t, "bob") + ts.queued(t, "alice"); n != 0 {
		t.Fatalf("%d envelopes queued by refused frames", n)
	}
}

// A path with "." or ".." segments or doubled slashes is refused, not
// redirected to the path it cleans to.
func TestNonCanonicalPathsRefused(t *testing.T) { eachBackend(t, testNonCanonicalPathsRefused) }

func testNonCanonicalPathsRefused(t *testing.T, be backend) {
	ts := newServer(t, be, server.Config{})
	alice := ts.register(t, "alice", 0)
	ts.register(t, "bob", 1)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{
		"/v1/users/alice/../bob/bundle",
		"/v1/users/./bob/bundle",
		"/v1//users/bob/bundle",
		"/v1/users/bob/bundle/..",
	} {
		req, err := http.NewRequest("GET", ts.URL+p, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = p // keep the dots: the client would clean them
		req.Header.Set("Authorization", "Bearer "+alice.token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d (Location %q), want 400", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// None of them took bob's one-time prekey.
	if b := ts.bundle(t, alice.token, "bob"); b.OneTimePreKey == nil {
		t.Fatal("bob's one-time prekey was taken by a refused request")
	}
}

// An identity key already registered to one name cannot be registered to
// another, neither at registration nor by a reset; its owner can still
// reset to it again.
func TestIdentityKeyTakenRefused(t *testing.T) { eachBackend(t, testIdentityKeyTakenRefused) }

func testIdentityKeyTakenRefused(t *testing.T, be backend) {
	ts := newServer(t, be, server.Config{})
	alice := ts.register(t, "alice", 2)
	mallory := ts.register(t, "mallory", 0)

	// A copy of alice's public keys, as anyone can fetch them.
	b := ts.bundle(t, mallory.token, "alice")
	ts.wantError(t, "POST", "/v1/register", "", api.RegisterRequest{
		Name: "alice2", IdentityKey: b.IdentityKey, SignedPreKey: b.SignedPreKey,
	}, http.StatusConflict, api.CodeKeyTaken)
	ts.wantError(t, "PUT", "/v1/keys", mallory.token, api.KeysRequest{
		IdentityKey: b.IdentityKey, SignedPreKey: b.SignedPreKey,
	}, http.StatusConflict, api.CodeKeyTaken)
	ts.wantError(t, "GET", "/v1/users/alice2/bundle", mallory.token, nil, http.StatusNotFound, api.CodeUnknownUser)
	if got := ts.bundle(t, alice.token, "mallory"); bytes.Equal(got.IdentityKey, b.IdentityKey) {
		t.Fatal("mallory's bundle carries alice's identity key")
	}
	// Alice republishing her own identity is not a conflict.
	ts.mustDo(t, "PUT", "/v1/keys", alice.token, api.KeysRequest{
		IdentityKey: alice.ik.PublicKey().Encode(), SignedPreKey: api.NewSignedPreKey(alice.spk),
	}, http.StatusOK, nil)
}
