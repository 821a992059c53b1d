package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
	"github.com/ratchetkit/ratchetkit/examples/chat/server"
)

// direct calls a server's handler in-process as if from remoteAddr, so
// that tests can play clients at many addresses without binding them.
type direct struct {
	t *testing.T
	h http.Handler
}

func newDirect(t *testing.T, be backend, cfg server.Config) *direct {
	t.Helper()
	return &direct{t: t, h: quietServer(t, be, cfg).Handler()}
}

func (d *direct) do(remoteAddr, method, path, token string, body any) (int, []byte) {
	d.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			d.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, r)
	req.RemoteAddr = remoteAddr
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	d.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// register registers name from remoteAddr with n one-time prekeys and
// returns the status and the token (empty on failure).
func (d *direct) register(remoteAddr, name string, n int, invite string) (int, string) {
	d.t.Helper()
	ik, spk, opks := newKeys(d.t, 1, n)
	status, b := d.do(remoteAddr, "POST", "/v1/register", "", api.RegisterRequest{
		Name: name, Invite: invite, IdentityKey: ik.PublicKey().Encode(),
		SignedPreKey: api.NewSignedPreKey(spk), OneTimePreKeys: api.NewPreKeys(opks),
	})
	var resp api.RegisterResponse
	json.Unmarshal(b, &resp)
	return status, resp.Token
}

// Twenty accounts from twenty addresses, each fetching a victim's bundle
// as often as its own limit allows, get at most the victim's allowance of
// one-time prekeys (PreKeyBurst, 10 by default): the victim keeps the rest,
// and every fetch still gets a bundle that starts a session.
func TestPreKeyDrainBoundedPerOwner(t *testing.T) { eachBackend(t, testPreKeyDrainBoundedPerOwner) }

func testPreKeyDrainBoundedPerOwner(t *testing.T, be backend) {
	d := newDirect(t, be, server.Config{})
	if status, _ := d.register("192.0.2.1:1000", "bob", 81, ""); status != http.StatusCreated {
		t.Fatalf("register bob: %d", status)
	}
	var tokens []string
	for i := range 20 {
		status, token := d.register(fmt.Sprintf("198.51.100.%d:2000", i+1), fmt.Sprintf("m%02d", i), 0, "")
		if status != http.StatusCreated {
			t.Fatalf("register attacker %d: %d", i, status)
		}
		tokens = append(tokens, token)
	}
	taken, withheld := 0, 0
	for i, token := range tokens {
		for range 20 { // BundleBurst: each account's own limit
			status, b := d.do(fmt.Sprintf("198.51.100.%d:2000", i+1), "GET", "/v1/users/bob/bundle", token, nil)
			var bundle api.Bundle
			if status != http.StatusOK || json.Unmarshal(b, &bundle) != nil {
				t.Fatalf("fetch: %d %s", status, b)
			}
			if _, err := bundle.X3DH(); err != nil {
				t.Fatalf("bundle without a one-time prekey does not convert: %v", err)
			}
			switch {
			case bundle.OneTimePreKey != nil:
				taken++
			case bundle.Withheld && !bundle.Exhausted:
				withheld++
			default:
				t.Fatalf("bundle neither carries nor withholds a one-time prekey: %s", b)
			}
		}
	}
	// A few tokens come back at 1 per minute while the test runs.
	if taken < 10 || taken > 11 {
		t.Fatalf("400 fetches from 20 accounts took %d of bob's 81 one-time prekeys, want 10", taken)
	}
	t.Logf("400 fetches from 20 accounts: %d one-time prekeys taken, %d bundles without one", taken, withheld)
}

// Registrations from addresses in one IPv6 /64 share one budget
// (RegisterBurst, 10 by default); another /64 has its own, and IPv4
// addresses count one by one unless IPv4Prefix groups them.
func TestRegistrationLimitGroupsAddresses(t *testing.T) {
	eachBackend(t, testRegistrationLimitGroupsAddresses)
}

func testRegistrationLimitGroupsAddresses(t *testing.T, be backend) {
	d := newDirect(t, be, server.Config{})
	ok := 0
	for i := range 20 {
		if status, _ := d.register(fmt.Sprintf("[2001:db8:1:2::%x]:3000", i+1), fmt.Sprintf("v6-%02d", i), 0, ""); status == http.StatusCreated {
			ok++
		} else if status != http.StatusTooManyRequests {
			t.Fatalf("registration %d: status %d", i, status)
		}
	}
	if ok != 10 {
		t.Fatalf("%d registrations from one /64, want 10", ok)
	}
	if status, _ := d.register("[2001:db8:1:3::1]:3000", "other-64", 0, ""); status != http.StatusCreated {
		t.Fatalf("registration from another /64: %d", status)
	}
	// An IPv4-mapped IPv6 address is its IPv4 address.
	for i := range 10 {
		if status, _ := d.register("[::ffff:192.0.2.7]:1", fmt.Sprintf("mapped-%d", i), 0, ""); status != http.StatusCreated {
			t.Fatalf("mapped registration %d: %d", i, status)
		}
	}
	if status, _ := d.register("192.0.2.7:2", "plain-v4", 0, ""); status != http.StatusTooManyRequests {
		t.Fatalf("IPv4 after its mapped form used the budget: %d, want 429", status)
	}

	g := newDirect(t, be, server.Config{IPv4Prefix: 24, RegisterBurst: 2})
	for i, want := range []int{http.StatusCreated, http.StatusCreated, http.StatusTooManyRequests} {
		if status, _ := g.register(fmt.Sprintf("203.0.113.%d:1", i+1), fmt.Sprintf("g%d", i), 0, ""); status != want {
			t.Fatalf("/24 registration %d: %d, want %d", i, status, want)
		}
	}
}

// With invite codes configured, registration needs an unused one; each
// works once, and a failed registration does not use it up.
func TestInviteCodes(t *testing.T) { eachBackend(t, testInviteCodes) }

func testInviteCodes(t *testing.T, be backend) {
	codes := []string{"invite-code-0001-aaaa", "invite-code-0002-bbbb"}
	d := newDirect(t, be, server.Config{InviteCodes: codes, RegisterBurst: 100})
	addr := "192.0.2.1:1"
	for _, invite := range []string{"", "invite-code-0003-cccc", "short"} {
		if status, _ := d.register(addr, "alice", 0, invite); status != http.StatusForbidden {
			t.Fatalf("invite %q: status %d, want 403", invite, status)
		}
	}
	if status, _ := d.register(addr, "alice", 0, codes[0]); status != http.StatusCreated {
		t.Fatalf("first use of a code: %d", status)
	}
	if status, _ := d.register(addr, "bob", 0, codes[0]); status != http.StatusForbidden {
		t.Fatalf("second use of a code: %d, want 403", status)
	}
	// A registration refused for another reason keeps the code unused.
	if status, _ := d.register(addr, "alice", 0, codes[1]); status != http.StatusConflict {
		t.Fatalf("taken name: %d, want 409", status)
	}
	if status, _ := d.register(addr, "bob", 0, codes[1]); status != http.StatusCreated {
		t.Fatalf("code after a refused registration: %d", status)
	}
	if _, err := server.New(server.Config{DBPath: be.newDB(t), InviteCodes: []string{"guessable"}}); err == nil {
		t.Fatal("a short invite code was accepted")
	}
}
